//! The embedded DejaVu Sans fonts: glyph advances for measuring text, and the subset fonts
//! written into documents.
//!
//! A subset covers whole Unicode blocks of 128 code points rather than exactly the characters
//! a document uses. Nearly every document of a run then needs the same blocks (Basic Latin,
//! often Latin-1), so a subset and its compressed bytes are built once per process and copied
//! into each document as they are. Character ids (CIDs) are assigned per block, so a code point
//! the font has no glyph for still gets its own CID: it shows as the font's missing-glyph box
//! but keeps its Unicode value for text extraction.
//!
//! Characters DejaVu has no glyph for but Droid Sans Fallback has (Chinese, Japanese, Korean)
//! are set in a third font, a subset of Droid Sans Fallback with exactly the characters a
//! document uses: CJK documents use few of its thousands of glyphs, in many blocks. Its bold is
//! drawn by also stroking the outlines, since the font has no bold face.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use mad_core::{Error, ErrorKind, Result};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Filter, Finish, Name, Rect, Ref, Settings, Str};
use subsetter::GlyphRemapper;

use super::BACKEND;
use crate::deflate::compress;

const REGULAR_DATA: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD_DATA: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");
const FALLBACK_DATA: &[u8] = include_bytes!("../../fonts/DroidSansFallback.ttf");

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

/// How much deflate effort goes into a cached font file. It is compressed once per subset
/// and process, but in a process that renders one burst that is still part of the burst's
/// time: level 9 takes about twice as long as level 6 and saves about a thousandth of the
/// size on these fonts.
const FONT_COMPRESSION: u8 = 6;

/// The first object number of the fallback font's objects, after the two faces'.
pub(crate) const FALLBACK_FIRST_REF: i32 = 1 + 2 * OBJECTS_PER_FONT;

/// The resource name content streams use for the fallback font.
pub(crate) const FALLBACK_RESOURCE: Name<'static> = Name(b"F3");

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

static FALLBACK: LazyLock<Result<FontFace, String>> =
    LazyLock::new(|| FontFace::parse(FALLBACK_DATA, "DroidSansFallback", None));
static REGULAR: LazyLock<Result<FontFace, String>> =
    LazyLock::new(|| FontFace::parse(REGULAR_DATA, "DejaVuSans", fallback_face()));
static BOLD: LazyLock<Result<FontFace, String>> =
    LazyLock::new(|| FontFace::parse(BOLD_DATA, "DejaVuSans-Bold", fallback_face()));

/// The fallback face, or none when it cannot be read (characters then show as missing
/// glyphs, as without it).
fn fallback_face() -> Option<&'static FontFace> {
    FALLBACK.as_ref().ok()
}

/// The fallback face for building its subset.
fn fallback() -> Result<&'static FontFace> {
    FALLBACK
        .as_ref()
        .map_err(|message| Error::new(ErrorKind::Internal, message.clone()).with_backend(BACKEND))
}

/// A parsed face with its advances in thousandths of an em (PDF glyph space).
pub(crate) struct FontFace {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    postscript_name: &'static str,
    scale: f32,
    advances: Box<[f32]>,
    missing_advance: f32,
    /// The face that draws what this one lacks.
    fallback: Option<&'static FontFace>,
    /// For code points below `TABLE_LIMIT`: one bit per code point this face draws itself.
    low_own: Box<[u64]>,
    /// For code points below `TABLE_LIMIT`: one bit per code point the fallback draws.
    low_fallback: Box<[u64]>,
}

/// Sets bit `cp` of `bits`.
fn set_bit(bits: &mut [u64], cp: u32) {
    bits[cp as usize / 64] |= 1 << (cp % 64);
}

fn bit(bits: &[u64], cp: u32) -> bool {
    bits[cp as usize / 64] & (1 << (cp % 64)) != 0
}

/// The glyph of each code point below `TABLE_LIMIT`, as [`ttf_parser::Face::glyph_index`]
/// finds it (the first Unicode subtable that maps it), read in one pass over the subtables
/// rather than one search per code point: the tables are built when a process first renders
/// a PDF, which a one-burst process waits for.
fn low_glyphs(face: &ttf_parser::Face<'_>) -> Vec<Option<ttf_parser::GlyphId>> {
    let mut glyphs = vec![None; TABLE_LIMIT as usize];
    let Some(cmap) = face.tables().cmap else {
        return glyphs;
    };
    for subtable in cmap.subtables.into_iter().filter(|s| s.is_unicode()) {
        subtable.codepoints(|cp| {
            if let Some(slot) = glyphs.get_mut(cp as usize)
                && slot.is_none()
            {
                *slot = subtable.glyph_index(cp);
            }
        });
    }
    glyphs
}

impl FontFace {
    fn parse(
        data: &'static [u8],
        postscript_name: &'static str,
        fallback: Option<&'static FontFace>,
    ) -> Result<FontFace, String> {
        let face = ttf_parser::Face::parse(data, 0)
            .map_err(|e| format!("the embedded font {postscript_name} cannot be read: {e}"))?;
        let scale = 1000.0 / f32::from(face.units_per_em());
        let missing_advance =
            f32::from(face.glyph_hor_advance(ttf_parser::GlyphId(0)).unwrap_or(0)) * scale;
        let mut low_own = vec![0u64; TABLE_LIMIT as usize / 64].into_boxed_slice();
        let mut low_fallback = vec![0u64; TABLE_LIMIT as usize / 64].into_boxed_slice();
        let glyphs = low_glyphs(&face);
        let advances = (0..TABLE_LIMIT)
            .map(|cp| {
                let own = glyphs[cp as usize].and_then(|g| face.glyph_hor_advance(g));
                if let Some(advance) = own {
                    set_bit(&mut low_own, cp);
                    return f32::from(advance) * scale;
                }
                match fallback {
                    Some(f) if bit(&f.low_own, cp) => {
                        set_bit(&mut low_fallback, cp);
                        f.advances[cp as usize]
                    }
                    _ => missing_advance,
                }
            })
            .collect();
        Ok(FontFace {
            data,
            face,
            postscript_name,
            scale,
            advances,
            missing_advance,
            fallback,
            low_own,
            low_fallback,
        })
    }

    fn own_advance(&self, c: char) -> Option<f32> {
        own_advance(&self.face, c, self.scale)
    }

    /// The advance of `c` in thousandths of an em, from the fallback face when this one lacks
    /// it; the missing glyph's when neither has it.
    pub(crate) fn advance(&self, c: char) -> f32 {
        match self.advances.get(c as usize) {
            Some(&a) => a,
            None => self
                .own_advance(c)
                .or_else(|| self.fallback.and_then(|f| f.own_advance(c)))
                .unwrap_or(self.missing_advance),
        }
    }

    /// Whether the fallback face draws `c`: this face lacks it and the fallback has it.
    pub(crate) fn uses_fallback(&self, c: char) -> bool {
        let cp = c as u32;
        if cp < TABLE_LIMIT {
            return bit(&self.low_fallback, cp);
        }
        self.face.glyph_index(c).is_none()
            && self
                .fallback
                .is_some_and(|f| f.face.glyph_index(c).is_some())
    }

    /// Splits `text` into runs set in this face (`false`) or in the fallback (`true`).
    pub(crate) fn runs<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (bool, &'t str)> + 't {
        let simple = text.is_ascii();
        let mut rest = text;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            if simple {
                let all = rest;
                rest = "";
                return Some((false, all));
            }
            let mut chars = rest.char_indices();
            let first = chars.next().map(|(_, c)| self.uses_fallback(c))?;
            let end = chars
                .find(|&(_, c)| self.uses_fallback(c) != first)
                .map_or(rest.len(), |(i, _)| i);
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((first, run))
        })
    }

    /// The width of `text` in points at `size`, with fallback glyphs.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size / 1000.0
    }
}

/// The Unicode blocks a document's text uses, and the characters the fallback font draws.
#[derive(Debug, Default)]
pub(crate) struct BlockSet {
    low: u64,
    high: BTreeSet<u32>,
    fallback: BTreeSet<char>,
}

impl BlockSet {
    pub(crate) fn add_text(&mut self, text: &str) {
        if text.is_ascii() {
            if !text.is_empty() {
                self.low |= 1;
            }
            return;
        }
        let faces = (Style::Regular.face(), Style::Bold.face());
        for c in text.chars() {
            let (regular, bold) = match (&faces, c.is_ascii()) {
                ((Ok(r), Ok(b)), false) => (r.uses_fallback(c), b.uses_fallback(c)),
                _ => (false, false),
            };
            if regular || bold {
                self.fallback.insert(c);
            }
            if regular && bold {
                continue; // no need for its block in the DejaVu subsets
            }
            let block = c as u32 >> BLOCK_BITS;
            if block < LOW_BLOCKS {
                self.low |= 1 << block;
            } else {
                self.high.insert(block);
            }
        }
    }

    /// The characters the fallback font draws, in order.
    pub(crate) fn fallback_chars(&self) -> Vec<char> {
        self.fallback.iter().copied().collect()
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

fn own_advance(face: &ttf_parser::Face<'_>, c: char, scale: f32) -> Option<f32> {
    let glyph = face.glyph_index(c)?;
    face.glyph_hor_advance(glyph).map(|a| f32::from(a) * scale)
}

fn cid_of(rank: u32, cp: u32) -> u16 {
    // `rank` is below MAX_BLOCKS, so the CID fits in two bytes.
    ((rank + 1) * BLOCK_SIZE + (cp & (BLOCK_SIZE - 1))) as u16
}

type CacheKey = (Style, Vec<u32>);

/// One font of the cache: empty until built.
type Slot = Arc<Mutex<Option<Arc<EmbeddedFont>>>>;

/// Built fonts, shared by every renderer in the process.
static CACHE: LazyLock<Mutex<HashMap<CacheKey, Slot>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// More distinct block sets than this and the cache starts over, bounding its memory.
const CACHE_CAPACITY: usize = 64;

/// The subset of `style` covering `blocks`, from the cache or built now.
pub(crate) fn embedded(style: Style, blocks: &[u32]) -> Result<Arc<EmbeddedFont>> {
    let key = (style, blocks.to_vec());
    let slot = {
        let mut cache = lock(&CACHE);
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.entry(key).or_default().clone()
    };
    // Built under the font's own lock, not the cache's: a render that needs another font does
    // not wait, and one that needs this font (the render threads' first documents all do)
    // waits for it instead of building it again. A failed build is not kept.
    let mut font = lock(&slot);
    if let Some(font) = font.as_ref() {
        return Ok(font.clone());
    }
    let built = Arc::new(build(style, blocks)?);
    *font = Some(built.clone());
    Ok(built)
}

/// `mutex` locked; what it guards is only ever replaced whole, so a panic elsewhere cannot
/// have left it broken.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
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
    let mut tag = super::StableHash::new();
    tag.write(&[style as u8]);
    for b in blocks {
        tag.write(&b.to_le_bytes());
    }
    let objects = subset_objects(style.first_ref(), face, tag, &covered)?;

    let mut low_ranks = [0u16; LOW_BLOCKS as usize];
    for (rank, &block) in blocks.iter().enumerate().filter(|(_, b)| **b < LOW_BLOCKS) {
        low_ranks[block as usize] = rank as u16 + 1;
    }
    Ok(EmbeddedFont {
        blocks: blocks.to_vec(),
        low_ranks,
        objects,
    })
}

/// A subset of the fallback face with exactly the characters a document draws in it; the
/// character at index `i` of `chars` has CID `i + 1`.
pub(crate) struct FallbackFont {
    chars: Vec<char>,
    objects: Chunk,
}

impl FallbackFont {
    /// The font's objects, numbered from [`FALLBACK_FIRST_REF`].
    pub(crate) fn objects(&self) -> &Chunk {
        &self.objects
    }

    /// Appends the two-byte CIDs of `text` to `out`; characters it lacks get CID 0.
    pub(crate) fn encode(&self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            let cid = self.chars.binary_search(&c).map_or(0, |i| i as u16 + 1);
            out.extend_from_slice(&cid.to_be_bytes());
        }
    }
}

/// The most characters a fallback subset holds (CIDs are two bytes).
const MAX_FALLBACK_CHARS: usize = 65_000;

static FALLBACK_CACHE: LazyLock<Mutex<HashMap<Vec<char>, Arc<FallbackFont>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The fallback subset covering `chars` (sorted, distinct), from the cache or built now.
pub(crate) fn embedded_fallback(chars: &[char]) -> Result<Arc<FallbackFont>> {
    let chars = &chars[..chars.len().min(MAX_FALLBACK_CHARS)];
    if let Some(font) = lock(&FALLBACK_CACHE).get(chars) {
        return Ok(font.clone());
    }

    let face = fallback()?;
    let covered: Vec<Coverage> = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| Coverage {
            cid: i as u16 + 1,
            glyph: face.face.glyph_index(c).map(|g| g.0),
            advance: face.own_advance(c).unwrap_or(face.missing_advance),
            c: Some(c),
        })
        .collect();
    let mut tag = super::StableHash::new();
    tag.write(String::from_iter(chars).as_bytes());
    let objects = subset_objects(Ref::new(FALLBACK_FIRST_REF), face, tag, &covered)?;
    let font = Arc::new(FallbackFont {
        chars: chars.to_vec(),
        objects,
    });

    let mut cache = lock(&FALLBACK_CACHE);
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    Ok(cache.entry(chars.to_vec()).or_insert(font).clone())
}

/// The PDF objects of `face` subset to the `covered` code points, numbered from `first`.
fn subset_objects(
    first: Ref,
    face: &FontFace,
    tag: super::StableHash,
    covered: &[Coverage],
) -> Result<Chunk> {
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
    for c in covered {
        let gid = c.glyph.and_then(|g| remapper.get(g)).unwrap_or(0);
        let at = usize::from(c.cid) * 2;
        cid_to_gid[at..at + 2].copy_from_slice(&gid.to_be_bytes());
    }
    let base_font = format!("{}+{}", subset_tag(tag), face.postscript_name);
    write_objects(first, face, &base_font, covered, &subset, &cid_to_gid)
}

fn write_objects(
    first: Ref,
    face: &FontFace,
    base_font: &str,
    covered: &[Coverage],
    subset: &[u8],
    cid_to_gid: &[u8],
) -> Result<Chunk> {
    let [type0, cid_font, descriptor, file, to_unicode, cid_map] =
        std::array::from_fn(|i| Ref::new(first.get() + i as i32));
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

    write_descriptor(&mut chunk, descriptor, file, face, base_font);

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

/// Six capital letters naming the subset, the same for the same face and coverage.
fn subset_tag(hash: super::StableHash) -> String {
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
    fn the_low_tables_agree_with_looking_up_each_code_point() {
        let faces = [
            (Style::Regular, Style::Regular.face().unwrap()),
            (Style::Bold, Style::Bold.face().unwrap()),
        ];
        let fallback = fallback().unwrap();
        for (style, f) in faces {
            for cp in 0..TABLE_LIMIT {
                let Some(c) = char::from_u32(cp) else {
                    continue;
                };
                let own = own_advance(&f.face, c, f.scale);
                let expected_fallback = own.is_none() && fallback.own_advance(c).is_some();
                let expected = own
                    .or_else(|| fallback.own_advance(c))
                    .unwrap_or(f.missing_advance);
                assert_eq!(f.advances[cp as usize], expected, "{style:?} U+{cp:04X}");
                assert_eq!(
                    f.uses_fallback(c),
                    expected_fallback,
                    "{style:?} U+{cp:04X}"
                );
            }
        }
        for cp in 0..TABLE_LIMIT {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let own = fallback.own_advance(c);
            assert_eq!(bit(&fallback.low_own, cp), own.is_some(), "U+{cp:04X}");
        }
    }

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
        let mut cids: Vec<u16> = "Łódź Ελλάδαa".chars().map(|c| font.cid(c)).collect();
        assert!(cids.iter().all(|&c| c >= 128));
        cids.sort_unstable();
        cids.dedup();
        assert_eq!(
            cids.len(),
            "Łódź Ελλάδαa".chars().collect::<BTreeSet<_>>().len()
        );
        assert_eq!(
            font.cid('Ж'),
            0,
            "a block the set lacks maps to the missing glyph"
        );
    }

    #[test]
    fn characters_dejavu_lacks_go_to_the_fallback_font() {
        let regular = Style::Regular.face().unwrap();
        assert!(regular.uses_fallback('漢') && regular.uses_fallback('서'));
        assert!(!regular.uses_fallback('Ж') && !regular.uses_fallback('a'));
        assert!(
            regular.width("東京", 10.0) > 15.0,
            "CJK is measured with its own advances"
        );
        let runs: Vec<(bool, &str)> = regular.runs("Tokyo 東京 – 大阪!").collect();
        assert_eq!(
            runs,
            [
                (false, "Tokyo "),
                (true, "東京"),
                (false, " – "),
                (true, "大阪"),
                (false, "!")
            ]
        );

        let mut set = BlockSet::default();
        set.add_text("Zürich 北京市 서울");
        assert_eq!(
            set.fallback_chars(),
            ['北', '京', '市', '서', '울']
                .map(|c| c)
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(
            set.blocks().iter().all(|&b| b < LOW_BLOCKS),
            "no CJK blocks in DejaVu"
        );
        let font = embedded_fallback(&set.fallback_chars()).unwrap();
        let mut out = Vec::new();
        font.encode("北x", &mut out);
        assert_ne!(out[..2], [0, 0]);
        assert_eq!(
            out[2..],
            [0, 0],
            "a character outside the subset is the missing glyph"
        );
    }

    #[test]
    fn the_same_blocks_share_one_font() {
        let a = embedded(Style::Bold, &[0, 1]).unwrap();
        let b = embedded(Style::Bold, &[0, 1]).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
