//! Removes TrueType hinting from a font subset.
//!
//! Hinting (glyph programs that snap outlines to a low-resolution pixel grid) is more than
//! half of DejaVu's glyph data, and PDF viewers and printers render fine without it, so the
//! embedded subsets leave it out: each glyph loses its instructions, and the font-wide
//! programs and tables that only serve them (`fpgm`, `prep`, `cvt `, `hdmx`, `LTSH`, `VDMX`)
//! are dropped.

const DROPPED: [&[u8; 4]; 6] = [b"fpgm", b"prep", b"cvt ", b"hdmx", b"LTSH", b"VDMX"];

/// Composite glyph flags.
const ARG_1_AND_2_ARE_WORDS: u16 = 0x0001;
const WE_HAVE_A_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE: u16 = 0x0040;
const WE_HAVE_A_TWO_BY_TWO: u16 = 0x0080;
const WE_HAVE_INSTRUCTIONS: u16 = 0x0100;

/// `font` without hinting, or `None` when its tables are not laid out as expected (the
/// caller then embeds it as it is).
pub(crate) fn strip(font: &[u8]) -> Option<Vec<u8>> {
    let tables = read_tables(font)?;
    let table = |tag: &[u8; 4]| tables.iter().find(|t| &t.tag == tag).map(|t| t.data);
    let head = table(b"head")?;
    let long_offsets = read_u16(head, 50)? == 1;
    let glyph_count = usize::from(read_u16(table(b"maxp")?, 4)?);
    let (glyf, loca) = strip_glyphs(table(b"glyf")?, table(b"loca")?, long_offsets, glyph_count)?;

    let mut head = head.to_vec();
    head.get_mut(50..52)?.copy_from_slice(&1u16.to_be_bytes());
    head.get_mut(8..12)?.fill(0);

    let mut out: Vec<([u8; 4], &[u8])> = Vec::with_capacity(tables.len());
    for t in &tables {
        let data: &[u8] = match &t.tag {
            b"glyf" => &glyf,
            b"loca" => &loca,
            b"head" => &head,
            tag if DROPPED.contains(&tag) => continue,
            _ => t.data,
        };
        out.push((t.tag, data));
    }
    Some(write_font(font.get(0..4)?, &out))
}

struct Table<'a> {
    tag: [u8; 4],
    data: &'a [u8],
}

fn read_tables(font: &[u8]) -> Option<Vec<Table<'_>>> {
    let count = usize::from(read_u16(font, 4)?);
    (0..count)
        .map(|i| {
            let record = font.get(12 + 16 * i..28 + 16 * i)?;
            let offset = read_u32(record, 8)? as usize;
            let length = read_u32(record, 12)? as usize;
            Some(Table {
                tag: record.get(0..4)?.try_into().ok()?,
                data: font.get(offset..offset.checked_add(length)?)?,
            })
        })
        .collect()
}

/// The glyph table without instructions, and its index (always with four-byte offsets).
fn strip_glyphs(
    glyf: &[u8],
    loca: &[u8],
    long_offsets: bool,
    count: usize,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let offset = |i: usize| -> Option<usize> {
        match long_offsets {
            true => read_u32(loca, 4 * i).map(|o| o as usize),
            false => read_u16(loca, 2 * i).map(|o| usize::from(o) * 2),
        }
    };
    let mut new_glyf = Vec::with_capacity(glyf.len() / 2);
    let mut new_loca = Vec::with_capacity((count + 1) * 4);
    for i in 0..count {
        new_loca.extend_from_slice(&u32::try_from(new_glyf.len()).ok()?.to_be_bytes());
        let glyph = glyf.get(offset(i)?..offset(i + 1)?)?;
        if !glyph.is_empty() {
            strip_glyph(glyph, &mut new_glyf)?;
            new_glyf.resize(new_glyf.len().next_multiple_of(4), 0);
        }
    }
    new_loca.extend_from_slice(&u32::try_from(new_glyf.len()).ok()?.to_be_bytes());
    Some((new_glyf, new_loca))
}

fn strip_glyph(glyph: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let contours = read_u16(glyph, 0)? as i16;
    if contours >= 0 {
        // Header, contour end points, instruction length, instructions, then the points.
        let ends = 10 + 2 * contours as usize;
        let instructions = usize::from(read_u16(glyph, ends)?);
        let points = ends + 2 + instructions;
        out.extend_from_slice(glyph.get(..ends)?);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(glyph.get(points..)?);
        return Some(());
    }
    // Composite: component records, then optional instructions; keep only the records.
    let start = out.len();
    out.extend_from_slice(glyph);
    let composite = &mut out[start..];
    let mut at = 10;
    loop {
        let flags = read_u16(composite, at)?;
        let cleared = flags & !WE_HAVE_INSTRUCTIONS;
        composite
            .get_mut(at..at + 2)?
            .copy_from_slice(&cleared.to_be_bytes());
        at += 4 + component_arguments(flags);
        if flags & MORE_COMPONENTS == 0 {
            break;
        }
    }
    if at > glyph.len() {
        return None;
    }
    out.truncate(start + at);
    Some(())
}

/// The bytes of a component record after its flags and glyph id.
fn component_arguments(flags: u16) -> usize {
    let offsets = if flags & ARG_1_AND_2_ARE_WORDS != 0 {
        4
    } else {
        2
    };
    let transform = if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
        8
    } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
        4
    } else if flags & WE_HAVE_A_SCALE != 0 {
        2
    } else {
        0
    };
    offsets + transform
}

/// Assembles a font file from its tables (in the order given, which must be sorted by tag).
fn write_font(version: &[u8], tables: &[([u8; 4], &[u8])]) -> Vec<u8> {
    let count = tables.len() as u16;
    let entry_selector = 15 - count.max(1).leading_zeros() as u16;
    let search_range = 16 << entry_selector;
    let header_len = 12 + 16 * tables.len();
    let body_len: usize = tables
        .iter()
        .map(|(_, d)| d.len().next_multiple_of(4))
        .sum();

    let mut out = Vec::with_capacity(header_len + body_len);
    out.extend_from_slice(version);
    for value in [
        count,
        search_range,
        entry_selector,
        count * 16 - search_range,
    ] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    let mut offset = header_len;
    for (tag, data) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().next_multiple_of(4);
    }
    let mut head_at = None;
    for (tag, data) in tables {
        if tag == b"head" {
            head_at = Some(out.len());
        }
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBA_u32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subset() -> Vec<u8> {
        let data = include_bytes!("../../fonts/DejaVuSans.ttf");
        let face = ttf_parser::Face::parse(data, 0).unwrap();
        let mut remapper = subsetter::GlyphRemapper::new();
        // Latin-1 has composite glyphs (accented letters) as well as simple ones.
        for c in (0x20u32..0x180).filter_map(char::from_u32) {
            if let Some(g) = face.glyph_index(c) {
                remapper.remap(g.0);
            }
        }
        subsetter::subset(data, 0, &remapper).unwrap()
    }

    #[test]
    fn outlines_survive_and_the_font_shrinks() {
        let hinted = subset();
        let stripped = strip(&hinted).expect("DejaVu's subset strips");
        assert!(
            stripped.len() * 10 < hinted.len() * 7,
            "{} vs {}",
            stripped.len(),
            hinted.len()
        );

        let before = ttf_parser::Face::parse(&hinted, 0).unwrap();
        let after = ttf_parser::Face::parse(&stripped, 0).unwrap();
        assert_eq!(before.number_of_glyphs(), after.number_of_glyphs());
        for id in 0..before.number_of_glyphs() {
            let g = ttf_parser::GlyphId(id);
            assert_eq!(
                before.glyph_bounding_box(g),
                after.glyph_bounding_box(g),
                "glyph {id}"
            );
            assert_eq!(before.glyph_hor_advance(g), after.glyph_hor_advance(g));
        }
        assert!(
            after
                .raw_face()
                .table(ttf_parser::Tag::from_bytes(b"fpgm"))
                .is_none()
        );
        assert_eq!(checksum(&stripped), 0xB1B0_AFBA);
    }

    #[test]
    fn damaged_fonts_are_left_alone() {
        let hinted = subset();
        assert!(strip(&hinted[..hinted.len() / 2]).is_none());
        assert!(strip(&[0, 1, 0, 0, 0, 9]).is_none());
        assert!(strip(&[]).is_none());
    }
}
