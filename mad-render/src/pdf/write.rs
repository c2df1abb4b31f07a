//! Writes pages into a PDF file as they are laid out.
//!
//! The fonts come first, built from the characters the first pass found. The first few pages
//! are held back: a document that ends within them (most of a burst) is written at the end,
//! each page with its header and footer in its one content stream. From the next page on, each
//! page's content stream is compressed and appended as soon as the page is full; only object
//! numbers are kept, and a page's header and footer become a second, small content stream
//! written at the end, when the page count that "Page X of Y" needs is known.

use std::sync::Arc;

use mad_core::format::serial_to_parts;
use mad_core::{Color, Result};
use pdf_writer::{Date, Filter, Finish, Name, Pdf, Rect, Ref, Settings, TextStr};

use super::StableHash;
use super::font::{
    BlockSet, EmbeddedFont, FALLBACK_FIRST_REF, FALLBACK_RESOURCE, FallbackFont, FontFace,
    OBJECTS_PER_FONT, Style, embedded, embedded_fallback,
};
use super::ops::Ops;
use super::paginate::{BAND_SIZE, Mark, PageBands, Paint, Sheet};
use super::text::Arena;
use crate::chart::Shape;
use crate::deflate::compress;

/// What the document's information dictionary, metadata and trailer say.
#[derive(Debug)]
pub(crate) struct DocumentInfo<'a> {
    pub title: &'a str,
    pub subject: Option<&'a str>,
    /// The language of the document, such as `de-DE`.
    pub lang: &'a str,
    pub deterministic: bool,
    /// The creation time, in seconds since 1970 (the run's start).
    pub created_at: i64,
}

const PRODUCER: &str = concat!("mad-render ", env!("CARGO_PKG_VERSION"));

/// The catalog, page tree, information dictionary and metadata follow the fonts; each page
/// then takes two objects (the page and its content) or, once pages stream, three (and its
/// header and footer).
const CATALOG: i32 = FALLBACK_FIRST_REF + OBJECTS_PER_FONT;
const PAGE_TREE: i32 = CATALOG + 1;
const INFO: i32 = CATALOG + 2;
const METADATA: i32 = CATALOG + 3;
const FIRST_PAGE: i32 = CATALOG + 4;

/// Pages held back before the writer starts streaming.
const HELD_PAGES: usize = 8;

/// The objects of page `index` (from 0): the page, its content and, when `streaming`, its
/// header and footer.
fn page_refs(index: usize, streaming: bool) -> (Ref, Ref, Ref) {
    let stride = if streaming { 3 } else { 2 };
    let first = FIRST_PAGE + stride * index as i32;
    (Ref::new(first), Ref::new(first + 1), Ref::new(first + 2))
}

/// The fonts a document uses.
struct Fonts {
    regular: Arc<EmbeddedFont>,
    bold: Arc<EmbeddedFont>,
    fallback: Option<Arc<FallbackFont>>,
    faces: [&'static FontFace; 2],
}

impl Fonts {
    fn face(&self, style: Style) -> &'static FontFace {
        self.faces[style as usize]
    }

    fn main(&self, style: Style) -> &EmbeddedFont {
        match style {
            Style::Regular => &self.regular,
            Style::Bold => &self.bold,
        }
    }
}

/// A PDF being written page by page.
pub(crate) struct Writer {
    pdf: Pdf,
    fonts: Fonts,
    sheet: Sheet,
    compression: u8,
    pages: usize,
    /// Pages not yet written, while the document may still end within [`HELD_PAGES`].
    held: Vec<(Vec<Mark>, Arena)>,
    streaming: bool,
    /// Where the bytes after the fonts start; only those are hashed into the file id.
    fonts_end: usize,
    /// The blocks the fonts cover, which stand for the fonts in the file id.
    blocks: Vec<u8>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pages", &self.pages)
            .field("bytes", &self.pdf.len())
            .finish()
    }
}

impl Writer {
    /// A document of `sheet`'s size whose fonts cover `blocks`, deflating content streams at
    /// `compression` (0 writes them uncompressed).
    pub(crate) fn new(blocks: &BlockSet, sheet: Sheet, compression: u8) -> Result<Writer> {
        let block_list = blocks.blocks();
        let regular = embedded(Style::Regular, &block_list)?;
        let bold = embedded(Style::Bold, &block_list)?;
        let fallback_chars = blocks.fallback_chars();
        let fallback = match fallback_chars.is_empty() {
            true => None,
            false => Some(embedded_fallback(&fallback_chars)?),
        };

        let font_bytes = regular.objects().len()
            + bold.objects().len()
            + fallback.as_ref().map_or(0, |f| f.objects().len());
        let mut pdf =
            Pdf::with_settings_and_capacity(Settings { pretty: false }, font_bytes + 16_384);
        pdf.extend(regular.objects());
        pdf.extend(bold.objects());
        if let Some(fallback) = &fallback {
            pdf.extend(fallback.objects());
        }
        let fonts_end = pdf.len();
        let mut hashed: Vec<u8> = block_list.iter().flat_map(|b| b.to_le_bytes()).collect();
        hashed.extend(
            fallback_chars
                .iter()
                .flat_map(|c| (*c as u32).to_le_bytes()),
        );
        Ok(Writer {
            pdf,
            fonts: Fonts {
                regular,
                bold,
                fallback,
                faces: [Style::Regular.face()?, Style::Bold.face()?],
            },
            sheet,
            compression,
            pages: 0,
            held: Vec::new(),
            streaming: false,
            fonts_end,
            blocks: hashed,
            scratch: Vec::new(),
        })
    }

    /// Takes one page drawn by `marks`, whose texts are in `text`; both are left empty.
    pub(crate) fn page(&mut self, marks: &mut Vec<Mark>, text: &mut Arena) -> Result<()> {
        if !self.streaming {
            if self.held.len() < HELD_PAGES {
                self.held
                    .push((std::mem::take(marks), std::mem::take(text)));
                return Ok(());
            }
            self.streaming = true;
            for (marks, text) in std::mem::take(&mut self.held) {
                self.stream_page(&marks, &text)?;
            }
        }
        self.stream_page(marks, text)?;
        marks.clear();
        text.clear();
        Ok(())
    }

    fn stream_page(&mut self, marks: &[Mark], text: &Arena) -> Result<()> {
        let (page, contents, bands) = page_refs(self.pages, true);
        let content = self.content(marks, text);
        self.pdf
            .page(page)
            .parent(Ref::new(PAGE_TREE))
            .contents_array([contents, bands]);
        write_stream(&mut self.pdf, contents, &content, self.compression)?;
        self.pages += 1;
        Ok(())
    }

    /// Writes the held pages, each with its header and footer.
    fn write_held(&mut self, bands: &mut PageBands) -> Result<()> {
        let held = std::mem::take(&mut self.held);
        self.pages = held.len();
        for (index, (mut marks, mut text)) in held.into_iter().enumerate() {
            self.add_bands(bands, index, &mut text, &mut marks)?;
            let (page, contents, _) = page_refs(index, false);
            let content = self.content(&marks, &text);
            self.pdf
                .page(page)
                .parent(Ref::new(PAGE_TREE))
                .contents(contents);
            write_stream(&mut self.pdf, contents, &content, self.compression)?;
        }
        Ok(())
    }

    /// Appends page `index`'s header and footer lines to its marks.
    fn add_bands(
        &self,
        bands: &mut PageBands,
        index: usize,
        text: &mut Arena,
        marks: &mut Vec<Mark>,
    ) -> Result<()> {
        let [header, footer] = bands.texts(index + 1, self.pages)?;
        let (header_y, footer_y) = self.sheet.band_baselines();
        self.band_marks(&header, header_y, text, marks);
        self.band_marks(&footer, footer_y, text, marks);
        Ok(())
    }

    /// Writes every page's header and footer, the page tree and the document's information,
    /// and returns the file.
    pub(crate) fn finish(
        mut self,
        bands: &mut PageBands,
        info: &DocumentInfo<'_>,
    ) -> Result<Vec<u8>> {
        if !self.streaming {
            self.write_held(bands)?;
        }
        let mut text = Arena::default();
        let mut marks = Vec::new();
        let streamed = if self.streaming { self.pages } else { 0 };
        for index in 0..streamed {
            text.clear();
            marks.clear();
            self.add_bands(bands, index, &mut text, &mut marks)?;
            let content = self.content(&marks, &text);
            let (_, _, band) = page_refs(index, true);
            // Too small to gain from deflate.
            write_stream(&mut self.pdf, band, &content, 0)?;
        }

        let tree = Ref::new(PAGE_TREE);
        let mut tree_writer = self.pdf.pages(tree);
        tree_writer
            .kids((0..self.pages).map(|i| page_refs(i, self.streaming).0))
            .count(self.pages as i32)
            .media_box(Rect::new(0.0, 0.0, self.sheet.width, self.sheet.height));
        let mut resources = tree_writer.resources();
        let mut fonts = resources.fonts();
        fonts
            .pair(Style::Regular.resource_name(), Style::Regular.first_ref())
            .pair(Style::Bold.resource_name(), Style::Bold.first_ref());
        if self.fonts.fallback.is_some() {
            fonts.pair(FALLBACK_RESOURCE, Ref::new(FALLBACK_FIRST_REF));
        }
        fonts.finish();
        resources.finish();
        tree_writer.finish();

        let metadata = xmp(info);
        self.pdf
            .catalog(Ref::new(CATALOG))
            .pages(tree)
            .lang(TextStr(info.lang))
            .metadata(Ref::new(METADATA));
        self.pdf.metadata(Ref::new(METADATA), metadata.as_bytes());
        let mut document = self.pdf.document_info(Ref::new(INFO));
        document
            .title(TextStr(info.title))
            .producer(TextStr(PRODUCER))
            .creation_date(creation_date(creation_seconds(info)));
        if let Some(subject) = info.subject {
            document.subject(TextStr(subject));
        }
        document.finish();

        let id = file_id(
            &[&self.blocks, &self.pdf.as_bytes()[self.fonts_end..]],
            creation_seconds(info),
        );
        self.pdf.set_file_id((id.clone(), id));
        Ok(self.pdf.finish())
    }

    /// The marks of a header or footer line: left, centre and right texts on `y`.
    fn band_marks(
        &self,
        parts: &[Option<String>; 3],
        y: f32,
        text: &mut Arena,
        marks: &mut Vec<Mark>,
    ) {
        let size = self.sheet.size * BAND_SIZE;
        let (left, right) = (self.sheet.margin, self.sheet.width - self.sheet.margin);
        let face = self.fonts.face(Style::Regular);
        for (slot, part) in parts.iter().enumerate() {
            let Some(part) = part.as_deref().filter(|p| !p.is_empty()) else {
                continue;
            };
            let width = face.width(part, size);
            let x = match slot {
                0 => left,
                1 => (left + right - width) / 2.0,
                _ => right - width,
            };
            marks.push(Mark::Text {
                style: Style::Regular,
                size,
                x,
                y,
                text: text.push(part),
                color: None,
            });
        }
    }

    /// One page's content stream: fills, shapes and rules first, then all text in one text
    /// object.
    fn content(&mut self, marks: &[Mark], text: &Arena) -> Vec<u8> {
        let mut ops = Ops::with_capacity(64 * marks.len() + 64);
        // A page's streams are read as one: each leaves the graphics state as it found it.
        ops.save_state();
        let mut paint = None;
        for mark in marks {
            match mark {
                Mark::Fill {
                    x,
                    y,
                    width,
                    height,
                    paint: p,
                } => {
                    if paint != Some(*p) {
                        set_fill(&mut ops, *p);
                        paint = Some(*p);
                    }
                    ops.rect(*x, *y, *width, *height).fill();
                }
                Mark::Rule { x1, x2, y, width } => {
                    ops.line_width(*width)
                        .move_to(*x1, *y)
                        .line_to(*x2, *y)
                        .stroke();
                }
                Mark::Shape { shape, x, top } => {
                    ops.save_state();
                    draw_shape(&mut ops, shape, *x, *top);
                    ops.restore_state();
                }
                Mark::Text { .. } => {}
            }
        }
        if paint.is_some() {
            ops.fill_gray(0.0);
        }
        self.text_object(&mut ops, marks, text);
        ops.restore_state();
        ops.finish()
    }

    fn text_object(&mut self, ops: &mut Ops, marks: &[Mark], arena: &Arena) {
        if !marks.iter().any(|m| matches!(m, Mark::Text { .. })) {
            return;
        }
        ops.begin_text();
        let mut font: Option<(Name<'static>, f32)> = None;
        let mut color: Option<Color> = None;
        let mut stroked = false;
        for mark in marks {
            let Mark::Text {
                style,
                size,
                x,
                y,
                ref text,
                color: c,
            } = *mark
            else {
                continue;
            };
            if color != c {
                let rgb = c.map_or([0.0; 3], Color::unit);
                ops.fill_rgb(rgb).stroke_rgb(rgb);
                color = c;
            }
            ops.text_at(x, y);
            let face = self.fonts.face(style);
            for (fallback, run) in face.runs(arena.get(text.clone())) {
                self.scratch.clear();
                let (name, synthetic_bold) = match (fallback, &self.fonts.fallback) {
                    (true, Some(f)) => {
                        f.encode(run, &mut self.scratch);
                        (FALLBACK_RESOURCE, style == Style::Bold)
                    }
                    _ => {
                        self.fonts.main(style).encode(run, &mut self.scratch);
                        (style.resource_name(), false)
                    }
                };
                if font != Some((name, size)) {
                    ops.font(name.0, size);
                    font = Some((name, size));
                }
                // The fallback font has no bold face: stroking its outlines thickens them.
                if synthetic_bold != stroked {
                    if synthetic_bold {
                        ops.line_width(size * 0.035);
                    }
                    ops.stroked_text(synthetic_bold);
                    stroked = synthetic_bold;
                }
                ops.show(&self.scratch);
            }
        }
        ops.end_text();
    }
}

fn set_fill(ops: &mut Ops, paint: Paint) {
    match paint {
        Paint::Gray(g) => ops.fill_gray(g),
        Paint::Rgb(c) => ops.fill_rgb(c.unit()),
    };
}

/// Draws a chart shape whose scene's top left corner is at `x`, `top` (scenes grow down).
fn draw_shape(ops: &mut Ops, shape: &Shape, x: f32, top: f32) {
    let at = |px: f32, py: f32| (x + px, top - py);
    match shape {
        Shape::Rect {
            x: rx,
            y: ry,
            width,
            height,
            fill,
        } => {
            set_fill(ops, Paint::Rgb(*fill));
            let (left, bottom) = at(*rx, ry + height);
            ops.rect(left, bottom, *width, *height).fill();
        }
        Shape::Line {
            points,
            stroke,
            width,
        } => {
            ops.stroke_rgb(stroke.unit()).line_width(*width);
            for (i, (px, py)) in points.iter().enumerate() {
                let (px, py) = at(*px, *py);
                match i {
                    0 => ops.move_to(px, py),
                    _ => ops.line_to(px, py),
                };
            }
            ops.stroke();
        }
        Shape::Circle { cx, cy, r, fill } => {
            set_fill(ops, Paint::Rgb(*fill));
            let (cx, cy) = at(*cx, *cy);
            arc(ops, cx, cy, *r, 0.0, std::f32::consts::TAU, true);
            ops.close_path().fill();
        }
        Shape::Wedge {
            cx,
            cy,
            r,
            start,
            end,
            fill,
        } => {
            set_fill(ops, Paint::Rgb(*fill));
            let (cx, cy) = at(*cx, *cy);
            let full = end - start >= std::f32::consts::TAU - 1e-4;
            if !full {
                ops.move_to(cx, cy);
            }
            arc(ops, cx, cy, *r, *start, *end, full);
            ops.close_path();
            ops.stroke_gray(1.0).line_width(0.75);
            ops.fill_and_stroke();
        }
        Shape::Text { .. } => {}
    }
}

/// An arc of Bézier curves around `cx`, `cy` (PDF coordinates) from angle `start` to `end`,
/// clockwise from twelve o'clock; `first_move` starts a new path at the arc's start.
fn arc(ops: &mut Ops, cx: f32, cy: f32, r: f32, start: f32, end: f32, first_move: bool) {
    let point = |a: f32| (cx + r * a.sin(), cy + r * a.cos());
    let segments = ((end - start) / (std::f32::consts::PI / 2.0))
        .ceil()
        .max(1.0) as usize;
    let step = (end - start) / segments as f32;
    let k = 4.0 / 3.0 * (step / 4.0).tan() * r;
    let (x0, y0) = point(start);
    if first_move {
        ops.move_to(x0, y0);
    } else {
        ops.line_to(x0, y0);
    }
    for i in 0..segments {
        let (a, b) = (start + step * i as f32, start + step * (i + 1) as f32);
        let ((ax, ay), (bx, by)) = (point(a), point(b));
        // Tangents of a clockwise arc, in PDF's upward y.
        let (tax, tay) = (a.cos(), -a.sin());
        let (tbx, tby) = (b.cos(), -b.sin());
        ops.cubic_to([
            ax + k * tax,
            ay + k * tay,
            bx - k * tbx,
            by - k * tby,
            bx,
            by,
        ]);
    }
}

fn write_stream(pdf: &mut Pdf, id: Ref, data: &[u8], compression: u8) -> Result<()> {
    if compression == 0 {
        pdf.stream(id, data);
        return Ok(());
    }
    let packed = compress(data, compression)?;
    pdf.stream(id, &packed).filter(Filter::FlateDecode);
    Ok(())
}

/// The document's XMP metadata: title, description, producer and creation date.
fn xmp(info: &DocumentInfo<'_>) -> String {
    let date = creation_date_iso(creation_seconds(info));
    let title = xml_escape(info.title);
    let description = info.subject.map_or(String::new(), |s| {
        format!(
            "<dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt>\
             </dc:description>",
            xml_escape(s)
        )
    });
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\">\
         <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\
         {description}<pdf:Producer>{PRODUCER}</pdf:Producer>\
         <xmp:CreateDate>{date}</xmp:CreateDate>\
         </rdf:Description></rdf:RDF></x:xmpmeta>\
         <?xpacket end=\"r\"?>"
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The creation time written into the document: fixed in deterministic mode, else the run's
/// start, so the same run renders the same bytes again (a resumed run recognises its files).
fn creation_seconds(info: &DocumentInfo<'_>) -> i64 {
    if info.deterministic {
        946_684_800 // 2000-01-01T00:00:00Z
    } else {
        info.created_at
    }
}

fn creation_date_iso(seconds: i64) -> String {
    let parts = serial_to_parts(seconds as f64 / 86_400.0 + 25_569.0);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second
    )
}

fn creation_date(seconds: i64) -> Date {
    let parts = serial_to_parts(seconds as f64 / 86_400.0 + 25_569.0);
    Date::new(parts.year.clamp(0, 9999) as u16)
        .month(parts.month as u8)
        .day(parts.day as u8)
        .hour(parts.hour as u8)
        .minute(parts.minute as u8)
        .second(parts.second as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// Sixteen bytes identifying the file: a hash of its content and its creation time.
fn file_id(parts: &[&[u8]], created: i64) -> Vec<u8> {
    let mut first = StableHash::new();
    let mut second = StableHash::with_seed(0x9e37_79b9_7f4a_7c15);
    first.write(&created.to_le_bytes());
    second.write(&created.to_le_bytes());
    for part in parts {
        first.write(part);
        second.write(part);
    }
    [first.finish().to_be_bytes(), second.finish().to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_date_is_the_millennium() {
        let date = creation_date(946_684_800);
        assert_eq!(
            date,
            Date::new(2000)
                .month(1)
                .day(1)
                .hour(0)
                .minute(0)
                .second(0)
                .utc_offset_hour(0)
                .utc_offset_minute(0)
        );
    }

    #[test]
    fn ids_depend_on_content_and_time() {
        assert_eq!(file_id(&[b"a"], 1), file_id(&[b"a"], 1));
        assert_ne!(file_id(&[b"a"], 1), file_id(&[b"b"], 1));
        assert_ne!(file_id(&[b"a", b"b"], 1), file_id(&[b"ab"], 1));
        assert_ne!(file_id(&[b"a"], 1), file_id(&[b"a"], 2));
        assert_eq!(file_id(&[b"a"], 1).len(), 16);
    }
}
