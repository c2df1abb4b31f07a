//! The embedded DejaVu Sans fonts: glyph advances for measuring text, and the subset fonts
//! written into documents.
//!
//! A subset covers whole Unicode blocks of 128 code points rather than exactly the characters
//! a document uses. Nearly every document of a run then needs the same blocks (Basic Latin,
//! often Latin-1), so a subset and its compressed bytes are built once per process and copied
//! into each document as they are. Character ids (CIDs) are assigned per block, so a code point
//! the font has no glyph for still gets its own CID: it shows as the font's missing-glyph box
//! but keeps its Unicode value for text extraction.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use mad_core::{Error, ErrorKind, Result};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Filter, Finish, Name, Rect, Ref, Settings, Str};
use subsetter::GlyphRemapper;

use super::BACKEND;
use super::deflate::compress;

const REGULAR_DATA: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD_DATA: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Code points per block; a block is the unit a subset covers.
const BLOCK_BITS: u32 = 7;
const BLOCK_SIZE: u32 = 1 << BLOCK_BITS;

/// Code points below this have their advance in a table; the rest are looked up in the font.
const TABLE_LIMIT: u32 = 0x2000;

/// Blocks below this are tracked in a bit set (the table range).
const LOW_BLOCKS: u32 = TABLE_LIMIT >> BLOCK_BITS;

/// The most blocks a document can use: CIDs are two bytes, and block `n` (in sorted order)
/// takes CIDs `(n + 1) * 128 ..` so that CID 0 stays the missing glyph.
const MAX_BLOCKS: usize = 510;

/// Objects per embedded font: Type0 font, CID font, descriptor, font file, ToUnicode map,
/// CID-to-glyph map.
pub(crate) const OBJECTS_PER_FONT: i32 = 6;

/// How much deflate effort goes into a cached font file: it is compressed once per process.
const FONT_COMPRESSION: u8 = 9;

/// The two faces every document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Style {
    Regular,
    Bold,
}

impl Style {
    /// The resource name content streams use for this face.
    pub(crate) fn resource_name(self) -> Name<'static> {
        match self {
            Style::Regular => Name(b"F1"),
            Style::Bold => Name(b"F2"),
        }
    }

    /// The first object number of this face's objects; they are fixed in every document so
    /// that a cached font's objects can be copied byte for byte.
    pub(crate) fn first_ref(self) -> Ref {
        match self {
            Style::Regular => Ref::new(1),
            Style::Bold => Ref::new(1 + OBJECTS_PER_FONT),
        }
    }

    pub(crate) fn face(self) -> Result<&'static FontFace> {
        let face = match self {
            Style::Regular => &*REGULAR,
            Style::Bold => &*BOLD,
        };
        face.as_ref().map_err(|message| {
            Error::new(ErrorKind::Internal, message.clone()).with_backend(BACKEND)
        })
    }
}

static REGULAR: LazyLock<Result<FontFace, String>> =
    LazyLock::new(|| FontFace::parse(REGULAR_DATA, "DejaVuSans"));
static BOLD: LazyLock<Result<FontFace, String>> =
    LazyLock::new(|| FontFace::parse(BOLD_DATA, "DejaVuSans-Bold"));

/// A parsed face with its advances in thousandths of an em (PDF glyph space).
pub(crate) struct FontFace {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    postscript_name: &'static str,
    scale: f32,
    advances: Box<[f32]>,
    missing_advance: f32,
}

impl FontFace {
    fn parse(data: &'static [u8], postscript_name: &'static str) -> Result<FontFace, String> {
        let face = ttf_parser::Face::parse(data, 0)
            .map_err(|e| format!("the embedded font {postscript_name} cannot be read: {e}"))?;
        let scale = 1000.0 / f32::from(face.units_per_em());
        let missing_advance =
            f32::from(face.glyph_hor_advance(ttf_parser::GlyphId(0)).unwrap_or(0)) * scale;
        let advances = (0..TABLE_LIMIT)
            .map(|cp| {
                char::from_u32(cp)
                    .and_then(|c| face.glyph_index(c))
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(missing_advance, |a| f32::from(a) * scale)
            })
            .collect();
        Ok(FontFace {
            data,
            face,
            postscript_name,
            scale,
            advances,
            missing_advance,
        })
    }

    /// The advance of `c` in thousandths of an em; the missing glyph's when the font lacks it.
    pub(crate) fn advance(&self, c: char) -> f32 {
        match self.advances.get(c as usize) {
            Some(&a) => a,
            None => self
                .face
                .glyph_index(c)
                .and_then(|g| self.face.glyph_hor_advance(g))
                .map_or(self.missing_advance, |a| f32::from(a) * self.scale),
        }
    }

    /// The width of `text` in points at `size`.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size / 1000.0
    }
}

/// The Unicode blocks a document's text uses.
#[derive(Debug, Default)]
pub(crate) struct BlockSet {
    low: u64,
    high: BTreeSet<u32>,
}

impl BlockSet {
    pub(crate) fn add_text(&mut self, text: &str) {
        for c in text.chars() {
            let block = c as u32 >> BLOCK_BITS;
            if block < LOW_BLOCKS {
                self.low |= 1 << block;
            } else {
                self.high.insert(block);
            }
        }
    }

    /// The blocks in ascending order, at most as many as CIDs can address.
    ///
    /// A document using more than 510 different blocks of 128 code points loses the highest
    /// ones: their characters show as missing glyphs and do not extract.
    pub(crate) fn blocks(&self) -> Vec<u32> {
        let low = (0..LOW_BLOCKS).filter(|b| self.low & (1 << b) != 0);
        low.chain(self.high.iter().copied())
            .take(MAX_BLOCKS)
            .collect()
    }
}

/// A subset font's PDF objects and the CID of each character it covers.
pub(crate) struct EmbeddedFont {
    blocks: Vec<u32>,
    /// For blocks below `LOW_BLOCKS`: the block's rank plus one, or 0 when not covered.
    low_ranks: [u16; LOW_BLOCKS as usize],
    objects: Chunk,
}

impl EmbeddedFont {
    /// The font's objects, numbered from its style's first object.
    pub(crate) fn objects(&self) -> &Chunk {
        &self.objects
    }

    fn cid(&self, c: char) -> u16 {
        let cp = c as u32;
        let block = cp >> BLOCK_BITS;
        let rank = if block < LOW_BLOCKS {
            match self.low_ranks[block as usize] {
                0 => return 0,
                r => u32::from(r) - 1,
            }
        } else {
            match self.blocks.binary_search(&block) {
                Ok(r) => r as u32,
                Err(_) => return 0,
            }
        };
        cid_of(rank, cp)
    }

    /// Appends the two-byte CIDs of `text` to `out`.
    pub(crate) fn encode(&self, text: &str, out: &mut Vec<u8>) {
        out.reserve(text.len() * 2);
        for c in text.chars() {
            out.extend_from_slice(&self.cid(c).to_be_bytes());
        }
    }
}

fn cid_of(rank: u32, cp: u32) -> u16 {
    // `rank` is below MAX_BLOCKS, so the CID fits in two bytes.
    ((rank + 1) * BLOCK_SIZE + (cp & (BLOCK_SIZE - 1))) as u16
}

type CacheKey = (Style, Vec<u32>);

/// Built fonts, shared by every renderer in the process.
static CACHE: LazyLock<Mutex<HashMap<CacheKey, Arc<EmbeddedFont>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// More distinct block sets than this and the cache starts over, bounding its memory.
const CACHE_CAPACITY: usize = 64;

/// The subset of `style` covering `blocks`, from the cache or built now.
pub(crate) fn embedded(style: Style, blocks: &[u32]) -> Result<Arc<EmbeddedFont>> {
    let key = (style, blocks.to_vec());
    if let Some(font) = lock_cache().get(&key) {
        return Ok(font.clone());
    }

    // Built outside the lock: two threads may build the same font once each, which is
    // cheaper than making every other render wait.
    let font = Arc::new(build(style, blocks)?);

    let mut cache = lock_cache();
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    Ok(cache.entry(key).or_insert(font).clone())
}

fn lock_cache() -> std::sync::MutexGuard<'static, HashMap<CacheKey, Arc<EmbeddedFont>>> {
    // The map is only ever inserted into whole, so a panic elsewhere cannot leave it broken.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One covered code point: its CID, original glyph (if the font has one) and character.
struct Coverage {
    cid: u16,
    glyph: Option<u16>,
    advance: f32,
    c: Option<char>,
}

fn coverage(face: &FontFace, blocks: &[u32]) -> Vec<Coverage> {
    let mut out = Vec::with_capacity(blocks.len() * BLOCK_SIZE as usize);
    for (rank, &block) in blocks.iter().enumerate() {
        for cp in block << BLOCK_BITS..(block + 1) << BLOCK_BITS {
            let c = char::from_u32(cp);
            let glyph = c.and_then(|c| face.face.glyph_index(c)).map(|g| g.0);
            out.push(Coverage {
                cid: cid_of(rank as u32, cp),
                glyph,
                advance: c.map_or(face.missing_advance, |c| face.advance(c)),
                c: c.filter(|c| !c.is_control()),
            });
        }
    }
    out
}

fn build(style: Style, blocks: &[u32]) -> Result<EmbeddedFont> {
    let face = style.face()?;
    let covered = coverage(face, blocks);

    let mut remapper = GlyphRemapper::new();
    for glyph in covered.iter().filter_map(|c| c.glyph) {
        remapper.remap(glyph);
    }
    let hinted = subsetter::subset(face.data, 0, &remapper).map_err(|e| {
        Error::new(
            ErrorKind::Render,
            format!(
                "the embedded font {} could not be subset: {e}",
                face.postscript_name
            ),
        )
        .with_backend(BACKEND)
    })?;
    let subset = super::hinting::strip(&hinted).unwrap_or(hinted);

    let max_cid = covered.last().map_or(0, |c| c.cid);
    let mut cid_to_gid = vec![0u8; (usize::from(max_cid) + 1) * 2];
    for c in &covered {
        let gid = c.glyph.and_then(|g| remapper.get(g)).unwrap_or(0);
        let at = usize::from(c.cid) * 2;
        cid_to_gid[at..at + 2].copy_from_slice(&gid.to_be_bytes());
    }

    let mut low_ranks = [0u16; LOW_BLOCKS as usize];
    for (rank, &block) in blocks.iter().enumerate().filter(|(_, b)| **b < LOW_BLOCKS) {
        low_ranks[block as usize] = rank as u16 + 1;
    }

    let objects = write_objects(style, face, blocks, &covered, &subset, &cid_to_gid)?;
    Ok(EmbeddedFont {
        blocks: blocks.to_vec(),
        low_ranks,
        objects,
    })
}

fn write_objects(
    style: Style,
    face: &FontFace,
    blocks: &[u32],
    covered: &[Coverage],
    subset: &[u8],
    cid_to_gid: &[u8],
) -> Result<Chunk> {
    let first = style.first_ref();
    let [type0, cid_font, descriptor, file, to_unicode, cid_map] =
        std::array::from_fn(|i| Ref::new(first.get() + i as i32));
    let base_font = format!("{}+{}", subset_tag(style, blocks), face.postscript_name);
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };

    let mut chunk = Chunk::with_settings(Settings { pretty: false });
    chunk
        .type0_font(type0)
        .base_font(Name(base_font.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font)
        .to_unicode(to_unicode);

    let mut cid = chunk.cid_font(cid_font);
    cid.subtype(CidFontType::Type2)
        .base_font(Name(base_font.as_bytes()))
        .system_info(system_info)
        .font_descriptor(descriptor)
        .default_width(face.missing_advance)
        .cid_to_gid_map_stream(cid_map);
    let mut widths = cid.widths();
    for block in covered.chunks(BLOCK_SIZE as usize) {
        widths.consecutive(block[0].cid, block.iter().map(|c| c.advance));
    }
    widths.finish();
    cid.finish();

    write_descriptor(&mut chunk, descriptor, file, face, &base_font);

    let font_file = compress(subset, FONT_COMPRESSION)?;
    chunk
        .stream(file, &font_file)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);

    let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
    for c in covered {
        if let Some(ch) = c.c {
            cmap.pair(c.cid, ch);
        }
    }
    let cmap = compress(&cmap.finish(), FONT_COMPRESSION)?;
    let mut cmap_writer = chunk.cmap(to_unicode, &cmap);
    cmap_writer.filter(Filter::FlateDecode);
    cmap_writer.name(Name(b"Custom")).system_info(system_info);
    cmap_writer.finish();

    let cid_map_bytes = compress(cid_to_gid, FONT_COMPRESSION)?;
    chunk
        .stream(cid_map, &cid_map_bytes)
        .filter(Filter::FlateDecode);
    Ok(chunk)
}

fn write_descriptor(chunk: &mut Chunk, id: Ref, file: Ref, face: &FontFace, name: &str) {
    let f = &face.face;
    let s = face.scale;
    let bbox = f.global_bounding_box();
    let cap_height = f.capital_height().unwrap_or(f.ascender());
    let stem_v = 10.0 + 0.244 * (f32::from(f.weight().to_number()) - 50.0);
    chunk
        .font_descriptor(id)
        .name(Name(name.as_bytes()))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            f32::from(bbox.x_min) * s,
            f32::from(bbox.y_min) * s,
            f32::from(bbox.x_max) * s,
            f32::from(bbox.y_max) * s,
        ))
        .italic_angle(f.italic_angle())
        .ascent(f32::from(f.ascender()) * s)
        .descent(f32::from(f.descender()) * s)
        .cap_height(f32::from(cap_height) * s)
        .stem_v(stem_v)
        .font_file2(file);
}

/// Six capital letters naming the subset, the same for the same face and blocks.
fn subset_tag(style: Style, blocks: &[u32]) -> String {
    let mut hash = super::StableHash::new();
    hash.write(&[style as u8]);
    for b in blocks {
        hash.write(&b.to_le_bytes());
    }
    let mut h = hash.finish();
    (0..6)
        .map(|_| {
            let letter = b'A' + (h % 26) as u8;
            h /= 26;
            letter as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_faces_parse_and_measure() {
        let regular = Style::Regular.face().unwrap();
        let bold = Style::Bold.face().unwrap();
        assert!(regular.width("Zürich", 10.0) > 20.0);
        assert!(bold.width("Zürich", 10.0) > regular.width("Zürich", 10.0));
        assert_eq!(regular.width("", 10.0), 0.0);
    }

    #[test]
    fn blocks_are_sorted_and_cids_distinct() {
        let mut set = BlockSet::default();
        set.add_text("Łódź Ελλάδα 漢 a");
        let blocks = set.blocks();
        assert!(blocks.windows(2).all(|w| w[0] < w[1]));
        let font = embedded(Style::Regular, &blocks).unwrap();
        let mut cids: Vec<u16> = "Łódź Ελλάδα漢a".chars().map(|c| font.cid(c)).collect();
        assert!(cids.iter().all(|&c| c >= 128));
        cids.sort_unstable();
        cids.dedup();
        assert_eq!(
            cids.len(),
            "Łódź Ελλάδα漢a".chars().collect::<BTreeSet<_>>().len()
        );
        assert_eq!(
            font.cid('Ж'),
            0,
            "a block the set lacks maps to the missing glyph"
        );
    }

    #[test]
    fn the_same_blocks_share_one_font() {
        let a = embedded(Style::Bold, &[0, 1]).unwrap();
        let b = embedded(Style::Bold, &[0, 1]).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
