//! The second pass: writes laid-out pages as a PDF file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mad_core::Result;
use mad_core::format::serial_to_parts;
use pdf_writer::{Content, Date, Filter, Finish, Pdf, Rect, Ref, Settings, Str, TextStr};

use super::StableHash;
use super::deflate::compress;
use super::font::{BlockSet, EmbeddedFont, OBJECTS_PER_FONT, Style, embedded};
use super::paginate::{Mark, Pages, Sheet};

/// What the document's information dictionary and trailer say.
#[derive(Debug)]
pub(crate) struct DocumentInfo<'a> {
    pub title: &'a str,
    pub deterministic: bool,
}

const PRODUCER: &str = concat!("mad-render ", env!("CARGO_PKG_VERSION"));

/// Writes `pages` as a PDF of `sheet`'s size, deflating content streams at `compression`
/// (0 writes them uncompressed).
pub(crate) fn write(
    pages: &Pages,
    sheet: Sheet,
    info: &DocumentInfo<'_>,
    compression: u8,
) -> Result<Vec<u8>> {
    let mut blocks = BlockSet::default();
    blocks.add_text(pages.text.as_str());
    let blocks = blocks.blocks();
    let regular = embedded(Style::Regular, &blocks)?;
    let bold = embedded(Style::Bold, &blocks)?;

    let font_bytes = regular.objects().len() + bold.objects().len();
    let capacity = font_bytes + 4096 + pages.pages.len() * 6144;
    let mut pdf = Pdf::with_settings_and_capacity(Settings { pretty: false }, capacity);
    pdf.extend(regular.objects());
    pdf.extend(bold.objects());
    let fonts_end = pdf.len();

    let first = 1 + 2 * OBJECTS_PER_FONT;
    let (catalog, tree, info_ref) = (Ref::new(first), Ref::new(first + 1), Ref::new(first + 2));
    let page_refs: Vec<(Ref, Ref)> = (0..pages.pages.len() as i32)
        .map(|i| (Ref::new(first + 3 + 2 * i), Ref::new(first + 4 + 2 * i)))
        .collect();

    let mut scratch = Vec::new();
    for (marks, &(page, contents)) in pages.pages.iter().zip(&page_refs) {
        let content = page_content(marks, pages, &regular, &mut scratch);
        pdf.page(page).parent(tree).contents(contents);
        write_stream(&mut pdf, contents, &content, compression)?;
    }

    let mut tree_writer = pdf.pages(tree);
    tree_writer
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(page_refs.len() as i32)
        .media_box(Rect::new(0.0, 0.0, sheet.width, sheet.height));
    tree_writer
        .resources()
        .fonts()
        .pair(Style::Regular.resource_name(), Style::Regular.first_ref())
        .pair(Style::Bold.resource_name(), Style::Bold.first_ref());
    tree_writer.finish();
    pdf.catalog(catalog).pages(tree);
    pdf.document_info(info_ref)
        .title(TextStr(info.title))
        .producer(TextStr(PRODUCER))
        .creation_date(creation_date(info.deterministic));

    // The fonts follow from the blocks, so hashing those stands for hashing the fonts.
    let blocks: Vec<u8> = blocks.iter().flat_map(|b| b.to_le_bytes()).collect();
    let id = file_id(&[&blocks, &pdf.as_bytes()[fonts_end..]], info.deterministic);
    pdf.set_file_id((id.clone(), id));
    Ok(pdf.finish())
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

/// One page's content stream: fills and rules first, then all text in one text object.
fn page_content(
    marks: &[Mark],
    pages: &Pages,
    font: &EmbeddedFont,
    scratch: &mut Vec<u8>,
) -> Vec<u8> {
    let mut content = Content::new();
    let mut gray = None;
    for mark in marks {
        match *mark {
            Mark::Fill {
                x,
                y,
                width,
                height,
                gray: g,
            } => {
                if gray != Some(g) {
                    content.set_fill_gray(g);
                    gray = Some(g);
                }
                content.rect(x, y, width, height).fill_nonzero();
            }
            Mark::Rule { x1, x2, y, width } => {
                content
                    .set_line_width(width)
                    .move_to(x1, y)
                    .line_to(x2, y)
                    .stroke();
            }
            Mark::Text { .. } => {}
        }
    }
    if gray.is_some() {
        content.set_fill_gray(0.0);
    }

    content.begin_text();
    let mut current = None;
    for mark in marks {
        let Mark::Text {
            style,
            size,
            x,
            y,
            ref text,
        } = *mark
        else {
            continue;
        };
        if current != Some((style, size)) {
            content.set_font(style.resource_name(), size);
            current = Some((style, size));
        }
        scratch.clear();
        // Both faces cover the same blocks, so they share CIDs.
        font.encode(pages.text.get(text.clone()), scratch);
        content
            .set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y])
            .show(Str(scratch));
    }
    content.end_text();
    content.finish().into_vec()
}

fn creation_date(deterministic: bool) -> Date {
    let seconds = match deterministic {
        true => 946_684_800, // 2000-01-01T00:00:00Z
        false => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
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

/// Sixteen bytes identifying the file: a hash of its content, and when not deterministic
/// also of the time and a per-process counter, so two renders of the same data differ.
fn file_id(parts: &[&[u8]], deterministic: bool) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut first = StableHash::new();
    let mut second = StableHash::with_seed(0x9e37_79b9_7f4a_7c15);
    if !deterministic {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let salt = [
            nanos.to_le_bytes().as_slice(),
            &COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes(),
            &std::process::id().to_le_bytes(),
        ]
        .concat();
        first.write(&salt);
        second.write(&salt);
    }
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
        let date = creation_date(true);
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
    fn ids_depend_on_content_and_mode() {
        assert_eq!(file_id(&[b"a"], true), file_id(&[b"a"], true));
        assert_ne!(file_id(&[b"a"], true), file_id(&[b"b"], true));
        assert_ne!(file_id(&[b"a", b"b"], true), file_id(&[b"ab"], true));
        assert_ne!(file_id(&[b"a"], false), file_id(&[b"a"], false));
        assert_eq!(file_id(&[b"a"], true).len(), 16);
    }
}
