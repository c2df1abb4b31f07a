//! The XLSX renderer: one worksheet with typed cells, Excel number formats, group and total
//! rows whose formulas carry their computed results, a frozen header and an autofilter.

mod number_format;
mod sheet;
mod sheet_name;

use mad_core::{Error, ErrorKind, Layout, OutputFormat, RenderJob, Renderer, Result};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook, XlsxError};

pub use self::number_format::excel_number_format;
pub use self::sheet_name::sanitise_sheet_name;

const BACKEND: &str = "xlsx";

/// Cells above which a sheet is written in constant-memory mode.
const DEFAULT_CONSTANT_MEMORY_CELLS: usize = 200_000;

/// Renders reports as XLSX workbooks with one worksheet.
///
/// Small sheets are built in memory. A sheet with more cells than the constant-memory
/// threshold is streamed row by row through a temporary file in the system's temporary
/// folder, so its memory use stays flat whatever the row count.
#[derive(Debug, Clone)]
pub struct XlsxRenderer {
    constant_memory_cells: usize,
    compression_level: u8,
}

impl Default for XlsxRenderer {
    fn default() -> Self {
        XlsxRenderer::new()
    }
}

impl XlsxRenderer {
    pub fn new() -> Self {
        XlsxRenderer {
            constant_memory_cells: DEFAULT_CONSTANT_MEMORY_CELLS,
            compression_level: 6,
        }
    }

    /// Streams sheets with more than `cells` data cells (rows × columns) in constant-memory
    /// mode; `0` streams every sheet.
    pub fn with_constant_memory_above(mut self, cells: usize) -> Self {
        self.constant_memory_cells = cells;
        self
    }

    /// The zip compression level, from 1 (fastest) to 9 (smallest); 6 by default.
    pub fn with_compression_level(mut self, level: u8) -> Self {
        self.compression_level = level;
        self
    }

    fn check(&self) -> Result<()> {
        if !(1..=9).contains(&self.compression_level) {
            return Err(Error::invalid_config(format!(
                "the compression level {} is outside 1 to 9; pick 1 for speed or 9 for size",
                self.compression_level
            ))
            .with_backend(BACKEND));
        }
        Ok(())
    }
}

impl Renderer for XlsxRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Xlsx
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        self.check()?;
        let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
        let title = job
            .placeholders
            .render(&job.report.title)
            .map_err(|e| e.with_backend(BACKEND))?;
        let subtitle = match &job.report.subtitle {
            Some(s) => Some(
                job.placeholders
                    .render(s)
                    .map_err(|e| e.with_backend(BACKEND))?,
            ),
            None => None,
        };
        sheet::check_size(&layout)?;

        let mut workbook = Workbook::new();
        workbook.set_zip_compression_level(self.compression_level);
        workbook.set_properties(&properties(&title, job.deterministic)?);
        let cells = layout.table.len() * layout.columns.len().max(1);
        let worksheet = if cells > self.constant_memory_cells {
            workbook
                .add_worksheet_with_constant_memory()
                .map_err(|e| xlsx_error("opening a constant-memory sheet", e))?
        } else {
            workbook.add_worksheet()
        };
        let heading = sheet::Heading {
            title: &title,
            subtitle: subtitle.as_deref(),
            filters: job.filters,
        };
        sheet::write(worksheet, &layout, &heading, job.locale)?;

        workbook
            .save_to_buffer()
            .map_err(|e| xlsx_error("saving the workbook", e))
    }
}

/// The document properties; a fixed creation time in deterministic mode.
fn properties(title: &str, deterministic: bool) -> Result<DocProperties> {
    let properties = DocProperties::new().set_title(title);
    if !deterministic {
        return Ok(properties);
    }
    let fixed = ExcelDateTime::from_ymd(2000, 1, 1)
        .map_err(|e| xlsx_error("setting the creation time", e))?;
    Ok(properties.set_creation_datetime(&fixed))
}

fn xlsx_error(what: &str, err: XlsxError) -> Error {
    let kind = match err {
        XlsxError::RowColumnLimitError | XlsxError::MaxStringLengthExceeded => {
            ErrorKind::InvalidInput
        }
        _ => ErrorKind::Render,
    };
    Error::new(kind, format!("{what}: {err}"))
        .with_backend(BACKEND)
        .with_source(err)
}
