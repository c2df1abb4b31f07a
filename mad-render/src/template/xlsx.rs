//! Filling an XLSX template: a workbook whose styles, formulas, charts and other sheets are
//! kept, with placeholders replaced and a marker cell grown into the report's rows.
//!
//! - A text cell holding `{recipient.name}`, `{run.date}`, `{Region}`, ... on any sheet gets
//!   the placeholder's value; `{{` and `}}` write literal braces; an unknown name is an error.
//! - A cell holding exactly `{{table}}`, or `{table:Name}` for the report named `Name`, marks
//!   where the rows go. Its row is the template row: the cells from the marker to the right,
//!   one per report column, give each column's style, copied to every data row. A column whose
//!   template cell has no number format of its own gets the report's format.
//! - The rows below the marker move down. Formulas, defined names, chart series and
//!   conditional formats that point below the marker move with them; a range that ends on the
//!   marker row grows to the last data row, so `=SUM(B5:B5)` below a marker in B5 sums them all.
//! - With totals, a totals row of `SUBTOTAL` formulas (carrying their results) follows the rows.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use mad_core::{Aggregate, Error, ErrorKind, Layout, LayoutColumn, RenderJob, Result, Value};
use umya_spreadsheet::drawing::charts::Formula as ChartFormula;
use umya_spreadsheet::{Style, Workbook, Worksheet};

use super::TemplateCache;
use super::refs::{RowInsert, rewrite, rewrite_series};
use super::stable::stable_package;
use crate::labels::Labels;
use crate::xlsx::BACKEND;
use crate::xlsx::sheet::{CellKind, EXCEL_SERIALS, MAX_ROWS, excel_code, subtotal_function};

/// Reads a template workbook.
pub(crate) fn parse(path: &Path, bytes: Vec<u8>) -> Result<Workbook> {
    let read = guarded(path, || {
        umya_spreadsheet::reader::xlsx::read_reader(Cursor::new(bytes), true)
            .map_err(|e| Error::invalid_input(e.to_string()))
    })?;
    read.map_err(|e| {
        Error::invalid_input(format!(
            "the template {} is not a readable XLSX workbook ({}); save it again from Excel \
             as .xlsx",
            path.display(),
            e.message()
        ))
    })
}

/// Renders `job` into a copy of the template at `path`.
pub(crate) fn fill(cache: &TemplateCache, path: &Path, job: &RenderJob<'_>) -> Result<Vec<u8>> {
    if !job.report.charts.is_empty() {
        return Err(Error::unsupported(
            BACKEND,
            "the report's charts together with an XLSX template; draw the chart in the \
             template over the marker row instead, and it grows with the rows",
        ));
    }
    let template = cache.xlsx(path, BACKEND)?;
    let layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
    if layout.table.len() >= MAX_ROWS as usize {
        return Err(Error::invalid_input(
            "the report has more rows than an Excel sheet holds; narrow the filters or use CSV",
        )
        .with_backend(BACKEND));
    }

    let mut book = (*template).clone();
    let filled = guarded(path, || {
        Filler {
            job,
            layout: &layout,
        }
        .fill(&mut book)
    })?;
    filled.map_err(|e| {
        e.context(format!("filling the template {}", path.display()))
            .with_backend(BACKEND)
    })?;
    if job.deterministic {
        book.properties_mut()
            .set_created("2000-01-01T00:00:00Z")
            .set_modified("2000-01-01T00:00:00Z");
    }
    let mut out = Cursor::new(Vec::new());
    let written = guarded(path, || {
        umya_spreadsheet::writer::xlsx::write_writer(&book, &mut out)
            .map_err(|e| Error::new(ErrorKind::Render, format!("saving the workbook: {e}")))
    })?;
    written.map_err(|e| e.with_backend(BACKEND))?;
    stable_package(out.into_inner()).map_err(|e| e.with_backend(BACKEND))
}

/// Runs `work`, turning a panic inside the spreadsheet library into an error, so a damaged
/// template fails its render instead of the run.
fn guarded<T>(path: &Path, work: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|_| {
        Error::new(
            ErrorKind::Render,
            format!(
                "the template {} could not be processed (the spreadsheet library failed on \
                 it); open it in Excel, save it again as .xlsx and retry",
                path.display()
            ),
        )
        .with_backend(BACKEND)
    })
}

/// Where the rows go: a sheet index and a 1-based column and row.
#[derive(Debug, Clone, Copy)]
struct Marker {
    sheet: usize,
    col: u32,
    row: u32,
}

struct Filler<'a> {
    job: &'a RenderJob<'a>,
    layout: &'a Layout,
}

impl Filler<'_> {
    fn fill(&self, book: &mut Workbook) -> Result<()> {
        book.read_sheet_collection();
        let marker = self.fill_placeholders(book)?;
        let sheet_name = book.sheet_collection()[marker.sheet].name().to_string();
        let labels = Labels::for_locale(self.job.locale);
        let rows = self.layout.table.len() as u32;
        if rows == 0 {
            let sheet = &mut book.sheet_collection_mut()[marker.sheet];
            sheet
                .cell_mut((marker.col, marker.row))
                .set_value_string(labels.no_data);
            return Ok(());
        }

        let totals = self.layout.grand_total && self.layout.has_totals();
        let insert = RowInsert {
            sheet: &sheet_name,
            marker_row: marker.row,
            data_rows: rows,
            inserted: rows - 1 + u32::from(totals),
        };
        let styles = self.template_styles(&book.sheet_collection()[marker.sheet], marker);
        if insert.inserted > 0 {
            grow(book, marker, &insert);
        }
        let sheet = &mut book.sheet_collection_mut()[marker.sheet];
        self.write_rows(sheet, marker, &styles);
        if totals {
            self.write_totals(sheet, marker, &styles, labels);
        }
        Ok(())
    }

    /// Fills every placeholder of every sheet and finds the one table marker.
    fn fill_placeholders(&self, book: &mut Workbook) -> Result<Marker> {
        let mut markers = Vec::new();
        for (index, sheet) in book.sheet_collection_mut().iter_mut().enumerate() {
            let sheet_name = sheet.name().to_string();
            for cell in sheet.cells_mut() {
                if cell.is_formula() {
                    continue;
                }
                let text = cell.value();
                if !text.contains(['{', '}']) {
                    continue;
                }
                let (col, row) = (cell.coordinate().col_num(), cell.coordinate().row_num());
                if let Some(report) = marker_in(&text) {
                    markers.push((
                        Marker {
                            sheet: index,
                            col,
                            row,
                        },
                        report,
                        sheet_name.clone(),
                    ));
                    continue;
                }
                let filled = self.job.placeholders.render(&text).map_err(|e| {
                    e.context(format!(
                        "sheet '{sheet_name}', cell {}",
                        cell_name(col, row)
                    ))
                })?;
                cell.set_value_string(filled);
            }
        }
        self.pick_marker(markers)
    }

    fn pick_marker(&self, markers: Vec<(Marker, Option<String>, String)>) -> Result<Marker> {
        let name = &self.job.report.name;
        if let Some((_, Some(other), sheet)) = markers
            .iter()
            .find(|(_, report, _)| report.as_ref().is_some_and(|r| r != name))
        {
            return Err(Error::invalid_config(format!(
                "sheet '{sheet}' has a table marker for report '{other}', but this is report \
                 '{name}'; write {{table:{name}}} or {{{{table}}}}"
            )));
        }
        let mut places = markers.into_iter().map(|(m, _, sheet)| (m, sheet));
        let Some((marker, _)) = places.next() else {
            return Err(Error::invalid_config(format!(
                "the template has no table marker; put {{{{table}}}} (or {{table:{name}}}) in \
                 the cell where the rows start"
            )));
        };
        if let Some((second, sheet)) = places.next() {
            return Err(Error::invalid_config(format!(
                "the template has more than one table marker (another is on sheet '{sheet}', \
                 cell {}); keep one",
                cell_name(second.col, second.row)
            )));
        }
        Ok(marker)
    }

    /// Each report column's style: the template row's cell, with the report's number format
    /// when the cell has none of its own.
    fn template_styles(&self, sheet: &Worksheet, marker: Marker) -> Vec<Style> {
        self.layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let mut style = sheet
                    .cell((marker.col + i as u32, marker.row))
                    .map(|c| c.style().clone())
                    .unwrap_or_default();
                let general = style
                    .number_format()
                    .is_none_or(|f| f.number_format_id() == 0 && f.format_code() == "General");
                if general && let Some(code) = excel_code(column) {
                    style.number_format_mut().set_format_code(code);
                }
                style
            })
            .collect()
    }

    fn write_rows(&self, sheet: &mut Worksheet, marker: Marker, styles: &[Style]) {
        for row in 0..self.layout.table.len() {
            let at = marker.row + row as u32;
            for (i, column) in self.layout.columns.iter().enumerate() {
                let cell = sheet.cell_mut((marker.col + i as u32, at));
                cell.set_style(styles[i].clone());
                let value = self.layout.value(row, i);
                write_value(cell, value, column, self.job);
            }
        }
    }

    /// The totals row below the data: SUBTOTAL formulas with mad-core's results, in bold.
    fn write_totals(
        &self,
        sheet: &mut Worksheet,
        marker: Marker,
        styles: &[Style],
        labels: &Labels,
    ) {
        let mut totals = Vec::new();
        self.layout.walk(|event| {
            if let mad_core::LayoutEvent::GrandTotal { totals: t, .. } = event {
                totals = t.to_vec();
            }
        });
        let rows = self.layout.table.len() as u32;
        let (first, last, at) = (marker.row, marker.row + rows - 1, marker.row + rows);
        let label_column = self.layout.columns.iter().position(|c| c.total.is_none());
        for (i, column) in self.layout.columns.iter().enumerate() {
            let col = marker.col + i as u32;
            let cell = sheet.cell_mut((col, at));
            let mut style = styles[i].clone();
            style.font_mut().set_bold(true);
            if column.total == Some(Aggregate::Count) {
                style.number_format_mut().set_format_code("0");
            }
            cell.set_style(style);
            match (column.total, totals.get(i).copied().flatten()) {
                (Some(aggregate), Some(result)) if result.is_finite() => {
                    let letter = column_letters(col);
                    cell.set_formula(format!(
                        "SUBTOTAL({},{letter}{first}:{letter}{last})",
                        subtotal_function(aggregate)
                    ));
                    cell.set_formula_result_number(result);
                }
                _ if Some(i) == label_column => {
                    cell.set_value_string(labels.grand_total);
                }
                _ => {}
            }
        }
    }
}

/// `Some(None)` for `{{table}}`, `Some(Some(name))` for `{table:name}`, else `None`.
fn marker_in(text: &str) -> Option<Option<String>> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}"))
        && inner.trim() == "table"
    {
        return Some(None);
    }
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let (key, name) = inner.split_once(':')?;
    (key.trim() == "table").then(|| Some(name.trim().to_string()))
}

/// One data cell: numbers as numbers, dates as date serials, texts as strings, nulls empty.
fn write_value(
    cell: &mut umya_spreadsheet::Cell,
    value: &Value,
    column: &LayoutColumn,
    job: &RenderJob<'_>,
) {
    match (value, CellKind::of(column)) {
        (Value::Null, _) => {}
        (Value::Number(n) | Value::Dual(n, _), CellKind::Date) if EXCEL_SERIALS.contains(n) => {
            cell.set_value_number(*n);
        }
        (Value::Number(_) | Value::Dual(..), CellKind::Date) => {
            cell.set_value_string(column.display(value, job.locale));
        }
        (Value::Number(n), _) | (Value::Dual(n, _), CellKind::Number) => {
            cell.set_value_number(*n);
        }
        (Value::Text(s) | Value::Dual(_, s), _) => {
            cell.set_value_string(s.to_string());
        }
    }
}

/// Moves everything below the marker row down and rewrites what points at the table.
fn grow(book: &mut Workbook, marker: Marker, insert: &RowInsert<'_>) {
    let references = References::save(book, marker);
    book.sheet_collection_mut()[marker.sheet].insert_new_row(marker.row + 1, insert.inserted);
    references.restore(book, marker, insert);
}

/// What refers to cells, as the template has it. The library's own row insert moves cells,
/// drawings and merged ranges well, but moves references by rules of its own (it leaves `$`
/// references and other sheets' formulas alone and never grows a range), so every reference
/// is rewritten from its original afterwards.
struct References {
    /// Sheet index, 1-based column and row, formula text.
    formulas: Vec<(usize, u32, u32, String)>,
    /// Per sheet, per chart, its series formulas.
    charts: Vec<Vec<Vec<String>>>,
    /// The ranges of the marker sheet's conditional formats.
    conditional: Vec<String>,
    /// The workbook's defined names.
    names: Vec<String>,
}

impl References {
    fn save(book: &mut Workbook, marker: Marker) -> References {
        let mut charts = Vec::new();
        for sheet in book.sheet_collection_mut() {
            let mut sheet_charts = Vec::new();
            visit_charts(sheet, |formulas| {
                sheet_charts.push(formulas.iter().map(|f| f.address_str()).collect());
            });
            charts.push(sheet_charts);
        }
        let conditional = book.sheet_collection()[marker.sheet]
            .conditional_formatting_collection()
            .iter()
            .map(|c| c.sequence_of_references().get_sqref())
            .collect();
        References {
            formulas: saved_formulas(book),
            charts,
            conditional,
            names: book.defined_names().iter().map(|n| n.address()).collect(),
        }
    }

    fn restore(self, book: &mut Workbook, marker: Marker, insert: &RowInsert<'_>) {
        restore_formulas(book, self.formulas, marker, insert);
        for (sheet, originals) in book.sheet_collection_mut().iter_mut().zip(self.charts) {
            let own = sheet.name().to_string();
            let mut originals = originals.into_iter();
            visit_charts(sheet, |formulas| {
                let chart = originals.next().unwrap_or_default();
                for (formula, original) in formulas.into_iter().zip(chart) {
                    formula.set_address_str(rewrite_series(&original, &own, insert));
                }
            });
        }
        let sheet = &mut book.sheet_collection_mut()[marker.sheet];
        let own = sheet.name().to_string();
        let mut formats = sheet.conditional_formatting_collection().to_vec();
        for (format, original) in formats.iter_mut().zip(self.conditional) {
            let ranges: Vec<String> = original
                .split_whitespace()
                .map(|range| rewrite(range, &own, insert))
                .collect();
            format
                .sequence_of_references_mut()
                .set_sqref(ranges.join(" "));
        }
        sheet.set_conditional_formatting_collection(formats);
        for (name, original) in book.defined_names_mut().iter_mut().zip(self.names) {
            name.set_address(rewrite(&original, "", insert));
        }
    }
}

/// Writes each formula back at its cell's new place, rewritten. A formula whose text changed
/// loses its stored result, which would be stale; Excel computes it on opening.
fn restore_formulas(
    book: &mut Workbook,
    formulas: Vec<(usize, u32, u32, String)>,
    marker: Marker,
    insert: &RowInsert<'_>,
) {
    for (sheet_index, col, row, formula) in formulas {
        let sheet = &mut book.sheet_collection_mut()[sheet_index];
        let own = sheet.name().to_string();
        let moved = match sheet_index == marker.sheet && row > marker.row {
            true => row + insert.inserted,
            false => row,
        };
        let rewritten = rewrite(&formula, &own, insert);
        if rewritten != formula {
            let cell = sheet.cell_mut((col, moved));
            cell.set_formula(rewritten);
            cell.set_formula_result_blank();
        } else if sheet_index == marker.sheet {
            sheet.cell_mut((col, moved)).set_formula(rewritten);
        }
    }
}

/// Every formula of every sheet: sheet index, 1-based column and row, formula text.
fn saved_formulas(book: &Workbook) -> Vec<(usize, u32, u32, String)> {
    let mut formulas = Vec::new();
    for (index, sheet) in book.sheet_collection().iter().enumerate() {
        for cell in sheet.cells() {
            if cell.is_formula() && !cell.formula().is_empty() {
                let coordinate = cell.coordinate();
                formulas.push((
                    index,
                    coordinate.col_num(),
                    coordinate.row_num(),
                    cell.formula().to_string(),
                ));
            }
        }
    }
    formulas
}

/// Calls `visit` with the series formulas of each chart on a sheet, in a fixed order (charts
/// read from a file, then charts added through the library's chart API).
fn visit_charts(sheet: &mut Worksheet, mut visit: impl FnMut(Vec<&mut ChartFormula>)) {
    let drawing = sheet.worksheet_drawing_mut();
    for anchor in drawing.two_cell_anchor_collection_mut() {
        if let Some(frame) = anchor.graphic_frame_mut() {
            let space = frame.graphic_mut().graphic_data_mut().chart_space_mut();
            visit(space.chart_mut().formula_mut());
        }
    }
    for chart in drawing.chart_collection_mut() {
        visit(chart.chart_space_mut().chart_mut().formula_mut());
    }
}

fn column_letters(col: u32) -> String {
    umya_spreadsheet::helper::coordinate::string_from_column_index(col)
}

fn cell_name(col: u32, row: u32) -> String {
    format!("{}{row}", column_letters(col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_recognised() {
        assert_eq!(marker_in("{{table}}"), Some(None));
        assert_eq!(marker_in(" {{ table }} "), Some(None));
        assert_eq!(marker_in("{table:Sales}"), Some(Some("Sales".into())));
        assert_eq!(marker_in("{table}"), None);
        assert_eq!(marker_in("{recipient.name}"), None);
        assert_eq!(marker_in("Total {{table}}"), None);
    }
}
