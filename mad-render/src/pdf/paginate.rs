//! The first pass: lays a report out on pages as positioned text, fills and rules. The
//! second pass ([`super::write`]) turns the pages into PDF once their number is known.

use std::ops::Range;

use mad_core::format::{display, format_number};
use mad_core::{Layout, LayoutEvent, Locale, NumberFormat, RenderJob, Result, Value};

use super::font::{FontFace, Style};
use super::text::{Arena, Line};

/// Points per unit of the body font size, for the parts of a page.
const LINE_HEIGHT: f32 = 1.25;
const BASELINE: f32 = 0.97;
const PAD_X: f32 = 0.45;
const PAD_Y: f32 = 0.25;
const TITLE_SIZE: f32 = 1.8;
const SUBTITLE_SIZE: f32 = 1.25;
const INFO_SIZE: f32 = 0.95;
const FOOTER_SIZE: f32 = 0.85;
const GROUP_INDENT: f32 = 1.2;
/// A text column's minimum width is its longest word, but at most this share of the table.
const MAX_MINIMUM_SHARE: f32 = 0.3;
/// Titles, headers and group lines longer than this many lines are cut with an ellipsis.
const MAX_LABEL_LINES: usize = 6;

const HEADER_FILL: f32 = 0.84;
const GROUP_FILLS: [f32; 2] = [0.91, 0.955];
const GRAND_TOTAL_FILL: f32 = 0.88;

/// The page and the body font size, in points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sheet {
    pub width: f32,
    pub height: f32,
    pub margin: f32,
    pub size: f32,
}

impl Sheet {
    fn line_height(&self, size: f32) -> f32 {
        size * LINE_HEIGHT
    }

    fn footer_top(&self) -> f32 {
        self.margin + self.line_height(self.size * FOOTER_SIZE) * 1.6
    }
}

/// Something drawn on a page. `y` of a text is its baseline.
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    Text {
        style: Style,
        size: f32,
        x: f32,
        y: f32,
        text: Range<usize>,
    },
    Fill {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        gray: f32,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
}

/// A laid-out document: the text its marks point into, and each page's marks.
#[derive(Debug)]
pub(crate) struct Pages {
    pub text: Arena,
    pub pages: Vec<Vec<Mark>>,
}

/// The texts above the table on the first page.
#[derive(Debug)]
pub(crate) struct TitleBlock {
    pub title: String,
    pub subtitle: Option<String>,
    pub filters: String,
    pub run_date: Option<String>,
}

/// What the walk through the report produced, with every cell's text in the arena.
enum Item {
    Group {
        level: usize,
        text: Range<usize>,
    },
    /// A data row; its cells start at this index of `Prepared::cells`.
    Row(usize),
    Total {
        /// `None` for the grand total.
        level: Option<usize>,
        label: Range<usize>,
        cells: usize,
    },
}

struct Prepared {
    items: Vec<Item>,
    /// One text per layout column for each row and total, in item order.
    cells: Vec<Range<usize>>,
    grand_totals: Vec<Option<f64>>,
}

/// Lays out `layout` for `job` on pages of `sheet`.
pub(crate) fn paginate(
    job: &RenderJob<'_>,
    layout: &Layout,
    sheet: Sheet,
    block: &TitleBlock,
) -> Result<Pages> {
    let mut arena = Arena::default();
    let prepared = prepare(job, layout, &mut arena);
    let mut pager = Pager::new(sheet, layout, arena)?;
    pager.fit_columns(layout, &prepared);
    pager.lay_out(job, layout, block, &prepared);
    pager.add_footers(block.run_date.as_deref());
    Ok(Pages {
        text: pager.arena,
        pages: pager.pages,
    })
}

/// Walks the report once, storing every text it shows.
fn prepare(job: &RenderJob<'_>, layout: &Layout, arena: &mut Arena) -> Prepared {
    let locale = job.locale;
    let show_grand_total = job.report.grand_total;
    let mut prepared = Prepared {
        items: Vec::new(),
        cells: Vec::with_capacity(layout.table.len() * layout.columns.len()),
        grand_totals: Vec::new(),
    };
    layout.walk(|event| match event {
        LayoutEvent::GroupHeader {
            level,
            field,
            value,
        } => {
            let shown = group_value(layout, field, value, locale);
            let text = arena.push(&format!("{field}: {shown}"));
            prepared.items.push(Item::Group { level, text });
        }
        LayoutEvent::Row(row) => {
            prepared.items.push(Item::Row(prepared.cells.len()));
            for (col, column) in layout.columns.iter().enumerate() {
                let text = column.display(layout.value(row, col), locale);
                prepared.cells.push(arena.push(&text));
            }
        }
        LayoutEvent::GroupFooter {
            level,
            field,
            value,
            rows,
            totals,
        } => {
            let shown = group_value(layout, field, value, locale);
            let label = format!("Total {field}: {shown} ({})", rows_text(rows, locale));
            let label = arena.push(&label);
            let cells = push_totals(layout, totals, locale, arena, &mut prepared.cells);
            let level = Some(level);
            prepared.items.push(Item::Total {
                level,
                label,
                cells,
            });
        }
        LayoutEvent::GrandTotal { rows, totals } => {
            prepared.grand_totals = totals.to_vec();
            if show_grand_total {
                let label = arena.push(&format!("Grand total ({})", rows_text(rows, locale)));
                let cells = push_totals(layout, totals, locale, arena, &mut prepared.cells);
                let level = None;
                prepared.items.push(Item::Total {
                    level,
                    label,
                    cells,
                });
            }
        }
    });
    prepared
}

/// A group's value as its field's format shows it (the field need not be a report column).
fn group_value(layout: &Layout, field: &str, value: &Value, locale: &Locale) -> String {
    let format = layout.table.schema().field(field);
    display(value, format.and_then(|f| f.format.as_ref()), locale)
}

fn push_totals(
    layout: &Layout,
    totals: &[Option<f64>],
    locale: &Locale,
    arena: &mut Arena,
    cells: &mut Vec<Range<usize>>,
) -> usize {
    let first = cells.len();
    for (column, total) in layout.columns.iter().zip(totals) {
        let text = total.map(|t| column.display_total(t, locale));
        cells.push(arena.push(text.as_deref().unwrap_or("")));
    }
    first
}

fn rows_text(rows: usize, locale: &Locale) -> String {
    let count = format_number(rows as f64, &NumberFormat::new("#,##0"), locale);
    if rows == 1 {
        format!("{count} row")
    } else {
        format!("{count} rows")
    }
}

/// "Totals: Sales: 1,234.00  |  Profit: 56.00" for the columns that have a total.
fn totals_line(layout: &Layout, totals: &[Option<f64>], locale: &Locale) -> Option<String> {
    let parts: Vec<String> = layout
        .columns
        .iter()
        .zip(totals)
        .filter_map(|(c, t)| Some(format!("{}: {}", c.header, c.display_total((*t)?, locale))))
        .collect();
    (!parts.is_empty()).then(|| format!("Totals: {}", parts.join("  |  ")))
}

/// A column's place on the page.
#[derive(Debug, Clone, Copy)]
struct ColumnBox {
    x: f32,
    width: f32,
    right: bool,
}

/// A text to place in a band: its horizontal span, alignment and face.
#[derive(Debug, Clone)]
struct Cell {
    text: Range<usize>,
    x: f32,
    width: f32,
    right: bool,
    style: Style,
}

/// A horizontal strip of the table: a header, a row, a group line or a total.
#[derive(Debug, Clone, Copy, Default)]
struct Band {
    fill: Option<f32>,
    fill_x: f32,
    rule_above: Option<f32>,
    max_lines: Option<usize>,
}

struct Pager<'a> {
    sheet: Sheet,
    regular: &'static FontFace,
    bold: &'static FontFace,
    layout: &'a Layout,
    arena: Arena,
    pages: Vec<Vec<Mark>>,
    columns: Vec<ColumnBox>,
    header: Vec<Range<usize>>,
    /// The top of the free space on the current page.
    y: f32,
    /// Bands placed on the current page below the repeated header.
    placed: usize,
    /// The header texts of the groups open at this point, outermost first.
    open_groups: Vec<Range<usize>>,
    cells: Vec<Cell>,
    lines: Vec<Line>,
    /// For each cell of the band being placed, its range in `lines`.
    cell_lines: Vec<Range<usize>>,
}

impl<'a> Pager<'a> {
    fn new(sheet: Sheet, layout: &'a Layout, mut arena: Arena) -> Result<Self> {
        let header = layout
            .columns
            .iter()
            .map(|c| arena.push(&c.header))
            .collect();
        Ok(Pager {
            sheet,
            regular: Style::Regular.face()?,
            bold: Style::Bold.face()?,
            layout,
            arena,
            pages: Vec::new(),
            columns: Vec::new(),
            header,
            y: 0.0,
            placed: 0,
            open_groups: Vec::new(),
            cells: Vec::new(),
            lines: Vec::new(),
            cell_lines: Vec::new(),
        })
    }

    fn face(&self, style: Style) -> &'static FontFace {
        match style {
            Style::Regular => self.regular,
            Style::Bold => self.bold,
        }
    }

    fn left(&self) -> f32 {
        self.sheet.margin
    }

    fn table_width(&self) -> f32 {
        self.sheet.width - 2.0 * self.sheet.margin
    }

    fn top(&self) -> f32 {
        self.sheet.height - self.sheet.margin
    }

    fn bottom(&self) -> f32 {
        self.sheet.footer_top()
    }

    fn pad_x(&self) -> f32 {
        self.sheet.size * PAD_X
    }

    /// Sets the column boxes from the content's widths and the report's width hints.
    fn fit_columns(&mut self, layout: &Layout, prepared: &Prepared) {
        let size = self.sheet.size;
        let pad = 2.0 * self.pad_x();
        let (natural, longest_word) = self.content_widths(layout, prepared);
        let widest_minimum = self.table_width() * MAX_MINIMUM_SHARE;
        let needs: Vec<ColumnNeed> = layout
            .columns
            .iter()
            .zip(natural.iter().zip(&longest_word))
            .map(|(column, (&natural, &word))| {
                let natural = natural + pad;
                let floor = if column.is_numeric() {
                    natural
                } else {
                    natural.min(size * 5.0)
                };
                let minimum = (word + pad).min(widest_minimum).min(natural).max(floor);
                ColumnNeed {
                    natural,
                    minimum,
                    floor,
                    numeric: column.is_numeric(),
                    hint: column.width,
                }
            })
            .collect();
        let mut x = self.left();
        self.columns = fit_widths(&needs, self.table_width())
            .into_iter()
            .zip(&layout.columns)
            .map(|(width, column)| {
                let b = ColumnBox {
                    x,
                    width,
                    right: column.is_numeric(),
                };
                x += width;
                b
            })
            .collect();
    }

    /// Per column, the widths of its widest text and of its longest word, in points.
    fn content_widths(&self, layout: &Layout, prepared: &Prepared) -> (Vec<f32>, Vec<f32>) {
        let n = layout.columns.len();
        let size = self.sheet.size;
        let mut natural: Vec<f32> = self
            .header
            .iter()
            .map(|h| self.arena.measure(h.clone(), self.bold, size).0)
            .collect();
        let mut longest_word = natural.clone();
        for item in &prepared.items {
            let (start, face) = match item {
                Item::Row(start) => (*start, self.regular),
                Item::Total { cells, .. } => (*cells, self.bold),
                Item::Group { .. } => continue,
            };
            for (col, cell) in prepared.cells[start..start + n].iter().enumerate() {
                let (width, word) = self.arena.measure(cell.clone(), face, size);
                natural[col] = natural[col].max(width);
                longest_word[col] = longest_word[col].max(word);
            }
        }
        (natural, longest_word)
    }

    fn lay_out(&mut self, job: &RenderJob<'_>, layout: &Layout, block: &TitleBlock, p: &Prepared) {
        self.new_page();
        self.title_block(job, layout, block, &p.grand_totals);
        if layout.table.is_empty() {
            let text = self.arena.push("No data for these filters.");
            self.text_lines(text, Style::Regular, self.sheet.size * 1.1, usize::MAX);
            return;
        }
        self.table_header();
        for (i, item) in p.items.iter().enumerate() {
            self.item(item, &p.items[i + 1..], &p.cells);
        }
    }

    fn pad_y(&self) -> f32 {
        self.sheet.size * PAD_Y
    }

    fn current_page(&mut self) -> &mut Vec<Mark> {
        if self.pages.is_empty() {
            self.new_page();
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = self.top();
        self.placed = 0;
    }

    /// Starts a new page with the table header and the open groups, continued.
    fn continue_on_new_page(&mut self) {
        self.new_page();
        self.table_header();
        for level in 0..self.open_groups.len() {
            let label = format!(
                "{} (continued)",
                self.arena.get(self.open_groups[level].clone())
            );
            let text = self.arena.push(&label);
            self.set_group_cells(level, text);
            let band = self.group_band(level);
            let height = self.measure(band);
            self.place(band, height);
        }
        self.placed = 0;
    }

    fn title_block(
        &mut self,
        job: &RenderJob<'_>,
        layout: &Layout,
        b: &TitleBlock,
        t: &[Option<f64>],
    ) {
        let size = self.sheet.size;
        let title = self.arena.push(&b.title);
        self.text_lines(title, Style::Bold, size * TITLE_SIZE, MAX_LABEL_LINES);
        if let Some(subtitle) = &b.subtitle {
            let subtitle = self.arena.push(subtitle);
            self.text_lines(
                subtitle,
                Style::Regular,
                size * SUBTITLE_SIZE,
                MAX_LABEL_LINES,
            );
        }
        self.y -= size * 0.3;
        let filters = self.arena.push(&format!("Filters: {}", b.filters));
        self.text_lines(filters, Style::Regular, size * INFO_SIZE, MAX_LABEL_LINES);
        let totals = (!layout.table.is_empty())
            .then(|| totals_line(layout, t, job.locale))
            .flatten();
        if let Some(totals) = totals {
            let totals = self.arena.push(&totals);
            self.text_lines(totals, Style::Regular, size * INFO_SIZE, MAX_LABEL_LINES);
        }
        self.y -= size * 0.8;
    }

    /// Places a text across the table's width, wrapped, without a band.
    fn text_lines(&mut self, text: Range<usize>, style: Style, size: f32, max_lines: usize) {
        let first = self.lines.len();
        let face = self.face(style);
        let width = self.table_width();
        self.arena
            .wrap(text, face, size, width, max_lines, &mut self.lines);
        let lh = self.sheet.line_height(size);
        let x = self.left();
        for i in first..self.lines.len() {
            let y = self.y - size * BASELINE;
            let text = self.lines[i].range.clone();
            self.current_page().push(Mark::Text {
                style,
                size,
                x,
                y,
                text,
            });
            self.y -= lh;
        }
        self.lines.truncate(first);
    }

    fn table_header(&mut self) {
        self.cells.clear();
        for (b, text) in self.columns.iter().zip(&self.header) {
            self.cells.push(Cell {
                text: text.clone(),
                x: b.x,
                width: b.width,
                right: b.right,
                style: Style::Bold,
            });
        }
        let band = Band {
            fill: Some(HEADER_FILL),
            max_lines: Some(MAX_LABEL_LINES),
            ..Band::default()
        };
        let height = self.measure(band);
        self.place(band, height);
    }

    fn item(&mut self, item: &Item, rest: &[Item], cells: &[Range<usize>]) {
        match item {
            Item::Group { level, text } => {
                self.open_groups.truncate(*level);
                let keep = self.following_height(rest, cells);
                let band = self.group_band(*level);
                self.put(band, keep, &|p: &mut Self| {
                    p.set_group_cells(*level, text.clone())
                });
                self.open_groups.push(text.clone());
            }
            Item::Row(start) => {
                let texts = &cells[*start..*start + self.columns.len()];
                let band = Band::default();
                self.put(band, 0.0, &|p: &mut Self| p.set_row_cells(texts));
            }
            Item::Total {
                level,
                label,
                cells: start,
            } => {
                if let Some(level) = level {
                    self.open_groups.truncate(*level);
                }
                let totals = &cells[*start..*start + self.columns.len()];
                self.total(*level, label.clone(), totals);
            }
        }
    }

    /// Places a band whose cells `set` fills in, on a new page when it does not fit with
    /// `keep` more points that must follow it on the same page. A band taller than a whole
    /// page has its cells cut, with an ellipsis, to the lines that fit.
    fn put(&mut self, mut band: Band, keep: f32, set: &dyn Fn(&mut Self)) {
        set(self);
        let mut height = self.measure(band);
        let may_break = self.placed > 0 || self.pages.len() == 1;
        if self.y - height - keep < self.bottom() && may_break {
            self.continue_on_new_page();
            set(self);
            height = self.measure(band);
        }
        if self.y - height < self.bottom() {
            let room = self.y - self.bottom() - 2.0 * self.pad_y();
            let lines = (room / self.sheet.line_height(self.sheet.size)).floor();
            band.max_lines = Some(lines.max(1.0) as usize);
            height = self.measure(band);
        }
        self.place(band, height);
    }

    /// The height of what must stay with a group header: nested headers and the first row.
    fn following_height(&mut self, rest: &[Item], cells: &[Range<usize>]) -> f32 {
        let mut height = 0.0;
        for item in rest {
            match item {
                Item::Group { level, text } => {
                    self.set_group_cells(*level, text.clone());
                    height += self.measure(self.group_band(*level));
                }
                Item::Row(start) => {
                    self.set_row_cells(&cells[*start..*start + self.columns.len()]);
                    return height + self.measure(Band::default());
                }
                Item::Total { .. } => return height,
            }
        }
        height
    }

    fn total(&mut self, level: Option<usize>, label: Range<usize>, totals: &[Range<usize>]) {
        let band = match level {
            Some(_) => Band {
                rule_above: Some(0.5),
                max_lines: Some(MAX_LABEL_LINES),
                ..Band::default()
            },
            None => Band {
                fill: Some(GRAND_TOTAL_FILL),
                rule_above: Some(1.0),
                max_lines: Some(MAX_LABEL_LINES),
                ..Band::default()
            },
        };
        let span = self
            .layout
            .columns
            .iter()
            .position(|c| c.total.is_some())
            .unwrap_or(self.columns.len());
        if span > 0 {
            let set = |p: &mut Self| p.set_total_cells(Some(label.clone()), totals, span);
            self.put(band, 0.0, &set);
            return;
        }
        // The first column has a total, so the label gets a line of its own.
        let all = self.columns.len();
        let set_label = |p: &mut Self| {
            p.cells.clear();
            p.push_span_cell(label.clone(), 0, all);
        };
        self.put(band, 0.0, &set_label);
        let plain = Band {
            fill: band.fill,
            ..Band::default()
        };
        self.put(plain, 0.0, &|p: &mut Self| {
            p.set_total_cells(None, totals, 0)
        });
    }

    fn set_total_cells(
        &mut self,
        label: Option<Range<usize>>,
        totals: &[Range<usize>],
        span: usize,
    ) {
        self.cells.clear();
        if let Some(label) = label {
            self.push_span_cell(label, 0, span);
        }
        for (col, text) in totals.iter().enumerate().skip(span) {
            if text.is_empty() {
                continue;
            }
            let b = self.columns[col];
            self.cells.push(Cell {
                text: text.clone(),
                x: b.x,
                width: b.width,
                right: true,
                style: Style::Bold,
            });
        }
    }

    fn push_span_cell(&mut self, text: Range<usize>, from: usize, to: usize) {
        let x = self.columns.get(from).map_or(self.left(), |b| b.x);
        let width = self.columns[from..to].iter().map(|b| b.width).sum();
        self.cells.push(Cell {
            text,
            x,
            width,
            right: false,
            style: Style::Bold,
        });
    }

    fn set_row_cells(&mut self, texts: &[Range<usize>]) {
        self.cells.clear();
        for (b, text) in self.columns.iter().zip(texts) {
            self.cells.push(Cell {
                text: text.clone(),
                x: b.x,
                width: b.width,
                right: b.right,
                style: Style::Regular,
            });
        }
    }

    fn set_group_cells(&mut self, level: usize, text: Range<usize>) {
        let indent = level as f32 * self.sheet.size * GROUP_INDENT;
        self.cells.clear();
        self.cells.push(Cell {
            text,
            x: self.left() + indent,
            width: self.table_width() - indent,
            right: false,
            style: Style::Bold,
        });
    }

    fn group_band(&self, level: usize) -> Band {
        Band {
            fill: Some(GROUP_FILLS[level.min(GROUP_FILLS.len() - 1)]),
            fill_x: level as f32 * self.sheet.size * GROUP_INDENT,
            rule_above: None,
            max_lines: Some(MAX_LABEL_LINES),
        }
    }

    /// Wraps the current cells into `self.lines` and returns the band's height.
    fn measure(&mut self, band: Band) -> f32 {
        self.lines.clear();
        self.cell_lines.clear();
        let size = self.sheet.size;
        let pad = self.pad_x();
        let max_lines = band.max_lines.unwrap_or(usize::MAX);
        let mut most = 1;
        for cell in &self.cells {
            let face = match cell.style {
                Style::Regular => self.regular,
                Style::Bold => self.bold,
            };
            let start = self.lines.len();
            let room = (cell.width - 2.0 * pad).max(size);
            self.arena.wrap(
                cell.text.clone(),
                face,
                size,
                room,
                max_lines,
                &mut self.lines,
            );
            most = most.max(self.lines.len() - start);
            self.cell_lines.push(start..self.lines.len());
        }
        most as f32 * self.sheet.line_height(size) + 2.0 * self.pad_y()
    }

    /// Draws the current cells, as last measured, as `band` at the top of the free space.
    fn place(&mut self, band: Band, height: f32) {
        let size = self.sheet.size;
        let (top, pad, lh) = (self.y, self.pad_x(), self.sheet.line_height(size));
        if self.pages.is_empty() {
            self.new_page();
        }
        let last = self.pages.len() - 1;
        let page = &mut self.pages[last];
        if let Some(gray) = band.fill {
            let x = self.sheet.margin + band.fill_x;
            let width = self.sheet.width - self.sheet.margin - x;
            page.push(Mark::Fill {
                x,
                y: top - height,
                width,
                height,
                gray,
            });
        }
        if let Some(width) = band.rule_above {
            let (x1, x2) = (self.sheet.margin, self.sheet.width - self.sheet.margin);
            page.push(Mark::Rule {
                x1,
                x2,
                y: top,
                width,
            });
        }
        for (cell, lines) in self.cells.iter().zip(&self.cell_lines) {
            for (i, line) in self.lines[lines.clone()].iter().enumerate() {
                if line.range.is_empty() {
                    continue;
                }
                let x = if cell.right {
                    cell.x + cell.width - pad - line.width
                } else {
                    cell.x + pad
                };
                let y = top - self.sheet.size * PAD_Y - i as f32 * lh - size * BASELINE;
                page.push(Mark::Text {
                    style: cell.style,
                    size,
                    x,
                    y,
                    text: line.range.clone(),
                });
            }
        }
        self.y -= height;
        self.placed += 1;
    }

    /// "Page X of Y" on every page, and the run date when there is one.
    fn add_footers(&mut self, run_date: Option<&str>) {
        let size = self.sheet.size * FOOTER_SIZE;
        let y = self.sheet.margin + size * 0.3;
        let count = self.pages.len();
        let date = run_date.map(|d| self.arena.push(&format!("Run date: {d}")));
        for number in 1..=count {
            let text = self.arena.push(&format!("Page {number} of {count}"));
            let width = self.regular.width(self.arena.get(text.clone()), size);
            let x = self.sheet.width - self.sheet.margin - width;
            let page = &mut self.pages[number - 1];
            page.push(Mark::Text {
                style: Style::Regular,
                size,
                x,
                y,
                text,
            });
            if let Some(date) = &date {
                let x = self.sheet.margin;
                page.push(Mark::Text {
                    style: Style::Regular,
                    size,
                    x,
                    y,
                    text: date.clone(),
                });
            }
        }
    }
}

/// What a column needs: its content's width, the width it shrinks to before words break
/// (`minimum`), the least it shrinks to before every column scales down (`floor`), and the
/// report's relative width hint.
#[derive(Debug, Clone, Copy)]
struct ColumnNeed {
    natural: f32,
    minimum: f32,
    floor: f32,
    numeric: bool,
    hint: Option<f32>,
}

/// Splits `available` points among the columns.
///
/// A column with a width hint gets a share of the page by its hint, where a column without
/// one counts as 1.0 (so a hint of 2 is twice an average column). The columns without hints
/// share the rest by content: when it is wide enough, text columns get the spare room; when
/// it is not, text columns shrink towards their minimum (their longest word, so words rarely
/// break) in proportion to how much wider their content is than that, and wrap; numbers keep
/// their width unless even the minimums do not fit, when every column scales down.
fn fit_widths(needs: &[ColumnNeed], available: f32) -> Vec<f32> {
    let free_count = needs.iter().filter(|n| n.hint.is_none()).count() as f32;
    let hint_sum: f32 = needs.iter().filter_map(|n| n.hint).sum();
    let per_weight = available / (hint_sum + free_count).max(f32::EPSILON);
    let hinted: f32 = hint_sum * per_weight;
    let room = if free_count > 0.0 {
        available - hinted
    } else {
        0.0
    };

    let free: Vec<&ColumnNeed> = needs.iter().filter(|n| n.hint.is_none()).collect();
    let mut shares = share_by_content(&free, room).into_iter();
    needs
        .iter()
        .map(|n| match n.hint {
            Some(h) => h * per_weight,
            None => shares.next().unwrap_or(0.0),
        })
        .collect()
}

fn share_by_content(needs: &[&ColumnNeed], room: f32) -> Vec<f32> {
    let natural: f32 = needs.iter().map(|n| n.natural).sum();
    if natural <= room {
        let has_text = needs.iter().any(|n| !n.numeric);
        let growing = |n: &ColumnNeed| !n.numeric || !has_text;
        let base: f32 = needs.iter().filter(|n| growing(n)).map(|n| n.natural).sum();
        let spare = room - natural;
        return needs
            .iter()
            .map(|n| match growing(n) {
                true => n.natural + spare * n.natural / base.max(f32::EPSILON),
                false => n.natural,
            })
            .collect();
    }
    if needs.iter().map(|n| n.minimum).sum::<f32>() <= room {
        return shrink(needs, room);
    }
    if needs.iter().map(|n| n.floor).sum::<f32>() <= room {
        return cap_widest(needs, room);
    }
    let floor: f32 = needs.iter().map(|n| n.floor).sum();
    needs
        .iter()
        .map(|n| n.floor * room / floor.max(f32::EPSILON))
        .collect()
}

/// Caps every column's minimum at one width, no lower than its floor, choosing the widest cap
/// that fits: the columns with the longest words give way and narrow ones keep their width.
fn cap_widest(needs: &[&ColumnNeed], room: f32) -> Vec<f32> {
    let capped = |cap: f32| needs.iter().map(move |n| n.minimum.min(cap).max(n.floor));
    let (mut low, mut high) = (0.0_f32, needs.iter().map(|n| n.minimum).fold(0.0, f32::max));
    for _ in 0..32 {
        let mid = (low + high) / 2.0;
        if capped(mid).sum::<f32>() <= room {
            low = mid;
        } else {
            high = mid;
        }
    }
    let widths: Vec<f32> = capped(low).collect();
    let spare = room - widths.iter().sum::<f32>();
    let total: f32 = widths.iter().sum();
    widths
        .iter()
        .map(|w| w + spare * w / total.max(f32::EPSILON))
        .collect()
}

/// Shrinks each column from its natural width towards its minimum, in proportion to the room
/// it can give, so that they fill `room`; the minimums must fit.
fn shrink(needs: &[&ColumnNeed], room: f32) -> Vec<f32> {
    let excess = needs.iter().map(|n| n.natural).sum::<f32>() - room;
    let slack: f32 = needs.iter().map(|n| n.natural - n.minimum).sum();
    if excess <= 0.0 || slack <= 0.0 {
        return needs.iter().map(|n| n.natural).collect();
    }
    needs
        .iter()
        .map(|n| n.natural - (n.natural - n.minimum) * excess / slack)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(natural: f32, minimum: f32, numeric: bool, hint: Option<f32>) -> ColumnNeed {
        ColumnNeed {
            natural,
            minimum,
            floor: minimum,
            numeric,
            hint,
        }
    }

    #[test]
    fn long_words_break_before_numbers_shrink() {
        let mut long = need(400.0, 250.0, false, None);
        long.floor = 50.0;
        let mut id = need(80.0, 80.0, false, None);
        id.floor = 50.0;
        let w = fit_widths(&[need(100.0, 100.0, true, None), id, long], 380.0);
        assert!((w[0] - 100.0).abs() < 0.1, "{w:?}");
        assert!((w[1] - 80.0).abs() < 0.1, "{w:?}");
        assert!((w[2] - 200.0).abs() < 0.1, "{w:?}");
    }

    fn sum(v: &[f32]) -> f32 {
        v.iter().sum()
    }

    #[test]
    fn spare_room_goes_to_text_columns() {
        let w = fit_widths(
            &[need(50.0, 50.0, true, None), need(100.0, 40.0, false, None)],
            300.0,
        );
        assert_eq!(w[0], 50.0);
        assert!((sum(&w) - 300.0).abs() < 0.01);
    }

    #[test]
    fn text_shrinks_before_numbers() {
        let w = fit_widths(
            &[need(80.0, 80.0, true, None), need(400.0, 40.0, false, None)],
            300.0,
        );
        assert_eq!(w[0], 80.0);
        assert!((w[1] - 220.0).abs() < 0.01);
    }

    #[test]
    fn everything_scales_when_minimums_do_not_fit() {
        let w = fit_widths(
            &[
                need(300.0, 300.0, true, None),
                need(300.0, 100.0, false, None),
            ],
            200.0,
        );
        assert!((sum(&w) - 200.0).abs() < 0.01);
        assert!(w[0] > w[1]);
    }

    #[test]
    fn hints_take_shares_of_the_page() {
        let w = fit_widths(
            &[
                need(10.0, 10.0, false, Some(2.0)),
                need(10.0, 10.0, false, None),
            ],
            300.0,
        );
        assert!((w[0] - 200.0).abs() < 0.01);
        assert!((w[1] - 100.0).abs() < 0.01);
        let all = fit_widths(
            &[
                need(1.0, 1.0, true, Some(1.0)),
                need(1.0, 1.0, true, Some(3.0)),
            ],
            400.0,
        );
        assert_eq!(all, vec![100.0, 300.0]);
    }
}
