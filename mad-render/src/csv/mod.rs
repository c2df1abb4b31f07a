//! The CSV renderer: RFC 4180, UTF-8, one header row and the data rows.

mod neutralise;

use std::fmt::Write as _;

use mad_core::report::CsvOptions;
use mad_core::{
    Error, FieldKind, Layout, LayoutColumn, Locale, OutputFormat, RenderJob, Renderer,
    RendererCapabilities, Result, Value,
};

pub use self::neutralise::{needs_prefix, neutralise};

const BACKEND: &str = "csv";
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Renders reports as CSV: RFC 4180 quoting, CRLF line ends, UTF-8, the delimiter of
/// `report.csv.delimiter`, one header row, then the data rows in report order (no group or
/// total rows).
///
/// Cells:
/// - numbers raw, with `.` as the decimal point and every digit needed to read the same number
///   back (`1234.5`, `-0.1`, `42`), or as the report shows them when `report.csv.formatted_numbers`;
/// - dates and timestamps as the report shows them (`2016-11-08`);
/// - texts as they are; nulls empty.
///
/// With `report.csv.neutralise_formulas` (the default), cells a spreadsheet would run as a
/// formula get a leading `'`; plain numbers such as `-12.5` stay as they are (see
/// [`needs_prefix`] for the exact rule).
#[derive(Debug, Clone, Default)]
pub struct CsvRenderer {
    byte_order_mark: bool,
}

impl CsvRenderer {
    pub fn new() -> Self {
        CsvRenderer::default()
    }

    /// Starts every file with a UTF-8 byte-order mark, which some spreadsheet programs need to
    /// read the file as UTF-8; off by default.
    pub fn with_byte_order_mark(mut self, on: bool) -> Self {
        self.byte_order_mark = on;
        self
    }
}

impl Renderer for CsvRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn capabilities(&self) -> RendererCapabilities {
        RendererCapabilities {
            charts: false,
            templates: false,
            pages: false,
        }
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        let options = &job.report.csv;
        let delimiter = delimiter_byte(options.delimiter)?;
        let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;

        let mut out = Vec::with_capacity(64 + layout.table.len() * layout.columns.len() * 12);
        if self.byte_order_mark {
            out.extend_from_slice(BYTE_ORDER_MARK);
        }
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        let safe = options.neutralise_formulas;
        for column in &layout.columns {
            write_field(&mut writer, &column.header, safe)?;
        }
        end_record(&mut writer)?;

        let mut text = String::new();
        for row in 0..layout.table.len() {
            for (col, column) in layout.columns.iter().enumerate() {
                text.clear();
                write_cell(
                    &mut text,
                    layout.value(row, col),
                    column,
                    options,
                    job.locale,
                );
                write_field(&mut writer, &text, safe)?;
            }
            end_record(&mut writer)?;
        }
        writer
            .into_inner()
            .map_err(|e| csv_error(csv::Error::from(e.into_error())))
    }
}

fn write_field(writer: &mut csv::Writer<Vec<u8>>, text: &str, safe: bool) -> Result<()> {
    let field = if safe { neutralise(text) } else { text.into() };
    writer.write_field(field.as_bytes()).map_err(csv_error)
}

fn end_record(writer: &mut csv::Writer<Vec<u8>>) -> Result<()> {
    writer.write_record(None::<&[u8]>).map_err(csv_error)
}

/// The delimiter as the single byte the writer needs.
fn delimiter_byte(delimiter: char) -> Result<u8> {
    if matches!(delimiter, '"' | '\r' | '\n') {
        return Err(Error::invalid_config(format!(
            "the CSV delimiter {delimiter:?} would break quoting; use ',', ';', a tab or '|'"
        ))
        .with_backend(BACKEND));
    }
    u8::try_from(delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| {
            Error::unsupported(
                BACKEND,
                format!("the delimiter {delimiter:?} (only one-byte ASCII delimiters work)"),
            )
        })
}

/// Whether the column's numbers are days (its field is a date, or its format is a date code).
fn is_temporal(column: &LayoutColumn) -> bool {
    matches!(column.kind, FieldKind::Date | FieldKind::Timestamp)
        || column.format.as_ref().is_some_and(|f| f.is_temporal())
}

fn write_cell(
    out: &mut String,
    value: &Value,
    column: &LayoutColumn,
    options: &CsvOptions,
    locale: &Locale,
) {
    let number = match value {
        Value::Number(n) => Some(*n),
        Value::Dual(n, _) if column.kind.is_numeric() => Some(*n),
        _ => None,
    };
    match number {
        Some(_) if is_temporal(column) || options.formatted_numbers => {
            out.push_str(&column.display(value, locale))
        }
        Some(0.0) => out.push('0'), // also -0.0, which matches 0.0
        Some(n) => {
            let _ = write!(out, "{n}"); // shortest text that reads back as the same number
        }
        None => out.push_str(value.as_text().unwrap_or_default()),
    }
}

fn csv_error(err: csv::Error) -> Error {
    Error::new(
        mad_core::ErrorKind::Render,
        format!("writing the CSV failed: {err}"),
    )
    .with_backend(BACKEND)
    .with_source(err)
}
