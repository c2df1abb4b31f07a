//! Deflate in the zlib format PDF's FlateDecode reads.
//!
//! Setting up a compressor (its window and hash tables) costs about as much as compressing a
//! small page, so each thread keeps one per level and resets it between streams.

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress, Status};
use mad_core::{Error, ErrorKind, Result};

use super::BACKEND;

thread_local! {
    static COMPRESSORS: RefCell<Vec<(u8, Compress)>> = const { RefCell::new(Vec::new()) };
}

/// `data` deflated at `level` (1 fastest to 9 smallest).
pub(crate) fn compress(data: &[u8], level: u8) -> Result<Vec<u8>> {
    COMPRESSORS.with(|compressors| {
        let mut compressors = compressors.borrow_mut();
        let at = match compressors.iter().position(|(l, _)| *l == level) {
            Some(at) => at,
            None => {
                let compressor = Compress::new(Compression::new(u32::from(level)), true);
                compressors.push((level, compressor));
                compressors.len() - 1
            }
        };
        deflate(&mut compressors[at].1, data)
    })
}

fn deflate(compressor: &mut Compress, data: &[u8]) -> Result<Vec<u8>> {
    compressor.reset();
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    loop {
        let consumed = compressor.total_in() as usize;
        let status = compressor
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
            .map_err(|e| {
                Error::new(ErrorKind::Render, format!("deflate failed: {e}")).with_backend(BACKEND)
            })?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        out.reserve(out.capacity().max(256));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn round_trips_at_every_level_and_reuses_compressors() {
        let text = "Page 1 of 3 BT /F1 9 Tf 1 0 0 1 42.5 800 Tm <0041> Tj ET\n".repeat(500);
        for level in [1, 6, 9, 1] {
            for data in [text.as_bytes(), b"", b"x"] {
                let packed = compress(data, level).unwrap();
                let mut unpacked = Vec::new();
                flate2::read::ZlibDecoder::new(&packed[..])
                    .read_to_end(&mut unpacked)
                    .unwrap();
                assert_eq!(unpacked, data);
            }
        }
    }
}
