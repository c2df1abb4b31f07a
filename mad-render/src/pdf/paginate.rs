//! Lays a report out on pages in two passes over its rows.
//!
//! The first pass ([`measure`]) only measures: every cell's width for the column widths, the
//! characters the fonts must cover and the grand totals for the line under the title. The
//! second ([`Pager`]) places the title, charts, group headers, rows and totals, and hands each
//! page to the [`Writer`] as soon as it is full. Only the current page's marks and texts are
//! held, so memory does not grow with the number of rows (beyond the finished file itself).

use std::ops::Range;

use mad_core::format::{display, format_number};
use mad_core::{
    CellStyle, Color, Error, Layout, LayoutEvent, Locale, NumberFormat, PageBand, Placeholders,
    RenderJob, Result, Value,
};

use super::font::{BlockSet, FontFace, Style};
use super::text::{Arena, Line};
use super::write::Writer;
use crate::chart::{Anchor, Scene, Shape};
use crate::labels::Labels;

/// Points per unit of the body font size, for the parts of a page.
const LINE_HEIGHT: f32 = 1.25;
const BASELINE: f32 = 0.97;
const PAD_X: f32 = 0.45;
const PAD_Y: f32 = 0.25;
const TITLE_SIZE: f32 = 1.8;
const SUBTITLE_SIZE: f32 = 1.25;
const INFO_SIZE: f32 = 0.95;
pub(crate) const BAND_SIZE: f32 = 0.85;
const GROUP_INDENT: f32 = 1.2;
/// A text column's minimum width is its longest word, but at most this share of the table.
const MAX_MINIMUM_SHARE: f32 = 0.3;
/// Titles, headers and group lines longer than this many lines are cut with an ellipsis.
const MAX_LABEL_LINES: usize = 6;
/// What ends a cut text; its font block is only embedded when a cut may happen.
const ELLIPSIS: &str = "…";

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
    /// Whether every page has a header line above the content.
    pub has_header: bool,
}

impl Sheet {
    fn line_height(&self, size: f32) -> f32 {
        size * LINE_HEIGHT
    }

    /// The height a header or footer line takes, with its gap to the content.
    fn band_height(&self) -> f32 {
        self.line_height(self.size * BAND_SIZE) * 1.6
    }

    fn footer_top(&self) -> f32 {
        self.margin + self.band_height()
    }

    fn content_top(&self) -> f32 {
        let header = if self.has_header {
            self.band_height()
        } else {
            0.0
        };
        self.height - self.margin - header
    }

    /// The baselines of the header and footer lines.
    pub(crate) fn band_baselines(&self) -> (f32, f32) {
        let size = self.size * BAND_SIZE;
        (
            self.height - self.margin - size * BASELINE,
            self.margin + size * 0.3,
        )
    }

    pub(crate) fn content_width(&self) -> f32 {
        self.width - 2.0 * self.margin
    }

    pub(crate) fn content_height(&self) -> f32 {
        self.content_top() - self.footer_top()
    }
}

/// How an area is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Paint {
    Gray(f32),
    Rgb(Color),
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
        color: Option<Color>,
    },
    Fill {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        paint: Paint,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
    /// A chart's shape (never a text), whose scene's top left corner is at `x`, `top`.
    Shape { shape: Shape, x: f32, top: f32 },
}

/// The texts above the table on the first page, and the templates of every page's header and
/// footer lines.
#[derive(Debug)]
pub(crate) struct TitleBlock {
    pub title: String,
    pub subtitle: Option<String>,
    pub filters: String,
    pub bands: PageBands,
}

/// The header and footer lines, filled per page.
#[derive(Debug)]
pub(crate) struct PageBands {
    placeholders: Placeholders,
    header: Option<PageBand>,
    footer: PageBand,
}

impl PageBands {
    /// The bands of `job`'s report: its header and footer, or "Page X of Y" and the run date.
    /// `{title}` and `{filters}` are filled besides the job's placeholders.
    pub(crate) fn new(job: &RenderJob<'_>, title: &str, filters: &str) -> PageBands {
        let mut placeholders = job.placeholders.clone();
        placeholders.set("title", title).set("filters", filters);
        PageBands {
            placeholders,
            header: job.report.header.clone(),
            footer: report_footer(job),
        }
    }

    /// The header's and the footer's left, centre and right texts of one page.
    pub(crate) fn texts(&mut self, page: usize, pages: usize) -> Result<[[Option<String>; 3]; 2]> {
        self.placeholders
            .set("page", page.to_string())
            .set("pages", pages.to_string());
        let fill = |band: Option<&PageBand>| -> Result<[Option<String>; 3]> {
            let Some(band) = band else {
                return Ok([None, None, None]);
            };
            let one = |part: &Option<String>| {
                part.as_deref()
                    .map(|t| self.placeholders.render(t).map(|s| s.replace('\n', " ")))
                    .transpose()
            };
            Ok([one(&band.left)?, one(&band.center)?, one(&band.right)?])
        };
        Ok([fill(self.header.as_ref())?, fill(Some(&self.footer))?])
    }
}

/// The report's footer, or for a report without one "Page X of Y" and the run date.
pub(crate) fn report_footer(job: &RenderJob<'_>) -> PageBand {
    job.report.footer.clone().unwrap_or_else(|| {
        let labels = Labels::for_locale(job.locale);
        let run_date = job.placeholders.get("run.date").is_some();
        PageBand {
            left: run_date.then(|| labels.run_date.to_string()),
            center: None,
            right: Some(labels.page_of.into()),
        }
    })
}

/// Word widths of a column's cells, in buckets of `WORD_BUCKET` points.
const WORD_BUCKET: f32 = 2.0;
const WORD_BUCKETS: usize = 256;
/// The share of a text column's cells whose longest word must fit unbroken.
const UNBROKEN_SHARE: f32 = 0.9;

/// What the first pass learnt about one column.
#[derive(Debug, Clone)]
struct ColumnText {
    /// The widths of its widest text and of its header, in points.
    natural: f32,
    header_word: f32,
    /// How many cells have their longest word in each bucket.
    words: Vec<u32>,
    /// No cell has a space or line break: codes and ids, which should never wrap.
    single_words: bool,
}

impl ColumnText {
    fn add(&mut self, width: f32, word: f32, text: &str) {
        self.natural = self.natural.max(width);
        let bucket = ((word / WORD_BUCKET).ceil() as usize).min(WORD_BUCKETS - 1);
        self.words[bucket] += 1;
        self.single_words &= !text.contains([' ', '\n']);
    }

    /// The width that the longest word of most cells fits in (and the header's).
    fn minimum_word(&self) -> f32 {
        let cells: u32 = self.words.iter().sum();
        let wanted = (cells as f32 * UNBROKEN_SHARE).ceil() as u32;
        let mut seen = 0;
        let bucket = self
            .words
            .iter()
            .position(|&n| {
                seen += n;
                seen >= wanted
            })
            .unwrap_or(0);
        (bucket as f32 * WORD_BUCKET).max(self.header_word)
    }
}

/// Tables with up to this many cells keep the texts the first pass formats for the second;
/// larger ones format them again, so that memory stays flat.
const CACHED_CELLS: usize = 200_000;

/// The texts of the data cells, in the order the walk visits them.
#[derive(Debug, Default)]
struct CellCache {
    text: String,
    ends: Vec<u32>,
    /// The next cell the second pass reads.
    next: usize,
}

impl CellCache {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.ends.push(self.text.len() as u32);
    }

    fn take(&mut self) -> &str {
        let start = match self.next {
            0 => 0,
            n => self.ends[n - 1] as usize,
        };
        let end = self.ends.get(self.next).map_or(start, |&e| e as usize);
        self.next += 1;
        &self.text[start..end]
    }
}

/// What the first pass found.
#[derive(Debug)]
pub(crate) struct Measured {
    cells: Option<CellCache>,
    columns: Vec<ColumnText>,
    grand_totals: Vec<Option<f64>>,
    /// The widest title, group or total label, in points as it is set.
    widest_label: f32,
    /// The characters of every text the document shows.
    pub blocks: BlockSet,
}

/// The first pass: measures every text of the report without keeping any.
pub(crate) fn measure(
    job: &RenderJob<'_>,
    layout: &Layout,
    sheet: Sheet,
    block: &mut TitleBlock,
    charts: &[(Scene, bool)],
) -> Result<Measured> {
    let (regular, bold) = (Style::Regular.face()?, Style::Bold.face()?);
    let size = sheet.size;
    let locale = job.locale;
    let mut blocks = BlockSet::default();
    for text in [" ", &block.title, &block.filters]
        .into_iter()
        .chain(Labels::for_locale(locale).texts())
        .chain(block.subtitle.as_deref())
    {
        blocks.add_text(text);
    }
    for band in block.bands.texts(1, 1)?.iter().flatten().flatten() {
        blocks.add_text(band);
    }
    for shape in charts.iter().flat_map(|(scene, _)| &scene.shapes) {
        if let Shape::Text { text, .. } = shape {
            blocks.add_text(text);
        }
    }
    let mut widest_label = [
        bold.width(&block.title, size * TITLE_SIZE),
        regular.width(&filters_line(&block.filters, locale), size * INFO_SIZE),
        block
            .subtitle
            .as_deref()
            .map_or(0.0, |s| regular.width(s, size * SUBTITLE_SIZE)),
    ]
    .into_iter()
    .fold(0.0, f32::max);

    let mut arena = Arena::default();
    let mut columns: Vec<ColumnText> = layout
        .columns
        .iter()
        .map(|c| {
            blocks.add_text(&c.header);
            arena.clear();
            let range = arena.push(&c.header);
            // Headers wrap only when even the least widths do not fit.
            let (natural, _) = arena.measure(range, bold, size);
            ColumnText {
                natural,
                header_word: natural,
                words: vec![0; WORD_BUCKETS],
                single_words: true,
            }
        })
        .collect();
    let mut grand_totals = Vec::new();
    let mut cells = (layout.table.len() * layout.columns.len() <= CACHED_CELLS).then(|| {
        let mut cache = CellCache::default();
        cache
            .ends
            .reserve(layout.table.len() * layout.columns.len());
        cache
    });
    let mut measure_cell = |col: usize, text: &str, face: &FontFace, blocks: &mut BlockSet| {
        arena.clear();
        let range = arena.push(text);
        let (width, word) = arena.measure(range, face, size);
        columns[col].add(width, word, text);
        blocks.add_text(text);
    };
    layout.walk(|event| match event {
        LayoutEvent::GroupHeader { field, value, .. } => {
            let label = group_label(layout, field, value, locale);
            widest_label = widest_label.max(bold.width(&label, size) + size * 12.0);
            blocks.add_text(&label);
        }
        LayoutEvent::Row(row) => {
            for (col, column) in layout.columns.iter().enumerate() {
                let value = layout.value(row, col);
                let face = match column.style_for(value) {
                    Some(style) if style.bold => bold,
                    _ => regular,
                };
                let text = column.display(value, locale);
                measure_cell(col, &text, face, &mut blocks);
                if let Some(cells) = &mut cells {
                    cells.push(&text);
                }
            }
        }
        LayoutEvent::GroupFooter {
            field,
            value,
            rows,
            totals,
            ..
        } => {
            let label = footer_label(layout, field, value, rows, locale);
            widest_label = widest_label.max(bold.width(&label, size));
            blocks.add_text(&label);
            for (col, text) in total_texts(layout, totals, locale).iter().enumerate() {
                measure_cell(col, text, bold, &mut blocks);
            }
        }
        LayoutEvent::GrandTotal { rows, totals } => {
            blocks.add_text(&grand_total_label(rows, locale));
            for (col, text) in total_texts(layout, totals, locale).iter().enumerate() {
                measure_cell(col, text, bold, &mut blocks);
            }
            grand_totals = totals.to_vec();
        }
    });
    if let Some(line) = totals_line(layout, &grand_totals, locale) {
        widest_label = widest_label.max(regular.width(&line, size * INFO_SIZE));
        blocks.add_text(&line);
    }
    Ok(Measured {
        cells,
        columns,
        grand_totals,
        widest_label,
        blocks,
    })
}

/// "State: Kentucky", the value as its field's format shows it (the field need not be a
/// report column).
fn group_label(layout: &Layout, field: &str, value: &Value, locale: &Locale) -> String {
    let format = layout.table.schema().field(field);
    let shown = display(value, format.and_then(|f| f.format.as_ref()), locale);
    format!("{field}: {shown}")
}

fn footer_label(layout: &Layout, field: &str, value: &Value, rows: usize, l: &Locale) -> String {
    let label = group_label(layout, field, value, l);
    let total = Labels::for_locale(l).total;
    format!("{total} {label} ({})", rows_text(rows, l))
}

fn grand_total_label(rows: usize, locale: &Locale) -> String {
    let grand_total = Labels::for_locale(locale).grand_total;
    format!("{grand_total} ({})", rows_text(rows, locale))
}

/// "Filters: Region = East" in the locale's language.
fn filters_line(filters: &str, locale: &Locale) -> String {
    format!("{}: {filters}", Labels::for_locale(locale).filters)
}

fn total_texts(layout: &Layout, totals: &[Option<f64>], locale: &Locale) -> Vec<String> {
    layout
        .columns
        .iter()
        .zip(totals)
        .map(|(column, total)| {
            total
                .map(|t| column.display_total(t, locale))
                .unwrap_or_default()
        })
        .collect()
}

fn rows_text(rows: usize, locale: &Locale) -> String {
    let count = format_number(rows as f64, &NumberFormat::new("#,##0"), locale);
    format!("{count} {}", Labels::for_locale(locale).rows(rows))
}

/// "Totals: Sales: 1,234.00  |  Profit: 56.00" for the columns that have a total.
fn totals_line(layout: &Layout, totals: &[Option<f64>], locale: &Locale) -> Option<String> {
    let parts: Vec<String> = layout
        .columns
        .iter()
        .zip(totals)
        .filter_map(|(c, t)| Some(format!("{}: {}", c.header, c.display_total((*t)?, locale))))
        .collect();
    let label = Labels::for_locale(locale).totals;
    (!parts.is_empty()).then(|| format!("{label}: {}", parts.join("  |  ")))
}

/// A column's place on the page.
#[derive(Debug, Clone, Copy)]
struct ColumnBox {
    x: f32,
    width: f32,
    right: bool,
}

/// A text to place in a band: its horizontal span, alignment, face and colours.
#[derive(Debug, Clone)]
struct Cell {
    text: Range<usize>,
    x: f32,
    width: f32,
    right: bool,
    style: Style,
    color: Option<Color>,
    background: Option<Color>,
}

/// A horizontal strip of the table: a header, a row, a group line or a total.
#[derive(Debug, Clone, Copy, Default)]
struct Band {
    fill: Option<f32>,
    fill_x: f32,
    rule_above: Option<f32>,
    max_lines: Option<usize>,
}

/// Lays out `layout` for `job` on pages of `sheet`, handing each finished page to a writer
/// whose fonts cover what `measured` found; returns the writer, ready to finish.
pub(crate) fn paginate(
    job: &RenderJob<'_>,
    layout: &Layout,
    sheet: Sheet,
    block: &TitleBlock,
    mut measured: Measured,
    charts: &[(Scene, bool)],
    compression: u8,
) -> Result<Writer> {
    let columns = fit_columns(layout, &measured, sheet);
    if may_cut(&measured, &columns, sheet) {
        measured.blocks.add_text(ELLIPSIS);
    }
    let mut writer = Writer::new(&measured.blocks, sheet, compression)?;
    let mut pager = Pager::new(job, sheet, layout, columns, &mut writer)?;
    pager.cached = measured.cells.take();
    pager.lay_out(block, &measured.grand_totals, charts);
    pager.flush();
    match pager.error.take() {
        Some(err) => Err(err),
        None => Ok(writer),
    }
}

/// Whether some text may be too long for its place and be cut with an ellipsis: a label of
/// more than [`MAX_LABEL_LINES`] lines, or a cell taller than a page. Generous, since a cut
/// text whose ellipsis the fonts lack would show a missing glyph.
fn may_cut(measured: &Measured, columns: &[ColumnBox], sheet: Sheet) -> bool {
    let size = sheet.size;
    let label_room = sheet.content_width() * (MAX_LABEL_LINES as f32 - 1.0) * 0.8;
    let page_lines = sheet.content_height() / sheet.line_height(size);
    let lines = |width: f32, room: f32| width / room * 1.5 + 1.0;
    measured.widest_label > label_room
        || measured.columns.iter().zip(columns).any(|(text, b)| {
            let room = (b.width - 2.0 * size * PAD_X).max(size);
            lines(text.natural, room) > page_lines * 0.8
                || lines(text.header_word, room) > MAX_LABEL_LINES as f32
        })
}

/// The column boxes from the content's widths and the report's width hints.
///
/// Numbers, and texts that are single words (codes, ids), keep their width unless even the
/// least widths do not fit; other texts may shrink until the longest word of most of their
/// cells just fits, so a few long words break rather than every row growing.
fn fit_columns(layout: &Layout, measured: &Measured, sheet: Sheet) -> Vec<ColumnBox> {
    let size = sheet.size;
    let pad = 2.0 * size * PAD_X;
    let table_width = sheet.content_width();
    let widest_minimum = table_width * MAX_MINIMUM_SHARE;
    let needs: Vec<ColumnNeed> = layout
        .columns
        .iter()
        .zip(&measured.columns)
        .map(|(column, text)| {
            let natural = text.natural + pad;
            let rigid = column.is_numeric() || (text.single_words && natural <= widest_minimum);
            let floor = if rigid {
                natural
            } else {
                natural.min(size * 5.0)
            };
            let word = text.minimum_word();
            let minimum = (word + pad).min(widest_minimum).min(natural).max(floor);
            ColumnNeed {
                natural,
                minimum,
                floor,
                rigid,
                hint: column.width,
            }
        })
        .collect();
    let mut x = sheet.margin;
    fit_widths(&needs, table_width)
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
        .collect()
}

struct Pager<'a, 'w> {
    sheet: Sheet,
    regular: &'static FontFace,
    bold: &'static FontFace,
    layout: &'a Layout,
    locale: &'a Locale,
    show_grand_total: bool,
    /// Per group level, whether each of its values starts a new page.
    page_breaks: Vec<bool>,
    writer: &'w mut Writer,
    /// The first error from the writer; later pages are not written.
    error: Option<Error>,
    /// The texts of the band being placed.
    band: Arena,
    /// The texts the current page's marks point into.
    page_text: Arena,
    marks: Vec<Mark>,
    page_number: usize,
    columns: Vec<ColumnBox>,
    /// The top of the free space on the current page.
    y: f32,
    /// Bands placed on the current page below the repeated header.
    placed: usize,
    /// The header texts of the groups open at this point, outermost first.
    open_groups: Vec<String>,
    /// Group headers waiting for their first row, so they stay on its page.
    pending: Vec<(usize, String)>,
    row_texts: Vec<String>,
    row_styles: Vec<Option<CellStyle>>,
    /// The cell texts of the first pass, when it kept them.
    cached: Option<CellCache>,
    cells: Vec<Cell>,
    lines: Vec<Line>,
    /// For each cell of the band being placed, its range in `lines`.
    cell_lines: Vec<Range<usize>>,
}

impl<'a, 'w> Pager<'a, 'w> {
    fn new(
        job: &'a RenderJob<'_>,
        sheet: Sheet,
        layout: &'a Layout,
        columns: Vec<ColumnBox>,
        writer: &'w mut Writer,
    ) -> Result<Self> {
        Ok(Pager {
            sheet,
            regular: Style::Regular.face()?,
            bold: Style::Bold.face()?,
            layout,
            locale: job.locale,
            show_grand_total: job.report.grand_total,
            page_breaks: job
                .report
                .group_levels()
                .iter()
                .map(|g| g.page_break)
                .collect(),
            writer,
            error: None,
            band: Arena::default(),
            page_text: Arena::default(),
            marks: Vec::new(),
            page_number: 0,
            columns,
            y: 0.0,
            placed: 0,
            open_groups: Vec::new(),
            pending: Vec::new(),
            row_texts: vec![String::new(); layout.columns.len()],
            row_styles: vec![None; layout.columns.len()],
            cached: None,
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
        self.sheet.content_width()
    }

    fn bottom(&self) -> f32 {
        self.sheet.footer_top()
    }

    fn pad_x(&self) -> f32 {
        self.sheet.size * PAD_X
    }

    fn pad_y(&self) -> f32 {
        self.sheet.size * PAD_Y
    }

    fn lay_out(
        &mut self,
        block: &TitleBlock,
        grand_totals: &[Option<f64>],
        charts: &[(Scene, bool)],
    ) {
        self.new_page();
        self.title_block(block, grand_totals);
        let layout = self.layout;
        if layout.table.is_empty() {
            let size = self.sheet.size * 1.1;
            self.text_lines(
                Labels::for_locale(self.locale).no_data,
                Style::Regular,
                size,
                usize::MAX,
            );
            return;
        }
        for (scene, _) in charts.iter().filter(|(_, before)| *before) {
            self.chart(scene);
        }
        self.table_header();
        self.placed = 0;
        layout.walk(|event| self.event(event));
        for (scene, _) in charts.iter().filter(|(_, before)| !*before) {
            self.chart(scene);
        }
    }

    fn event(&mut self, event: LayoutEvent<'_>) {
        let (layout, locale) = (self.layout, self.locale);
        match event {
            LayoutEvent::GroupHeader {
                level,
                field,
                value,
            } => {
                self.open_groups.truncate(level);
                let label = group_label(layout, field, value, locale);
                self.pending.push((level, label));
            }
            LayoutEvent::Row(row) => {
                for (col, column) in layout.columns.iter().enumerate() {
                    let value = layout.value(row, col);
                    self.row_styles[col] = column.style_for(value).copied();
                    let text = &mut self.row_texts[col];
                    text.clear();
                    match &mut self.cached {
                        Some(cells) => text.push_str(cells.take()),
                        None => text.push_str(&column.display(value, locale)),
                    }
                }
                let set = |p: &mut Self| p.set_row_cells();
                if self.pending.is_empty() {
                    self.put(Band::default(), 0.0, &set);
                } else {
                    self.place_pending(&set);
                    self.put(Band::default(), 0.0, &set);
                }
            }
            LayoutEvent::GroupFooter {
                level,
                field,
                value,
                rows,
                totals,
            } => {
                self.open_groups.truncate(level);
                let label = footer_label(layout, field, value, rows, locale);
                self.total(Some(level), &label, totals);
            }
            LayoutEvent::GrandTotal { rows, totals } => {
                if self.show_grand_total {
                    self.total(None, &grand_total_label(rows, locale), totals);
                }
            }
        }
    }

    /// Places the waiting group headers so that they stay on one page with the row that
    /// `set_row` sets, starting a new page first when a level asks for it.
    fn place_pending(&mut self, set_row: &dyn Fn(&mut Self)) {
        let pending = std::mem::take(&mut self.pending);
        let breaks = pending.iter().any(|(level, _)| self.page_breaks[*level]);
        if breaks && self.placed > 0 {
            self.continue_on_new_page();
        }
        let mut heights: Vec<f32> = pending
            .iter()
            .map(|(level, text)| {
                self.set_group_cells(*level, text);
                self.measure(self.group_band(*level))
            })
            .collect();
        set_row(self);
        heights.push(self.measure(Band::default()));
        for (i, (level, text)) in pending.iter().enumerate() {
            let keep: f32 = heights[i + 1..].iter().sum();
            let band = self.group_band(*level);
            self.put(band, keep, &|p: &mut Self| p.set_group_cells(*level, text));
            self.open_groups.push(text.clone());
        }
    }

    /// Hands the current page to the writer.
    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(err) = self.writer.page(&mut self.marks, &mut self.page_text)
        {
            self.error = Some(err);
        }
        self.marks.clear();
        self.page_text.clear();
    }

    fn new_page(&mut self) {
        if self.page_number > 0 {
            self.flush();
        }
        self.page_number += 1;
        self.y = self.sheet.content_top();
        self.placed = 0;
    }

    /// Starts a new page with the table header and the open groups, continued.
    fn continue_on_new_page(&mut self) {
        self.new_page();
        self.table_header();
        for level in 0..self.open_groups.len() {
            let continued = Labels::for_locale(self.locale).continued;
            let label = format!("{} {continued}", self.open_groups[level]);
            self.set_group_cells(level, &label);
            let band = self.group_band(level);
            let height = self.measure(band);
            self.place(band, height);
        }
        self.placed = 0;
    }

    fn title_block(&mut self, b: &TitleBlock, grand_totals: &[Option<f64>]) {
        let size = self.sheet.size;
        self.text_lines(&b.title, Style::Bold, size * TITLE_SIZE, MAX_LABEL_LINES);
        if let Some(subtitle) = &b.subtitle {
            let size = size * SUBTITLE_SIZE;
            self.text_lines(subtitle, Style::Regular, size, MAX_LABEL_LINES);
        }
        self.y -= size * 0.3;
        let filters = filters_line(&b.filters, self.locale);
        self.text_lines(&filters, Style::Regular, size * INFO_SIZE, MAX_LABEL_LINES);
        let totals = (!self.layout.table.is_empty())
            .then(|| totals_line(self.layout, grand_totals, self.locale))
            .flatten();
        if let Some(totals) = totals {
            self.text_lines(&totals, Style::Regular, size * INFO_SIZE, MAX_LABEL_LINES);
        }
        self.y -= size * 0.8;
    }

    /// Places a text across the table's width, wrapped, without a band.
    fn text_lines(&mut self, text: &str, style: Style, size: f32, max_lines: usize) {
        self.band.clear();
        self.lines.clear();
        let range = self.band.push(text);
        let face = self.face(style);
        let width = self.table_width();
        self.band
            .wrap(range, face, size, width, max_lines, &mut self.lines);
        let lh = self.sheet.line_height(size);
        let x = self.left();
        for i in 0..self.lines.len() {
            let y = self.y - size * BASELINE;
            let text = self.page_text.copy(&self.band, self.lines[i].range.clone());
            self.marks.push(Mark::Text {
                style,
                size,
                x,
                y,
                text,
                color: None,
            });
            self.y -= lh;
        }
    }

    /// Places a chart across the table's width, on a new page when it does not fit.
    fn chart(&mut self, scene: &Scene) {
        let gap = self.sheet.size;
        if self.y - scene.height - gap < self.bottom() && self.y < self.sheet.content_top() {
            self.new_page();
        }
        let (x, top) = (self.left(), self.y);
        for shape in &scene.shapes {
            let Shape::Text {
                x: tx,
                y: ty,
                size,
                bold,
                anchor,
                color,
                text,
            } = shape
            else {
                self.marks.push(Mark::Shape {
                    shape: shape.clone(),
                    x,
                    top,
                });
                continue;
            };
            let style = if *bold { Style::Bold } else { Style::Regular };
            let width = self.face(style).width(text, *size);
            let shift = match anchor {
                Anchor::Start => 0.0,
                Anchor::Middle => width / 2.0,
                Anchor::End => width,
            };
            let range = self.page_text.push(text);
            self.marks.push(Mark::Text {
                style,
                size: *size,
                x: x + tx - shift,
                y: top - ty,
                text: range,
                color: Some(*color),
            });
        }
        self.y -= scene.height + gap;
    }

    fn table_header(&mut self) {
        self.band.clear();
        self.cells.clear();
        for (i, column) in self.layout.columns.iter().enumerate() {
            let text = self.band.push(&column.header);
            let b = self.columns[i];
            self.cells.push(Cell {
                text,
                x: b.x,
                width: b.width,
                right: b.right,
                style: Style::Bold,
                color: None,
                background: None,
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

    /// Places a band whose cells `set` fills in, on a new page when it does not fit with
    /// `keep` more points that must follow it on the same page. A band taller than a whole
    /// page has its cells cut, with an ellipsis, to the lines that fit.
    fn put(&mut self, mut band: Band, keep: f32, set: &dyn Fn(&mut Self)) {
        set(self);
        let mut height = self.measure(band);
        let may_break = self.placed > 0 || self.page_number == 1;
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

    fn total(&mut self, level: Option<usize>, label: &str, totals: &[Option<f64>]) {
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
        let texts = total_texts(self.layout, totals, self.locale);
        let styles: Vec<Option<CellStyle>> = self
            .layout
            .columns
            .iter()
            .zip(totals)
            .map(|(c, t)| t.and_then(|t| c.style_for_total(t)).copied())
            .collect();
        let span = self
            .layout
            .columns
            .iter()
            .position(|c| c.total.is_some())
            .unwrap_or(self.columns.len());
        if span > 0 {
            let set = |p: &mut Self| p.set_total_cells(Some(label), &texts, &styles, span);
            self.put(band, 0.0, &set);
            return;
        }
        // The first column has a total, so the label gets a line of its own.
        let all = self.columns.len();
        let set_label = |p: &mut Self| {
            p.band.clear();
            p.cells.clear();
            p.push_span_cell(label, 0, all);
        };
        self.put(band, 0.0, &set_label);
        let plain = Band {
            fill: band.fill,
            ..Band::default()
        };
        self.put(plain, 0.0, &|p: &mut Self| {
            p.set_total_cells(None, &texts, &styles, 0)
        });
    }

    fn set_total_cells(
        &mut self,
        label: Option<&str>,
        totals: &[String],
        styles: &[Option<CellStyle>],
        span: usize,
    ) {
        self.band.clear();
        self.cells.clear();
        if let Some(label) = label {
            self.push_span_cell(label, 0, span);
        }
        for (col, text) in totals.iter().enumerate().skip(span) {
            if text.is_empty() {
                continue;
            }
            let b = self.columns[col];
            let style = styles[col];
            let text = self.band.push(text);
            self.cells.push(Cell {
                text,
                x: b.x,
                width: b.width,
                right: true,
                style: Style::Bold,
                color: style.and_then(|s| s.color),
                background: style.and_then(|s| s.background),
            });
        }
    }

    fn push_span_cell(&mut self, text: &str, from: usize, to: usize) {
        let x = self.columns.get(from).map_or(self.left(), |b| b.x);
        let width = self.columns[from..to].iter().map(|b| b.width).sum();
        let text = self.band.push(text);
        self.cells.push(Cell {
            text,
            x,
            width,
            right: false,
            style: Style::Bold,
            color: None,
            background: None,
        });
    }

    fn set_row_cells(&mut self) {
        self.band.clear();
        self.cells.clear();
        for (i, b) in self.columns.iter().enumerate() {
            let text = self.band.push(&self.row_texts[i]);
            let style = self.row_styles[i];
            self.cells.push(Cell {
                text,
                x: b.x,
                width: b.width,
                right: b.right,
                style: match style {
                    Some(s) if s.bold => Style::Bold,
                    _ => Style::Regular,
                },
                color: style.and_then(|s| s.color),
                background: style.and_then(|s| s.background),
            });
        }
    }

    fn set_group_cells(&mut self, level: usize, text: &str) {
        let indent = level as f32 * self.sheet.size * GROUP_INDENT;
        self.band.clear();
        self.cells.clear();
        let text = self.band.push(text);
        self.cells.push(Cell {
            text,
            x: self.left() + indent,
            width: self.table_width() - indent,
            right: false,
            style: Style::Bold,
            color: None,
            background: None,
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
            self.band.wrap(
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
        if let Some(gray) = band.fill {
            let x = self.sheet.margin + band.fill_x;
            let width = self.sheet.width - self.sheet.margin - x;
            self.marks.push(Mark::Fill {
                x,
                y: top - height,
                width,
                height,
                paint: Paint::Gray(gray),
            });
        }
        if let Some(width) = band.rule_above {
            let (x1, x2) = (self.sheet.margin, self.sheet.width - self.sheet.margin);
            self.marks.push(Mark::Rule {
                x1,
                x2,
                y: top,
                width,
            });
        }
        for (cell, lines) in self.cells.iter().zip(&self.cell_lines) {
            if let Some(background) = cell.background {
                self.marks.push(Mark::Fill {
                    x: cell.x,
                    y: top - height,
                    width: cell.width,
                    height,
                    paint: Paint::Rgb(background),
                });
            }
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
                let text = self.page_text.copy(&self.band, line.range.clone());
                self.marks.push(Mark::Text {
                    style: cell.style,
                    size,
                    x,
                    y,
                    text,
                    color: cell.color,
                });
            }
        }
        self.y -= height;
        self.placed += 1;
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
    /// Keeps its width: numbers and single-word texts.
    rigid: bool,
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
        let has_text = needs.iter().any(|n| !n.rigid);
        let growing = |n: &ColumnNeed| !n.rigid || !has_text;
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

    fn need(natural: f32, minimum: f32, rigid: bool, hint: Option<f32>) -> ColumnNeed {
        ColumnNeed {
            natural,
            minimum,
            floor: minimum,
            rigid,
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
