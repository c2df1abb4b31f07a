//! Deflate for PDF streams (the zlib format FlateDecode reads) and zip entries (raw deflate).
//!
//! Setting up a compressor (its window and hash tables) costs about as much as compressing a
//! small page, so each thread keeps its compressors and resets them between streams.

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress, Status};
use mad_core::{Error, ErrorKind, Result};

thread_local! {
    static SPARE: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
}

struct Spare {
    level: u8,
    zlib: bool,
    compress: Compress,
}

/// One deflate stream, fed in pieces; its compressor goes back to the thread when dropped.
pub(crate) struct Deflater {
    level: u8,
    zlib: bool,
    compress: Option<Compress>,
}

impl Deflater {
    /// A stream at `level` (1 fastest to 9 smallest), with the zlib header and checksum when
    /// `zlib`, else raw deflate as zip entries hold it.
    pub(crate) fn new(level: u8, zlib: bool) -> Deflater {
        let reused = SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            let at = spare
                .iter()
                .position(|s| s.level == level && s.zlib == zlib)?;
            Some(spare.swap_remove(at).compress)
        });
        // Reset here rather than when the last stream ended: the reset clears the hash table,
        // which then stays in cache for this stream's lookups instead of being cold again.
        let reused = reused.map(|mut c| {
            c.reset();
            c
        });
        let compress =
            reused.unwrap_or_else(|| Compress::new(Compression::new(u32::from(level)), zlib));
        Deflater {
            level,
            zlib,
            compress: Some(compress),
        }
    }

    /// Compresses `data` onto the end of `out`.
    pub(crate) fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.run(data, out, FlushCompress::None)
    }

    /// Ends the stream onto the end of `out`.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.run(&[], out, FlushCompress::Finish)
    }

    fn run(&mut self, data: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> Result<()> {
        let Some(compress) = self.compress.as_mut() else {
            return Err(deflate_error("the stream is already finished"));
        };
        let start = compress.total_in();
        loop {
            let consumed = (compress.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let status = compress
                .compress_vec(&data[consumed..], out, flush)
                .map_err(|e| deflate_error(&e.to_string()))?;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => (compress.total_in() - start) as usize == data.len(),
            };
            if done {
                return Ok(());
            }
        }
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        if let Some(compress) = self.compress.take() {
            let spare = Spare {
                level: self.level,
                zlib: self.zlib,
                compress,
            };
            // A thread keeps a few compressors; more would only hold memory.
            let _ = SPARE.try_with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < 4 {
                    s.push(spare);
                }
            });
        }
    }
}

/// `data` deflated at `level` (1 fastest to 9 smallest) in the zlib format.
pub(crate) fn compress(data: &[u8], level: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    let mut deflater = Deflater::new(level, true);
    deflater.write(data, &mut out)?;
    deflater.finish(&mut out)?;
    Ok(out)
}

fn deflate_error(what: &str) -> Error {
    Error::new(ErrorKind::Render, format!("deflate failed: {what}"))
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

    #[test]
    fn raw_streams_fed_in_pieces_round_trip() {
        let text =
            "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>x</t></is></c></row>".repeat(4000);
        for _ in 0..2 {
            let mut deflater = Deflater::new(1, false);
            let mut out = Vec::new();
            for piece in text.as_bytes().chunks(10_000) {
                deflater.write(piece, &mut out).unwrap();
            }
            deflater.finish(&mut out).unwrap();
            let mut unpacked = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, text.as_bytes());
        }
    }
}
