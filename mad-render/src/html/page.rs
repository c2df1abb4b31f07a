//! Writing one laid-out report as an HTML page.

use mad_core::format::display;
use mad_core::{Aggregate, CellStyle, FilterSet, Layout, LayoutEvent, Locale, Value};

use super::escape::escape_into;
use crate::labels::Labels;

/// The page's style sheet. Every rule the table needs is repeated inline on its elements, for
/// mail clients that drop `<style>`.
const STYLE_SHEET: &str = "\
body{font-family:Arial,Helvetica,sans-serif;color:#1f1f1f;margin:16px}\
h1{font-size:20px;margin:0 0 4px}\
p.subtitle{font-size:15px;margin:0 0 4px;color:#404040}\
p.filters{font-size:12px;margin:0 0 12px;color:#595959;font-style:italic}\
p.empty{font-size:14px;color:#595959;font-style:italic}\
table.report{border-collapse:collapse;font-size:13px}\
table.report th{background:#d9e1f2;border-bottom:1px solid #8ea9db;padding:4px 8px}\
table.report td{border-bottom:1px solid #e0e0e0;padding:4px 8px}\
table.report .num{text-align:right;white-space:nowrap}\
table.report .text{overflow-wrap:anywhere}\
table.band{width:100%;border-collapse:collapse;font-size:11px;color:#595959;margin:0 0 8px}\
div.chart{margin:8px 0 12px}\
table.report tr.group td{background:#f2f2f2;font-weight:bold}\
table.report tr.subtotal td{font-weight:bold;border-top:1px solid #808080}\
table.report tr.total td{font-weight:bold;border-top:3px double #404040}\
@media print{table.report thead{display:table-header-group}}";

const BODY: &str = "font-family:Arial,Helvetica,sans-serif;color:#1f1f1f;margin:16px";
const H1: &str = "font-size:20px;margin:0 0 4px";
const SUBTITLE: &str = "font-size:15px;margin:0 0 4px;color:#404040";
const FILTERS: &str = "font-size:12px;margin:0 0 12px;color:#595959;font-style:italic";
const EMPTY: &str = "font-size:14px;color:#595959;font-style:italic";
const TABLE: &str = "border-collapse:collapse;font-size:13px";
const TH: &str = "background:#d9e1f2;border-bottom:1px solid #8ea9db;padding:4px 8px";
const TD: &str = "border-bottom:1px solid #e0e0e0;padding:4px 8px";
const NUM: &str = "text-align:right;white-space:nowrap";
const TEXT: &str = "overflow-wrap:anywhere";
const BAND: &str =
    "width:100%;border-collapse:collapse;font-size:11px;color:#595959;margin:0 0 8px";
const CHART: &str = "margin:8px 0 12px";
const PAGE_BREAK: &str = "page-break-before:always;break-before:page";
/// How many rows are looked at to size the columns; the rest are sampled evenly.
const WIDTH_SAMPLE: usize = 2_000;
/// Text columns wider than this many characters wrap.
const WIDEST_TEXT: usize = 60;
const GROUP: &str = "background:#f2f2f2;font-weight:bold;border-bottom:1px solid #e0e0e0";
const SUBTOTAL: &str = "font-weight:bold;border-top:1px solid #808080";
const TOTAL: &str = "font-weight:bold;border-top:3px double #404040";

/// The texts around the table, already filled, and the charts.
#[derive(Debug)]
pub(super) struct Heading<'a> {
    pub title: &'a str,
    pub subtitle: Option<&'a str>,
    pub filters: &'a FilterSet,
    /// The left, centre and right texts of the lines above and below everything.
    pub header: Option<[String; 3]>,
    pub footer: Option<[String; 3]>,
    pub charts: Vec<Chart>,
    /// Per group level, whether each of its values starts a new printed page.
    pub page_breaks: Vec<bool>,
}

/// A chart image.
#[derive(Debug)]
pub(crate) struct Chart {
    /// A `cid:` or `data:` URL.
    pub src: String,
    pub alt: String,
    /// In CSS pixels.
    pub width: u32,
    pub height: u32,
    /// Above the table (else below).
    pub before: bool,
}

/// The whole page.
pub(super) fn write(layout: &Layout, heading: &Heading<'_>, locale: &Locale) -> String {
    let mut page = Page {
        out: String::with_capacity(2048 + layout.table.len() * layout.columns.len() * 64),
        layout,
        locale,
        label_column: layout.columns.iter().position(|c| c.total.is_none()),
        page_breaks: &heading.page_breaks,
        groups_seen: 0,
    };
    page.head(heading);
    if layout.table.is_empty() {
        page.tag_with_text("p", "empty", EMPTY, Labels::for_locale(locale).no_data);
    } else {
        page.charts(heading, true);
        page.table();
        page.charts(heading, false);
    }
    if let Some(footer) = &heading.footer {
        page.band("page-footer", footer);
    }
    page.out.push_str("</body>\n</html>\n");
    page.out
}

/// The table alone (or the note for an empty table), styled inline as on the page, for user
/// templates that place the default table in their own page.
pub(crate) fn table_fragment(layout: &Layout, locale: &Locale) -> String {
    let mut page = Page {
        out: String::with_capacity(1024 + layout.table.len() * layout.columns.len() * 64),
        layout,
        locale,
        label_column: layout.columns.iter().position(|c| c.total.is_none()),
        page_breaks: &[],
        groups_seen: 0,
    };
    if layout.table.is_empty() {
        page.tag_with_text("p", "empty", EMPTY, Labels::for_locale(locale).no_data);
    } else {
        page.table();
    }
    page.out
}

struct Page<'a> {
    out: String,
    layout: &'a Layout,
    locale: &'a Locale,
    /// The column for "Total ..." texts: the first one without a total.
    label_column: Option<usize>,
    page_breaks: &'a [bool],
    /// Group headers written so far.
    groups_seen: usize,
}

impl Page<'_> {
    fn labels(&self) -> &'static Labels {
        Labels::for_locale(self.locale)
    }

    fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    fn open(&mut self, tag: &str, class: &str, style: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        if !class.is_empty() {
            self.out.push_str(" class=\"");
            self.out.push_str(class);
            self.out.push('"');
        }
        self.out.push_str(" style=\"");
        self.out.push_str(style);
        self.out.push_str("\">");
    }

    fn close(&mut self, tag: &str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    fn tag_with_text(&mut self, tag: &str, class: &str, style: &str, text: &str) {
        self.open(tag, class, style);
        self.text(text);
        self.close(tag);
        self.out.push('\n');
    }

    fn head(&mut self, heading: &Heading<'_>) {
        self.out.push_str("<!DOCTYPE html>\n<html lang=\"");
        let locale = self.locale;
        self.text(&locale.tag);
        self.out.push_str("\">\n<head>\n<meta charset=\"utf-8\">\n");
        self.out
            .push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        self.out.push_str("<title>");
        self.text(heading.title);
        self.out.push_str("</title>\n<style>");
        self.out.push_str(STYLE_SHEET);
        self.out.push_str("</style>\n</head>\n");
        self.open("body", "", BODY);
        self.out.push('\n');
        if let Some(header) = &heading.header {
            self.band("page-header", header);
        }
        self.tag_with_text("h1", "", H1, heading.title);
        if let Some(subtitle) = heading.subtitle {
            self.tag_with_text("p", "subtitle", SUBTITLE, subtitle);
        }
        if !heading.filters.is_unfiltered() {
            let line = format!("{}: {}", self.labels().filters, heading.filters);
            self.tag_with_text("p", "filters", FILTERS, &line);
        }
    }

    /// A header or footer line: three cells, aligned left, centre and right.
    fn band(&mut self, class: &str, parts: &[String; 3]) {
        self.out.push_str("<table class=\"band ");
        self.out.push_str(class);
        self.out.push_str("\" role=\"presentation\" style=\"");
        self.out.push_str(BAND);
        self.out.push_str("\"><tr>");
        for (part, align) in parts.iter().zip(["left", "center", "right"]) {
            self.out.push_str("<td style=\"padding:0;text-align:");
            self.out.push_str(align);
            self.out.push_str("\">");
            self.text(part);
            self.out.push_str("</td>");
        }
        self.out.push_str("</tr></table>\n");
    }

    /// The charts that go before (or after) the table.
    fn charts(&mut self, heading: &Heading<'_>, before: bool) {
        for chart in heading.charts.iter().filter(|c| c.before == before) {
            self.open("div", "chart", CHART);
            self.out.push_str("<img src=\"");
            self.text(&chart.src);
            self.out.push_str("\" alt=\"");
            self.text(&chart.alt);
            self.out.push_str(&format!(
                "\" width=\"{}\" height=\"{}\" style=\"display:block;max-width:100%;height:auto\">",
                chart.width, chart.height
            ));
            self.close("div");
            self.out.push('\n');
        }
    }

    fn table(&mut self) {
        let width = if self.natural_chars().iter().sum::<usize>() > 80 {
            ";width:100%"
        } else {
            ""
        };
        self.out.push_str("<table class=\"report\" style=\"");
        self.out.push_str(TABLE);
        self.out.push_str(width);
        self.out.push_str("\">\n");
        self.column_widths();
        self.out.push_str("<thead><tr>");
        for column in &self.layout.columns {
            let (class, align) = alignment(column.is_numeric());
            self.out.push_str("<th");
            self.out.push_str(class);
            self.out.push_str(" style=\"");
            self.out.push_str(TH);
            self.out.push(';');
            self.out.push_str(align);
            self.out.push_str("\">");
            escape_into(&mut self.out, &column.header);
            self.out.push_str("</th>");
        }
        self.out.push_str("</tr></thead>\n<tbody>\n");

        let layout = self.layout;
        let mut in_footer = false;
        layout.walk(|event| match event {
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
            } if layout.has_totals() => {
                let label = format!("{} {}", self.labels().total, self.group_text(level, value));
                self.totals_row("subtotal", SUBTOTAL, &label, totals);
            }
            LayoutEvent::GrandTotal { totals, .. } if layout.has_totals() => {
                self.out.push_str("</tbody>\n<tfoot>\n");
                in_footer = true;
                self.totals_row("total", TOTAL, self.labels().grand_total, totals);
            }
            LayoutEvent::GroupFooter { .. } | LayoutEvent::GrandTotal { .. } => {}
        });
        self.out.push_str(if in_footer {
            "</tfoot>\n"
        } else {
            "</tbody>\n"
        });
        self.out.push_str("</table>\n");
    }

    /// Column widths as percentages of the table's width: from the report's relative width
    /// hints when it has any, else from the content (the longest text of each column, long
    /// texts capped so that they wrap).
    fn column_widths(&mut self) {
        let hints: Vec<Option<f32>> = self
            .layout
            .columns
            .iter()
            .map(|c| c.width.filter(|w| *w > 0.0))
            .collect();
        let weights: Vec<Option<f32>> = if hints.iter().any(Option::is_some) {
            hints
        } else {
            self.natural_chars()
                .into_iter()
                .map(|n| Some(n.max(3) as f32))
                .collect()
        };
        let sum: f32 = weights.iter().flatten().sum();
        if sum <= 0.0 {
            return;
        }
        self.out.push_str("<colgroup>");
        for weight in weights {
            match weight {
                Some(w) => {
                    let percent = w / sum * 100.0;
                    self.out
                        .push_str(&format!("<col style=\"width:{percent:.1}%\">"));
                }
                None => self.out.push_str("<col>"),
            }
        }
        self.out.push_str("</colgroup>\n");
    }

    /// Per column, the characters of its longest text (header, a sample of rows), with text
    /// columns capped at [`WIDEST_TEXT`].
    fn natural_chars(&self) -> Vec<usize> {
        let layout = self.layout;
        let rows = layout.table.len();
        let step = rows.div_ceil(WIDTH_SAMPLE).max(1);
        layout
            .columns
            .iter()
            .enumerate()
            .map(|(col, column)| {
                let widest = (0..rows)
                    .step_by(step)
                    .map(|row| {
                        column
                            .display(layout.value(row, col), self.locale)
                            .chars()
                            .count()
                    })
                    .max()
                    .unwrap_or(0);
                let header = column.header.chars().count();
                match column.is_numeric() {
                    true => widest.max(header),
                    false => widest.min(WIDEST_TEXT).max(header.min(WIDEST_TEXT)),
                }
            })
            .collect()
    }

    fn group_header(&mut self, level: usize, field: &str, value: &Value) {
        let label = format!("{field}: {}", self.group_text(level, value));
        let breaks = self.groups_seen > 0 && self.page_breaks.get(level) == Some(&true);
        self.groups_seen += 1;
        self.out.push_str("<tr class=\"group group-");
        self.out.push_str(&level.to_string());
        if breaks {
            self.out.push_str(" page-break\" style=\"");
            self.out.push_str(PAGE_BREAK);
        }
        self.out.push_str("\"><td colspan=\"");
        self.out.push_str(&self.layout.columns.len().to_string());
        self.out.push_str("\" style=\"");
        self.out.push_str(GROUP);
        self.out
            .push_str(&format!(";padding:4px 8px 4px {}px\">", 8 + 16 * level));
        self.text(&label);
        self.out.push_str("</td></tr>\n");
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

    fn data_row(&mut self, row: usize) {
        self.out.push_str("<tr>");
        for (col, column) in self.layout.columns.iter().enumerate() {
            let value = self.layout.value(row, col);
            let shown = column.display(value, self.locale);
            let style = column.style_for(value).copied();
            self.cell(column.is_numeric(), TD, style, &shown);
        }
        self.out.push_str("</tr>\n");
    }

    fn totals_row(&mut self, class: &str, style: &str, label: &str, totals: &[Option<f64>]) {
        self.out.push_str("<tr class=\"");
        self.out.push_str(class);
        self.out.push_str("\">");
        let style = format!("{TD};{style}");
        for (col, column) in self.layout.columns.iter().enumerate() {
            let total = totals.get(col).copied().flatten();
            let shown = match (column.total, total) {
                (Some(_), Some(total)) => column.display_total(total, self.locale),
                _ if Some(col) == self.label_column => label.to_string(),
                _ => String::new(),
            };
            let numeric = column.is_numeric() || column.total == Some(Aggregate::Count);
            let conditional = total.and_then(|t| column.style_for_total(t)).copied();
            self.cell(numeric, &style, conditional, &shown);
        }
        self.out.push_str("</tr>\n");
    }

    fn cell(&mut self, numeric: bool, style: &str, conditional: Option<CellStyle>, text: &str) {
        let (class, align) = alignment(numeric);
        self.out.push_str("<td");
        self.out.push_str(class);
        self.out.push_str(" style=\"");
        self.out.push_str(style);
        self.out.push(';');
        self.out.push_str(align);
        if let Some(c) = conditional {
            if let Some(color) = c.color {
                self.out.push_str(&format!(";color:{color}"));
            }
            if let Some(background) = c.background {
                self.out.push_str(&format!(";background:{background}"));
            }
            if c.bold {
                self.out.push_str(";font-weight:bold");
            }
        }
        self.out.push_str("\">");
        self.text(text);
        self.out.push_str("</td>");
    }
}

/// The class attribute and the inline style that align a cell: numbers to the right, texts
/// wrapping even within long words.
fn alignment(numeric: bool) -> (&'static str, &'static str) {
    if numeric {
        (" class=\"num\"", NUM)
    } else {
        ("", TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_number_style_matches_the_style_sheet() {
        assert!(STYLE_SHEET.contains(&format!(".num{{{NUM}}}")));
        assert!(STYLE_SHEET.contains(&format!(".text{{{TEXT}}}")));
        assert!(STYLE_SHEET.contains(&format!("table.band{{{BAND}}}")));
        assert_eq!(alignment(true).1, NUM);
    }
}
