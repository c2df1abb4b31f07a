//! SVG to PNG with resvg, using only the fonts shipped with the crate, so a chart looks the
//! same on every machine.

use std::sync::{Arc, LazyLock};

use mad_core::{Error, ErrorKind, Result};
use resvg::{tiny_skia, usvg};

const REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");
const FALLBACK: &[u8] = include_bytes!("../../fonts/DroidSansFallback.ttf");

/// The shipped fonts, loaded once: DejaVu Sans for text, Droid Sans Fallback for what DejaVu
/// lacks (CJK).
static FONTS: LazyLock<Arc<usvg::fontdb::Database>> = LazyLock::new(|| {
    let mut db = usvg::fontdb::Database::new();
    for data in [REGULAR, BOLD, FALLBACK] {
        db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(data)));
    }
    db.set_sans_serif_family(super::svg::FONT_FAMILY);
    Arc::new(db)
});

/// A PNG image of `svg`, `scale` pixels per SVG unit, with its width and height in pixels.
pub(crate) fn png(svg: &str, scale: f32, backend: &'static str) -> Result<(Vec<u8>, u32, u32)> {
    let failed = |what: &str, detail: String| {
        Error::new(
            ErrorKind::Render,
            format!("the chart could not be {what}: {detail}"),
        )
        .with_backend(backend)
    };
    let options = usvg::Options {
        fontdb: FONTS.clone(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| failed("read", e.to_string()))?;
    let size = tree.size();
    let (width, height) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(width.max(1), height.max(1))
        .ok_or_else(|| failed("drawn", format!("{width} x {height} pixels is too large")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let bytes = pixmap
        .encode_png()
        .map_err(|e| failed("encoded as PNG", e.to_string()))?;
    Ok((bytes, pixmap.width(), pixmap.height()))
}
