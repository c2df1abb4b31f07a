//! The XLSX renderer: one worksheet with typed cells, Excel number formats, group and total
//! rows whose formulas carry their computed results, a frozen header and an autofilter;
//! conditional styles as Excel conditional formats and native charts over aggregated values.
//! A report with an `.xlsx` template fills that workbook instead (see [`crate::template`]).

mod cells;
mod chart;
mod conditional;
mod number_format;
mod print;
pub(crate) mod sheet;
mod sheet_name;
mod stream;
mod zip;

use std::sync::Arc;

use mad_core::{
    Error, ErrorKind, Layout, OutputFormat, RenderJob, Renderer, RendererCapabilities, Result,
};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook, XlsxError};

use self::cells::WorksheetTarget;
use self::print::PrintSetup;
use self::stream::StreamingWorkbook;
use self::zip::iso_time;
use crate::template::TemplateCache;

pub use self::number_format::excel_number_format;
pub use self::sheet_name::sanitise_sheet_name;

pub(crate) const BACKEND: &str = "xlsx";

/// Cells above which a sheet is written in constant-memory mode.
const DEFAULT_CONSTANT_MEMORY_CELLS: usize = 200_000;
/// The creation time of deterministic documents: 2000-01-01T00:00:00Z.
const DETERMINISTIC_TIME: i64 = 946_684_800;

/// Renders reports as XLSX workbooks with one worksheet.
///
/// A report without charts or conditional styles is written by a streaming writer: rows go
/// straight into the compressed sheet, so memory stays at the size of the finished file and a
/// small workbook costs tens of microseconds. Charts and conditional formats go through
/// rust_xlsxwriter, which builds small sheets in memory and streams a sheet with more cells
/// than the constant-memory threshold through a temporary file in the system's temporary
/// folder.
#[derive(Debug, Clone)]
pub struct XlsxRenderer {
    constant_memory_cells: usize,
    compression_level: u8,
    streaming: bool,
    templates: Arc<TemplateCache>,
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
            compression_level: 1,
            streaming: true,
            templates: Arc::default(),
        }
    }

    /// Streams sheets with more than `cells` data cells (rows × columns) in constant-memory
    /// mode; `0` streams every sheet.
    pub fn with_constant_memory_above(mut self, cells: usize) -> Self {
        self.constant_memory_cells = cells;
        self
    }

    /// The zip compression level, from 1 (fastest) to 9 (smallest); 1 by default, since
    /// compression is most of the cost of a small workbook and level 6 saves only about a
    /// fifth of its size.
    pub fn with_compression_level(mut self, level: u8) -> Self {
        self.compression_level = level;
        self
    }

    /// Whether plain sheets (no charts, no conditional styles) use the streaming writer (the
    /// default); `false` writes every sheet with rust_xlsxwriter.
    pub fn with_streaming_writer(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
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

    fn capabilities(&self) -> RendererCapabilities {
        RendererCapabilities {
            charts: true,
            templates: true,
            pages: true,
        }
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        self.check()?;
        if let Some(path) = job.report.template_for(OutputFormat::Xlsx) {
            return crate::template::xlsx::fill(&self.templates, path, job);
        }
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
        let charts = chart::prepare(&job.report.charts, &layout, job.placeholders)?;
        let print = PrintSetup::new(job, &title)?;

        let heading = sheet::Heading {
            title: &title,
            subtitle: subtitle.as_deref(),
            filters: job.filters,
        };
        let styled = layout.columns.iter().any(|c| !c.styles.is_empty());
        if self.streaming && charts.is_empty() && !styled {
            let created_at = if job.deterministic {
                DETERMINISTIC_TIME
            } else {
                job.created_at
            };
            let mut book = StreamingWorkbook::new(self.compression_level, created_at)?;
            sheet::write(&mut book, &layout, &heading, &print, job.locale)?;
            return book.finish(&title, &iso_time(created_at));
        }

        let mut workbook = Workbook::new();
        workbook.set_zip_compression_level(self.compression_level);
        workbook.set_properties(&properties(&title, job.deterministic, job.created_at)?);
        let cells = layout.table.len() * layout.columns.len().max(1);
        let worksheet = if cells > self.constant_memory_cells {
            workbook
                .add_worksheet_with_constant_memory()
                .map_err(|e| xlsx_error("opening a constant-memory sheet", e))?
        } else {
            workbook.add_worksheet()
        };
        let placement = sheet::write(
            &mut WorksheetTarget::new(worksheet),
            &layout,
            &heading,
            &print,
            job.locale,
        )?;
        conditional::add(worksheet, &layout, placement.first_row, placement.last_row)?;
        if !charts.is_empty() {
            add_charts(&mut workbook, &charts, &placement, &layout, job)?;
        }

        workbook
            .save_to_buffer()
            .map_err(|e| xlsx_error("saving the workbook", e))
    }
}

/// Writes the charts' data on their own sheet and the charts beside the table.
fn add_charts(
    workbook: &mut Workbook,
    charts: &[chart::ChartData],
    placement: &sheet::Placement,
    layout: &Layout,
    job: &RenderJob<'_>,
) -> Result<()> {
    let report_sheet = workbook
        .worksheet_from_index(0)
        .map_err(|e| xlsx_error("finding the report sheet", e))?
        .name();
    let data_name = if report_sheet.eq_ignore_ascii_case(chart::DATA_SHEET) {
        format!("{} 2", chart::DATA_SHEET)
    } else {
        chart::DATA_SHEET.to_string()
    };
    let data_sheet = workbook
        .add_worksheet()
        .set_name(&data_name)
        .map_err(|e| xlsx_error("naming the chart data sheet", e))?;
    chart::write_data(data_sheet, charts, job.locale)?;

    let report_sheet = workbook
        .worksheet_from_index(0)
        .map_err(|e| xlsx_error("finding the report sheet", e))?;
    let beside = (layout.columns.len() + 1).min(16_000) as u16;
    chart::insert(
        report_sheet,
        &data_name,
        charts,
        placement.header_row,
        beside,
    )
}

/// The document properties: a fixed creation time in deterministic mode, else the run's
/// start, so the same run renders the same bytes again (a resumed run recognises its files).
fn properties(title: &str, deterministic: bool, created_at: i64) -> Result<DocProperties> {
    let properties = DocProperties::new().set_title(title);
    let created = if deterministic {
        ExcelDateTime::from_ymd(2000, 1, 1)
    } else {
        ExcelDateTime::from_timestamp(created_at)
    };
    let created = created.map_err(|e| xlsx_error("setting the creation time", e))?;
    Ok(properties.set_creation_datetime(&created))
}

pub(crate) fn xlsx_error(what: &str, err: XlsxError) -> Error {
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
