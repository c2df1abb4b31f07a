//! A zip archive written into memory, as the streaming sheet writer needs it: small entries
//! stored as they are, one large entry deflated while it is being written, sizes and checksums
//! filled into each local header once its entry is complete.

use mad_core::format::{DateTimeParts, serial_to_parts};
use mad_core::{Error, Result};

use crate::deflate::Deflater;

use super::BACKEND;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// Zip 2.0: deflate, no zip64.
const VERSION: u16 = 20;
/// Entry names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;

#[derive(Debug)]
struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

/// An entry being deflated: what was written so far.
pub(crate) struct OpenEntry {
    index: usize,
    crc: crc32fast::Hasher,
    size: u64,
    deflater: Deflater,
}

/// The archive's bytes and its directory.
pub(crate) struct ZipWriter {
    out: Vec<u8>,
    entries: Vec<Entry>,
    /// DOS time and date of every entry.
    stamp: (u16, u16),
}

impl ZipWriter {
    /// An archive whose entries carry `stamp`, a DOS (time, date) pair.
    pub(crate) fn new(stamp: (u16, u16)) -> ZipWriter {
        ZipWriter {
            out: Vec::with_capacity(16 * 1024),
            entries: Vec::new(),
            stamp,
        }
    }

    /// Adds an entry stored without compression.
    pub(crate) fn stored(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let size = small(data.len() as u64)?;
        let index = self.header(name, STORED)?;
        self.out.extend_from_slice(data);
        let entry = &mut self.entries[index];
        entry.crc = crc32fast::hash(data);
        entry.compressed = size;
        entry.size = size;
        self.patch(index);
        Ok(())
    }

    /// Starts a deflated entry; write to it with [`ZipWriter::write`] and close it with
    /// [`ZipWriter::close`] before adding another.
    pub(crate) fn open(&mut self, name: &str, level: u8) -> Result<OpenEntry> {
        let index = self.header(name, DEFLATED)?;
        Ok(OpenEntry {
            index,
            crc: crc32fast::Hasher::new(),
            size: 0,
            deflater: Deflater::new(level, false),
        })
    }

    pub(crate) fn write(&mut self, entry: &mut OpenEntry, data: &[u8]) -> Result<()> {
        entry.crc.update(data);
        entry.size += data.len() as u64;
        entry.deflater.write(data, &mut self.out)
    }

    pub(crate) fn close(&mut self, mut open: OpenEntry) -> Result<()> {
        open.deflater.finish(&mut self.out)?;
        let size = small(open.size)?;
        let entry = &mut self.entries[open.index];
        let start = entry.offset as usize + 30 + entry.name.len();
        entry.compressed = small((self.out.len() - start) as u64)?;
        entry.size = size;
        entry.crc = open.crc.finalize();
        self.patch(open.index);
        Ok(())
    }

    /// Writes the central directory and returns the archive.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>> {
        let directory = small(self.out.len() as u64)?;
        let (time, date) = self.stamp;
        for entry in &self.entries {
            let out = &mut self.out;
            put32(out, CENTRAL_HEADER);
            put16(out, VERSION);
            put16(out, VERSION);
            put16(out, UTF8_NAMES);
            put16(out, entry.method);
            put16(out, time);
            put16(out, date);
            put32(out, entry.crc);
            put32(out, entry.compressed);
            put32(out, entry.size);
            put16(out, entry.name.len() as u16);
            put16(out, 0); // extra field
            put16(out, 0); // comment
            put16(out, 0); // disk
            put16(out, 0); // internal attributes
            put32(out, 0); // external attributes
            put32(out, entry.offset);
            out.extend_from_slice(entry.name.as_bytes());
        }
        let size = small(self.out.len() as u64 - u64::from(directory))?;
        let count = u16::try_from(self.entries.len())
            .map_err(|_| too_large("more entries than a zip without zip64 holds"))?;
        let out = &mut self.out;
        put32(out, END_OF_CENTRAL);
        put16(out, 0);
        put16(out, 0);
        put16(out, count);
        put16(out, count);
        put32(out, size);
        put32(out, directory);
        put16(out, 0);
        Ok(self.out)
    }

    /// Writes a local header with the sizes left at zero; returns the entry's index.
    fn header(&mut self, name: &str, method: u16) -> Result<usize> {
        let offset = small(self.out.len() as u64)?;
        let (time, date) = self.stamp;
        let out = &mut self.out;
        put32(out, LOCAL_HEADER);
        put16(out, VERSION);
        put16(out, UTF8_NAMES);
        put16(out, method);
        put16(out, time);
        put16(out, date);
        put32(out, 0); // checksum, patched
        put32(out, 0); // compressed size, patched
        put32(out, 0); // size, patched
        put16(out, name.len() as u16);
        put16(out, 0);
        out.extend_from_slice(name.as_bytes());
        self.entries.push(Entry {
            name: name.to_string(),
            method,
            crc: 0,
            compressed: 0,
            size: 0,
            offset,
        });
        Ok(self.entries.len() - 1)
    }

    /// Fills the checksum and sizes into an entry's local header.
    fn patch(&mut self, index: usize) {
        let entry = &self.entries[index];
        let at = entry.offset as usize + 14;
        self.out[at..at + 4].copy_from_slice(&entry.crc.to_le_bytes());
        self.out[at + 4..at + 8].copy_from_slice(&entry.compressed.to_le_bytes());
        self.out[at + 8..at + 12].copy_from_slice(&entry.size.to_le_bytes());
    }
}

/// A DOS (time, date) pair for a Unix time, clamped to the years DOS dates hold.
pub(crate) fn dos_stamp(unix_seconds: i64) -> (u16, u16) {
    let p = unix_parts(unix_seconds);
    if p.year < 1980 {
        return (0, (1 << 5) | 1);
    }
    let year = p.year.min(2107) as u32;
    let time = (p.hour << 11) | (p.minute << 5) | (p.second / 2);
    let date = ((year - 1980) << 9) | (p.month << 5) | p.day;
    (time as u16, date as u16)
}

/// A Unix time as an ISO 8601 UTC time, as document properties hold it.
pub(crate) fn iso_time(unix_seconds: i64) -> String {
    let p = unix_parts(unix_seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

fn unix_parts(unix_seconds: i64) -> DateTimeParts {
    serial_to_parts(unix_seconds as f64 / 86_400.0 + 25_569.0)
}

fn small(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        too_large("the workbook would be larger than 4 GiB, more than a zip without zip64 holds")
    })
}

fn too_large(what: &str) -> Error {
    Error::invalid_input(format!(
        "{what}; narrow the filters, split the report, or use CSV"
    ))
    .with_backend(BACKEND)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn another_reader_opens_stored_and_deflated_entries() {
        let mut zip = ZipWriter::new(dos_stamp(1_700_000_000));
        zip.stored("a/small.xml", b"<a/>").unwrap();
        let mut big = zip.open("b/big.xml", 1).unwrap();
        let text = "<row>Zürich</row>".repeat(10_000);
        for piece in text.as_bytes().chunks(777) {
            zip.write(&mut big, piece).unwrap();
        }
        zip.close(big).unwrap();
        zip.stored("c/empty.xml", b"").unwrap();
        let bytes = zip.finish().unwrap();

        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 3);
        let mut read = |name: &str| {
            let mut s = String::new();
            archive
                .by_name(name)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        assert_eq!(read("a/small.xml"), "<a/>");
        assert_eq!(read("b/big.xml"), text);
        assert_eq!(read("c/empty.xml"), "");
    }

    #[test]
    fn dos_stamps() {
        // 2023-11-14 22:13:20 UTC
        let (time, date) = dos_stamp(1_700_000_000);
        assert_eq!(date >> 9, 2023 - 1980);
        assert_eq!((date >> 5) & 0xf, 11);
        assert_eq!(date & 0x1f, 14);
        assert_eq!(time >> 11, 22);
        assert_eq!((time >> 5) & 0x3f, 13);
        assert_eq!(dos_stamp(0), (0, (1 << 5) | 1));
        assert_eq!(iso_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso_time(946_684_800), "2000-01-01T00:00:00Z");
    }
}
