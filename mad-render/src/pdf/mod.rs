//! The PDF renderer.
//!
//! A document has the report's title and subtitle, a line naming the filters applied, a line
//! of grand totals, the charts placed before the table, and the table: a header row repeated
//! on every page, group headers and subtotals per group level (a level may start each value on
//! a new page), a grand total row, then the charts placed after it. Numbers and dates align
//! right in their format; long texts wrap within their column; conditional styles colour
//! cells. Every page has a header and a footer line ("Page X of Y" and the run date unless the
//! report says otherwise).
//!
//! Rendering takes two passes over the rows ([`paginate`]): one measures, one lays out pages
//! and hands each to the [`write::Writer`] as soon as it is full, so memory does not grow with
//! the rows beyond the file itself.
//!
//! Text is set in DejaVu Sans, embedded as a subset Unicode font (Type0 with a CIDFontType2
//! descendant, Identity-H, and a ToUnicode map), with Droid Sans Fallback for the characters
//! DejaVu lacks (CJK), so Latin, Greek, Cyrillic and CJK text prints and extracts correctly. A
//! character neither font has prints as an empty box but still extracts as itself.

pub(crate) mod font;
mod hinting;
mod ops;
mod paginate;
mod text;
mod write;

use mad_core::{
    ChartKind, ChartPlacement, Error, Layout, OutputFormat, RenderJob, Renderer,
    RendererCapabilities, Result,
};

pub(crate) use self::paginate::report_footer;
use self::paginate::{PageBands, Sheet, TitleBlock, measure, paginate};
use self::write::DocumentInfo;
use crate::chart::{Scene, bars_that_fit, charts_of, lay_out};

pub(crate) const BACKEND: &str = "pdf";

/// The deflate level used unless set: the fastest, since deflate dominates rendering time.
pub const DEFAULT_COMPRESSION: u8 = 1;
/// The body font size in points used unless set.
pub const DEFAULT_FONT_SIZE: f32 = 9.0;

const MAX_COMPRESSION: u8 = 9;
const FONT_SIZES: std::ops::RangeInclusive<f32> = 4.0..=36.0;
/// The least room, in points, margins must leave for the page's content.
const MIN_CONTENT: f32 = 144.0;

/// Renders reports as PDF.
///
/// ```
/// use mad_core::{
///     Aggregate, ColumnBuilder, ColumnDef, Field, FieldKind, FilterSet, Locale, Placeholders,
///     RenderJob, Renderer, ReportDef, Schema, Table, Value,
/// };
/// use mad_render::PdfRenderer;
///
/// let schema = Schema::new(vec![
///     Field::new("City", FieldKind::Text),
///     Field::new("Sales", FieldKind::Number),
/// ]);
/// let (mut city, mut sales) = (ColumnBuilder::default(), ColumnBuilder::default());
/// for (c, s) in [("Zürich", 1234.5), ("Łódź", 99.0)] {
///     city.push(Value::text(c));
///     sales.push(Value::Number(s));
/// }
/// let table = Table::new(schema, vec![city.finish(), sales.finish()])?;
///
/// let mut report = ReportDef::new("sales", "Sales for {recipient.name}");
/// report.columns = vec![
///     ColumnDef::new("City"),
///     ColumnDef::new("Sales").format("#,##0.00").total(Aggregate::Sum),
/// ];
/// let placeholders = Placeholders::new().with("recipient.name", "Zoë");
/// let job = RenderJob {
///     report: &report,
///     table: &table,
///     placeholders: &placeholders,
///     locale: &Locale::new("en-US"),
///     filters: &FilterSet::all(),
///     deterministic: true,
///     created_at: 0,
/// };
///
/// let renderer = PdfRenderer::new().with_compression(6).with_font_size(8.0).build()?;
/// let pdf = renderer.render(&job)?;
/// assert!(pdf.starts_with(b"%PDF-"));
/// # Ok::<(), mad_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PdfRenderer {
    compression: u8,
    font_size: f32,
}

impl Default for PdfRenderer {
    fn default() -> Self {
        PdfRenderer {
            compression: DEFAULT_COMPRESSION,
            font_size: DEFAULT_FONT_SIZE,
        }
    }
}

impl PdfRenderer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The deflate level of page contents: 0 (none) to 9 (smallest, slowest). The embedded
    /// fonts are always compressed at the best level, since they are built once per process.
    pub fn with_compression(mut self, level: u8) -> Self {
        self.compression = level;
        self
    }

    /// The table's font size in points (4 to 36); titles and footers scale with it.
    pub fn with_font_size(mut self, points: f32) -> Self {
        self.font_size = points;
        self
    }

    /// Checks the settings. Rendering checks them too, so calling this is optional; it
    /// reports a bad setting when the renderer is set up rather than at the first report.
    pub fn build(self) -> Result<Self> {
        self.check()?;
        Ok(self)
    }

    pub fn compression(&self) -> u8 {
        self.compression
    }

    pub fn font_size(&self) -> f32 {
        self.font_size
    }

    fn check(&self) -> Result<()> {
        if self.compression > MAX_COMPRESSION {
            return Err(config(format!(
                "the compression level must be 0 (none) to 9 (smallest); got {}",
                self.compression
            )));
        }
        if !FONT_SIZES.contains(&self.font_size) {
            return Err(config(format!(
                "the font size must be 4 to 36 points; got {}",
                self.font_size
            )));
        }
        Ok(())
    }

    fn sheet(&self, job: &RenderJob<'_>) -> Result<Sheet> {
        let page = &job.report.page;
        let (width, height) = page.points();
        let margin = page.margin_points();
        let content = width.min(height) - 2.0 * margin;
        if !margin.is_finite() || margin < 0.0 || content < MIN_CONTENT {
            return Err(config(format!(
                "report '{}': margins of {} mm leave too little room on the page; use margins \
                 between 0 and {:.0} mm",
                job.report.name,
                page.margin_mm,
                ((width.min(height) - MIN_CONTENT) / 2.0 * 25.4 / 72.0).floor()
            )));
        }
        Ok(Sheet {
            width,
            height,
            margin,
            size: self.font_size,
            has_header: job.report.header.is_some(),
        })
    }
}

fn config(message: String) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}

impl Renderer for PdfRenderer {
    fn format(&self) -> OutputFormat {
        OutputFormat::Pdf
    }

    fn capabilities(&self) -> RendererCapabilities {
        RendererCapabilities {
            charts: true,
            templates: false,
            pages: true,
        }
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        self.check()?;
        let sheet = self.sheet(job)?;
        let layout = report_layout(job)?;
        let mut block = title_block(job)?;
        let charts = chart_scenes(job, sheet)?;

        let measured = measure(job, &layout, sheet, &mut block, &charts)?;
        let writer = paginate(
            job,
            &layout,
            sheet,
            &block,
            measured,
            &charts,
            self.compression,
        )?;

        let info = DocumentInfo {
            title: &block.title,
            subject: block.subtitle.as_deref(),
            lang: &job.locale.tag,
            deterministic: job.deterministic,
            created_at: job.created_at,
        };
        writer.finish(&mut block.bands, &info)
    }
}

/// The report laid over the rows, always walking to the grand total (the totals line needs it
/// even when the report shows no grand total row).
fn report_layout(job: &RenderJob<'_>) -> Result<Layout> {
    if let Some(column) = job
        .report
        .columns
        .iter()
        .find(|c| c.width.is_some_and(|w| !w.is_finite() || w <= 0.0))
    {
        return Err(config(format!(
            "column '{}' has the width hint {}; use a positive number (relative to 1.0 for an \
             average column) or none",
            column.field,
            column.width.unwrap_or_default()
        )));
    }
    let mut layout = Layout::new(job.report, job.table).map_err(|e| e.with_backend(BACKEND))?;
    layout.grand_total = true;
    Ok(layout)
}

fn title_block(job: &RenderJob<'_>) -> Result<TitleBlock> {
    let fill = |template: &str| {
        job.placeholders
            .render(template)
            .map_err(|e| e.with_backend(BACKEND))
    };
    let title = fill(&job.report.title)?;
    let filters = job.filters.to_string();
    let mut bands = PageBands::new(job, &title, &filters);
    bands.texts(1, 1).map_err(|e| {
        e.with_backend(BACKEND).context(
            "the page header or footer (which also know {title}, {filters}, {page} and {pages})",
        )
    })?;
    Ok(TitleBlock {
        subtitle: job.report.subtitle.as_deref().map(fill).transpose()?,
        title,
        filters,
        bands,
    })
}

/// The report's charts laid out across the table's width, each with whether it goes before
/// the table. Bar charts keep as many bars as fit in 60% of a page.
fn chart_scenes(job: &RenderJob<'_>, sheet: Sheet) -> Result<Vec<(Scene, bool)>> {
    let size = sheet.size * 0.95;
    let most_bars = bars_that_fit(sheet.content_height() * 0.6, size);
    charts_of(job, BACKEND)?
        .into_iter()
        .map(|(mut data, placement)| {
            if data.kind == ChartKind::Bar {
                data.keep(most_bars);
            }
            let scene = lay_out(&data, sheet.content_width(), size);
            Ok((scene, placement == ChartPlacement::Before))
        })
        .collect()
}

/// A small stable hash (FNV-1a over eight-byte words, with a rotation so every input bit
/// reaches every output bit): the same bytes give the same value in every build, which
/// deterministic output needs (the standard library's hasher may change between releases).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StableHash(u64);

impl StableHash {
    pub(crate) fn new() -> Self {
        StableHash(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn with_seed(seed: u64) -> Self {
        StableHash(0xcbf2_9ce4_8422_2325 ^ seed)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let mut last = [0u8; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        self.mix(u64::from_le_bytes(last) ^ (bytes.len() as u64).rotate_left(56));
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(23);
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}
