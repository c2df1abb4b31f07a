//! Writing one laid-out report into a worksheet, strictly row by row (constant-memory sheets
//! cannot go back to an earlier row).

use mad_core::format::display;
use mad_core::{
    Aggregate, Error, FieldKind, FilterSet, Layout, LayoutColumn, LayoutEvent, Locale, Result,
    Value,
};
use rust_xlsxwriter::utility::column_number_to_name;

use super::BACKEND;
use super::cells::{CellFormat, Line, SheetTarget, StyleId};
use super::number_format::excel_number_format;
use super::print::{MAX_ROW_BREAKS, PrintSetup};
use super::sheet_name::sanitise_sheet_name;
use crate::labels::Labels;

pub(crate) const MAX_ROWS: u32 = 1_048_576;
const MAX_COLUMNS: usize = 16_384;
/// Column widths, in characters of the default font.
const MIN_WIDTH: usize = 6;
const MAX_WIDTH: usize = 60;
/// Excel and Qlik count days alike from 1900-03-01 (Excel's serial 61; before it Excel counts
/// a 29 February 1900 that never was) up to Excel's last day, 9999-12-31.
pub(crate) const EXCEL_SERIALS: std::ops::Range<f64> = 61.0..2_958_466.0;

const HEADER_FILL: u32 = 0xD9E1F2;
const GROUP_FILL: u32 = 0xF2F2F2;
const NOTE_COLOR: u32 = 0x595959;

/// The texts above the table.
#[derive(Debug)]
pub(super) struct Heading<'a> {
    pub title: &'a str,
    pub subtitle: Option<&'a str>,
    pub filters: &'a FilterSet,
}

/// Where the table landed on the sheet (0-based rows).
#[derive(Debug, Clone, Copy)]
pub(super) struct Placement {
    /// The table's header row.
    pub header_row: u32,
    /// The first row below the header.
    pub first_row: u32,
    /// The last row written (the grand total when there is one).
    pub last_row: u32,
}

/// Refuses reports wider than a sheet before any work is done.
pub(super) fn check_size(layout: &Layout) -> Result<()> {
    if layout.columns.len() > MAX_COLUMNS {
        return Err(Error::invalid_input(format!(
            "the report has {} columns, more than the {MAX_COLUMNS} an Excel sheet holds; \
             list fewer columns or use CSV",
            layout.columns.len()
        ))
        .with_backend(BACKEND));
    }
    if layout.table.len() >= MAX_ROWS as usize {
        return Err(too_many_rows());
    }
    Ok(())
}

fn too_many_rows() -> Error {
    Error::invalid_input(format!(
        "the report needs more rows than the {MAX_ROWS} an Excel sheet holds; narrow the \
         filters, split the report, or use CSV"
    ))
    .with_backend(BACKEND)
}

impl Heading<'_> {
    /// The rows above the table's header: the title, the subtitle, the filters, a blank row.
    fn rows(&self) -> u32 {
        2 + u32::from(self.subtitle.is_some()) + u32::from(!self.filters.is_unfiltered())
    }
}

/// Writes the heading, the table with its group and total rows, and the sheet settings.
pub(super) fn write<S: SheetTarget>(
    worksheet: &mut S,
    layout: &Layout,
    heading: &Heading<'_>,
    print: &PrintSetup,
    locale: &Locale,
) -> Result<Placement> {
    worksheet.set_name(&sanitise_sheet_name(heading.title))?;
    worksheet.print_setup(print)?;
    let widths = column_widths(layout, locale);
    let styles = Styles::new(layout, &widths, worksheet);
    for (col, width) in widths.iter().enumerate() {
        worksheet.set_column_width(col as u16, width.chars)?;
    }
    worksheet.freeze_rows(heading.rows() + 1)?;

    let mut sheet = SheetWriter {
        worksheet,
        layout,
        locale,
        labels: Labels::for_locale(locale),
        styles,
        next_row: 0,
        data_start: 0,
        group_starts: Vec::with_capacity(layout.groups.len()),
        header_label: label_column(layout, |t| t != Some(Aggregate::Count)),
        footer_label: label_column(layout, |t| t.is_none()),
        break_levels: &print.break_levels,
        body_written: false,
        header_run: None,
        row_breaks: Vec::new(),
    };
    sheet.heading(heading)?;
    let header_row = sheet.header()?;
    debug_assert_eq!(header_row, heading.rows());
    let last_filtered_row = sheet.body()?;
    let last_col = layout.columns.len().saturating_sub(1) as u16;
    sheet
        .worksheet
        .autofilter(header_row, 0, last_filtered_row, last_col)?;
    if !sheet.row_breaks.is_empty() {
        sheet.worksheet.row_breaks(&sheet.row_breaks)?;
    }
    Ok(Placement {
        header_row,
        first_row: header_row + 1,
        last_row: sheet.next_row.saturating_sub(1),
    })
}

/// The first column whose total allows a label in it, if any.
fn label_column(layout: &Layout, allows: impl Fn(Option<Aggregate>) -> bool) -> Option<u16> {
    layout
        .columns
        .iter()
        .position(|c| allows(c.total))
        .map(|i| i as u16)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    Text,
    Number,
    Date,
}

impl CellKind {
    pub(crate) fn of(column: &LayoutColumn) -> CellKind {
        let temporal_format = column.format.as_ref().is_some_and(|f| f.is_temporal());
        match column.kind {
            FieldKind::Date | FieldKind::Timestamp => CellKind::Date,
            FieldKind::Integer | FieldKind::Number if temporal_format => CellKind::Date,
            FieldKind::Integer | FieldKind::Number => CellKind::Number,
            FieldKind::Text | FieldKind::Mixed => CellKind::Text,
        }
    }
}

/// The Excel number format of a column: its translated code, or a plain ISO date format for a
/// date column whose code Excel cannot show.
pub(crate) fn excel_code(column: &LayoutColumn) -> Option<String> {
    let translated = column.format.as_ref().and_then(excel_number_format);
    match CellKind::of(column) {
        CellKind::Date => translated.or_else(|| {
            Some(match column.kind {
                FieldKind::Date => "yyyy-mm-dd".to_string(),
                _ => "yyyy-mm-dd hh:mm:ss".to_string(),
            })
        }),
        CellKind::Number | CellKind::Text => translated,
    }
}

/// One column's cell kind, formula letter and formats, made once per workbook.
#[derive(Debug)]
struct ColumnStyle {
    kind: CellKind,
    letter: String,
    total: Option<Aggregate>,
    header: StyleId,
    /// `None` for text cells without a number format.
    data: Option<StyleId>,
    /// For texts in a column too narrow for its longest one: wrapped within the cell.
    text: Option<StyleId>,
    footer: StyleId,
    grand_total: StyleId,
}

/// Every format the sheet uses, made once so cells share them.
#[derive(Debug)]
struct Styles {
    title: StyleId,
    subtitle: StyleId,
    note: StyleId,
    groups: Vec<StyleId>,
    footer: StyleId,
    grand_total: StyleId,
    columns: Vec<ColumnStyle>,
}

impl Styles {
    fn new(layout: &Layout, widths: &[ColumnWidth], sheet: &mut impl SheetTarget) -> Styles {
        let header = CellFormat {
            bold: true,
            fill: Some(HEADER_FILL),
            border_bottom: Line::Thin,
            ..CellFormat::default()
        };
        let footer = CellFormat {
            bold: true,
            border_top: Line::Thin,
            ..CellFormat::default()
        };
        let grand_total = CellFormat {
            bold: true,
            border_top: Line::Double,
            ..CellFormat::default()
        };
        let columns = layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let kind = CellKind::of(column);
                let code = excel_code(column);
                let total_code = match column.total {
                    Some(Aggregate::Count) => Some("0".to_string()),
                    _ => code.clone(),
                };
                let with_code = |format: &CellFormat, code: &Option<String>| CellFormat {
                    num_format: code.clone(),
                    ..format.clone()
                };
                let header = CellFormat {
                    align_right: kind != CellKind::Text,
                    ..header.clone()
                };
                let data = code
                    .as_ref()
                    .map(|_| sheet.add_format(&with_code(&CellFormat::default(), &code)));
                let wrapped = CellFormat {
                    wrap: true,
                    ..CellFormat::default()
                };
                let text = widths[i].wraps.then(|| sheet.add_format(&wrapped));
                ColumnStyle {
                    kind,
                    letter: column_number_to_name(i as u16),
                    total: column.total,
                    header: sheet.add_format(&header),
                    data,
                    text,
                    footer: sheet.add_format(&with_code(&footer, &total_code)),
                    grand_total: sheet.add_format(&with_code(&grand_total, &total_code)),
                }
            })
            .collect();
        let groups = (0..layout.groups.len())
            .map(|level| {
                sheet.add_format(&CellFormat {
                    bold: true,
                    fill: Some(GROUP_FILL),
                    indent: level.min(15) as u8,
                    ..CellFormat::default()
                })
            })
            .collect();
        Styles {
            title: sheet.add_format(&CellFormat {
                bold: true,
                font_size: Some(14),
                ..CellFormat::default()
            }),
            subtitle: sheet.add_format(&CellFormat {
                font_size: Some(12),
                ..CellFormat::default()
            }),
            note: sheet.add_format(&CellFormat {
                italic: true,
                font_color: Some(NOTE_COLOR),
                ..CellFormat::default()
            }),
            groups,
            footer: sheet.add_format(&footer),
            grand_total: sheet.add_format(&grand_total),
            columns,
        }
    }
}

/// A column's width and whether its longest text is wider.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ColumnWidth {
    /// In characters of the default font.
    chars: f64,
    /// The column's texts wrap within their cells, since the longest does not fit.
    wraps: bool,
}

/// Widths from content: the header (plus room for the filter button), every text, and the
/// formatted smallest and largest number of each column, between 6 and 60 characters.
/// Relative width hints share out the content width of the hinted columns. A text column
/// narrower than its longest text wraps its texts.
fn column_widths(layout: &Layout, locale: &Locale) -> Vec<ColumnWidth> {
    let mut longest_texts = vec![0; layout.columns.len()];
    let mut widths: Vec<usize> = layout
        .columns
        .iter()
        .enumerate()
        .map(|(col, column)| {
            let longest_text = &mut longest_texts[col];
            let mut chars = column.header.chars().count() + 3;
            let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
            for row in 0..layout.table.len() {
                match (layout.value(row, col), CellKind::of(column)) {
                    (Value::Null, _) => {}
                    (Value::Number(n), _)
                    | (Value::Dual(n, _), CellKind::Number | CellKind::Date)
                        if n.is_finite() =>
                    {
                        low = low.min(*n);
                        high = high.max(*n);
                    }
                    (value, _) => {
                        let text = value.as_text().unwrap_or_default();
                        let count = text.chars().take(MAX_WIDTH + 1).count();
                        *longest_text = (*longest_text).max(count);
                        chars = chars.max(count);
                    }
                }
            }
            for extreme in [low, high].into_iter().filter(|n| n.is_finite()) {
                // Totals run wider than the widest value; two characters leave room for them.
                let shown = column.display(&Value::Number(extreme), locale);
                chars = chars.max(shown.chars().count() + 2);
            }
            chars.clamp(MIN_WIDTH, MAX_WIDTH) + 1
        })
        .collect();

    let hinted: Vec<(usize, f32)> = layout
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.width.filter(|w| *w > 0.0).map(|w| (i, w)))
        .collect();
    let hint_sum: f32 = hinted.iter().map(|(_, w)| w).sum();
    let hinted_width: usize = hinted.iter().map(|(i, _)| widths[*i]).sum();
    for (i, hint) in &hinted {
        let share = (hinted_width as f32 * hint / hint_sum).round() as usize;
        widths[*i] = share.clamp(MIN_WIDTH, MAX_WIDTH);
    }
    widths
        .into_iter()
        .zip(longest_texts)
        .zip(&layout.columns)
        .map(|((width, longest), column)| ColumnWidth {
            chars: width as f64,
            wraps: CellKind::of(column) == CellKind::Text && longest >= width,
        })
        .collect()
}

struct SheetWriter<'a, S> {
    worksheet: &'a mut S,
    layout: &'a Layout,
    locale: &'a Locale,
    labels: &'static Labels,
    styles: Styles,
    next_row: u32,
    /// The first row below the table header.
    data_start: u32,
    /// The header row of each open group, outermost first.
    group_starts: Vec<u32>,
    /// The column for group header texts: one without a count total, so a subtotal's COUNTA
    /// never counts the label.
    header_label: Option<u16>,
    /// The column for "Total ..." texts: one without any total.
    footer_label: Option<u16>,
    /// Per group level: whether its groups start a new printed page.
    break_levels: &'a [bool],
    /// Whether a row or total has been written below the table header.
    body_written: bool,
    /// The first row of the group headers written one after another up to now.
    header_run: Option<u32>,
    /// The rows that start a printed page, ascending.
    row_breaks: Vec<u32>,
}

impl<S: SheetTarget> SheetWriter<'_, S> {
    fn take_row(&mut self) -> Result<u32> {
        if self.next_row >= MAX_ROWS {
            return Err(too_many_rows());
        }
        self.next_row += 1;
        Ok(self.next_row - 1)
    }

    fn heading(&mut self, heading: &Heading<'_>) -> Result<()> {
        let row = self.take_row()?;
        let styles = &self.styles;
        self.worksheet
            .string(row, 0, heading.title, Some(styles.title))?;
        if let Some(subtitle) = heading.subtitle {
            let row = self.take_row()?;
            self.worksheet
                .string(row, 0, subtitle, Some(self.styles.subtitle))?;
        }
        if !heading.filters.is_unfiltered() {
            let row = self.take_row()?;
            let line = format!("{}: {}", self.labels.filters, heading.filters);
            self.worksheet
                .string(row, 0, &line, Some(self.styles.note))?;
        }
        self.take_row()?; // a blank row between the heading and the table
        Ok(())
    }

    fn header(&mut self) -> Result<u32> {
        let row = self.take_row()?;
        for (col, column) in self.layout.columns.iter().enumerate() {
            let format = self.styles.columns[col].header;
            self.worksheet
                .string(row, col as u16, &column.header, Some(format))?;
        }
        self.data_start = row + 1;
        Ok(row)
    }

    /// Writes the rows, group rows and totals; returns the last row the autofilter covers
    /// (the grand total stays outside it, so sorting never moves it).
    fn body(&mut self) -> Result<u32> {
        if self.layout.table.is_empty() {
            let row = self.take_row()?;
            let message = self.labels.no_data;
            self.worksheet
                .string(row, 0, message, Some(self.styles.note))?;
            return Ok(row);
        }
        let mut failure = None;
        let mut filter_end = self.data_start;
        let layout = self.layout;
        layout.walk(|event| {
            if failure.is_some() {
                return;
            }
            if matches!(event, LayoutEvent::GrandTotal { .. }) {
                filter_end = self.next_row.saturating_sub(1);
            }
            if let Err(e) = self.event(event) {
                failure = Some(e);
            }
        });
        if !self.layout.grand_total || !self.layout.has_totals() {
            filter_end = self.next_row.saturating_sub(1);
        }
        failure.map_or(Ok(filter_end), Err)
    }

    fn event(&mut self, event: LayoutEvent<'_>) -> Result<()> {
        let totals_shown = self.layout.has_totals();
        match event {
            LayoutEvent::GroupHeader {
                level,
                field,
                value,
            } => self.group_header(level, field, value),
            LayoutEvent::Row(row) => self.data_row(row),
            LayoutEvent::GroupFooter {
                level,
                value,
                totals,
                ..
            } if totals_shown => {
                let first = self.group_starts[level] + 1;
                let label = format!("{} {}", self.labels.total, self.group_text(level, value));
                self.totals_row(first, &label, totals, false)
            }
            LayoutEvent::GrandTotal { totals, .. } if totals_shown => {
                self.totals_row(self.data_start, self.labels.grand_total, totals, true)
            }
            LayoutEvent::GroupFooter { .. } | LayoutEvent::GrandTotal { .. } => Ok(()),
        }
    }

    fn group_header(&mut self, level: usize, field: &str, value: &Value) -> Result<()> {
        let row = self.take_row()?;
        self.break_page_before(level, row);
        self.group_starts.truncate(level);
        self.group_starts.push(row);
        let label = format!("{field}: {}", self.group_text(level, value));
        let format = self.styles.groups[level];
        for col in 0..self.layout.columns.len() as u16 {
            if Some(col) == self.header_label {
                self.worksheet.string(row, col, &label, Some(format))?;
            } else {
                self.worksheet.blank(row, col, format)?;
            }
        }
        Ok(())
    }

    /// A group value as the report shows it: with the column's format when the field is also a
    /// column, else with the field's own format.
    fn group_text(&self, level: usize, value: &Value) -> String {
        let index = self.layout.groups[level].0;
        match self.layout.columns.iter().find(|c| c.index == index) {
            Some(column) => column.display(value, self.locale),
            None => {
                let field = &self.layout.table.fields()[index];
                display(value, field.format.as_ref(), self.locale)
            }
        }
    }

    /// A group of a level that asks for it starts a new page, together with the group headers
    /// just above it; the first group stays on the page of the title.
    fn break_page_before(&mut self, level: usize, row: u32) {
        let run = match self.header_run {
            Some(start) if self.last_was_header(row) => start,
            _ => row,
        };
        self.header_run = Some(run);
        let wanted = self.break_levels.get(level).copied().unwrap_or(false);
        let placed = self.row_breaks.last() == Some(&run);
        if wanted && self.body_written && !placed && self.row_breaks.len() < MAX_ROW_BREAKS {
            self.row_breaks.push(run);
        }
    }

    /// Whether the row above `row` is a group header.
    fn last_was_header(&self, row: u32) -> bool {
        self.group_starts
            .last()
            .is_some_and(|&start| start + 1 == row)
    }

    fn data_row(&mut self, table_row: usize) -> Result<()> {
        self.body_written = true;
        let row = self.take_row()?;
        for (col, style) in self.styles.columns.iter().enumerate() {
            let value = self.layout.value(table_row, col);
            let column = &self.layout.columns[col];
            write_value(
                self.worksheet,
                row,
                col as u16,
                value,
                style,
                column,
                self.locale,
            )?;
        }
        Ok(())
    }

    /// A subtotal or grand total row: SUBTOTAL formulas over the rows above (SUBTOTAL skips
    /// the subtotals nested inside the range), each carrying the result mad-core computed.
    fn totals_row(
        &mut self,
        first: u32,
        label: &str,
        totals: &[Option<f64>],
        grand: bool,
    ) -> Result<()> {
        self.body_written = true;
        let last = self.next_row.saturating_sub(1);
        let row = self.take_row()?;
        let row_format = match grand {
            true => self.styles.grand_total,
            false => self.styles.footer,
        };
        for (col, style) in self.styles.columns.iter().enumerate() {
            let col_num = col as u16;
            let format = match grand {
                true => style.grand_total,
                false => style.footer,
            };
            let result = match (style.total, totals.get(col).copied().flatten()) {
                (Some(aggregate), Some(result)) if result.is_finite() => Some((aggregate, result)),
                _ => None,
            };
            match result {
                Some((aggregate, result)) => {
                    let formula = format!(
                        "SUBTOTAL({},{letter}{}:{letter}{})",
                        subtotal_function(aggregate),
                        first + 1,
                        last + 1,
                        letter = style.letter
                    );
                    self.worksheet
                        .formula(row, col_num, &formula, result, format)?;
                }
                None if Some(col_num) == self.footer_label => {
                    self.worksheet
                        .string(row, col_num, label, Some(row_format))?;
                }
                None => self.worksheet.blank(row, col_num, format)?,
            }
        }
        Ok(())
    }
}

/// Excel's SUBTOTAL function numbers that skip other SUBTOTAL cells.
pub(crate) fn subtotal_function(aggregate: Aggregate) -> u8 {
    match aggregate {
        Aggregate::Avg => 1,
        Aggregate::Count => 3, // COUNTA: every non-empty cell, as mad-core counts non-null values
        Aggregate::Max => 4,
        Aggregate::Min => 5,
        Aggregate::Sum => 9,
    }
}

/// One data cell: numbers (and the numbers of duals in numeric fields) as numbers, dates as
/// date cells, texts as strings, nulls as nothing.
fn write_value(
    worksheet: &mut impl SheetTarget,
    row: u32,
    col: u16,
    value: &Value,
    style: &ColumnStyle,
    column: &LayoutColumn,
    locale: &Locale,
) -> Result<()> {
    let written = match (value, style.kind) {
        (Value::Null, _) => return Ok(()),
        (Value::Number(n) | Value::Dual(n, _), CellKind::Date) if EXCEL_SERIALS.contains(n) => {
            worksheet.number(row, col, *n, style.data)
        }
        (Value::Number(_) | Value::Dual(..), CellKind::Date) => {
            // Excel cannot show this day as a date, so the cell holds the text instead.
            worksheet.string(row, col, &column.display(value, locale), None)
        }
        (Value::Number(n), _) | (Value::Dual(n, _), CellKind::Number) => {
            worksheet.number(row, col, *n, style.data)
        }
        (Value::Text(s) | Value::Dual(_, s), _) => worksheet.string(row, col, s, style.text),
    };
    written.map_err(|e| {
        e.context(format!(
            "writing row {} of column '{}'",
            row + 1,
            column.header
        ))
    })
}
