//! XLSX protection: workbook and sheet protection for the password to edit, then ECMA-376 agile
//! encryption (AES-256, SHA-512, 100,000 rounds) for the password to open.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use mad_core::{Error, ErrorKind, Passwords, Result, Secret};
use ms_offcrypto_writer::Ecma376AgileWriter;
use quick_xml::Reader;
use quick_xml::events::Event;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::ooxml::{self, PasswordHash};
use super::{BACKEND, check_xlsx_password, crypto_failure};

/// The largest part read into memory; a larger one is refused rather than exhausting memory.
const MAX_PART_BYTES: u64 = 1 << 30;

/// The signature of an OLE compound file, the container of an encrypted workbook.
const COMPOUND_FILE_SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

const CONTENT_TYPES: &str = "[Content_Types].xml";
const WORKSHEET_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml";
/// The main part's content type ends with this for workbooks, templates and macro workbooks.
const WORKBOOK_TYPE_END: &str = ".main+xml";
const WORKBOOK_TYPE_START: &str = "application/vnd.";

/// The workbook protected for editing and/or encrypted for opening.
pub(super) fn protect(bytes: &[u8], passwords: &Passwords) -> Result<Vec<u8>> {
    if bytes.starts_with(&COMPOUND_FILE_SIGNATURE) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the xlsx document is an OLE compound file (an already encrypted workbook, or an old \
             .xls one), not an Open XML package; protect the unprotected xlsx original",
        )
        .with_backend(BACKEND));
    }
    for (which, secret) in [("open", &passwords.open), ("edit", &passwords.edit)] {
        if let Some(secret) = secret {
            check_xlsx_password(which, secret)?;
        }
    }

    let package: Cow<'_, [u8]> = match &passwords.edit {
        Some(edit) => Cow::Owned(lock(bytes, edit)?),
        None => {
            check_workbook(bytes)?;
            Cow::Borrowed(bytes)
        }
    };
    match &passwords.open {
        Some(open) => encrypt(&package, open),
        None => Ok(package.into_owned()),
    }
}

/// The package with its workbook structure and every worksheet protected by `password`,
/// hashed once for all of them. Parts left alone are copied without recompression.
fn lock(bytes: &[u8], password: &Secret) -> Result<Vec<u8>> {
    let mut archive = open_package(bytes)?;
    let types = content_types(&mut archive)?;
    let hash = PasswordHash::new(password);

    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(bytes.len() + 4096)));
    let mut workbooks = 0;
    for index in 0..archive.len() {
        let name = archive
            .name_for_index(index)
            .and_then(|n| n.ok())
            .map(|n| n.into_owned())
            .unwrap_or_default();
        let protect = match types.of(&name) {
            Some(Part::Workbook) => {
                workbooks += 1;
                ooxml::protect_workbook
            }
            Some(Part::Worksheet) => ooxml::protect_worksheet,
            None => {
                let entry = archive.by_index_raw(index).map_err(damaged)?;
                writer.raw_copy_file(entry).map_err(rewrite_failed)?;
                continue;
            }
        };
        let mut entry = archive.by_index(index).map_err(damaged)?;
        let modified = entry.last_modified().unwrap_or_default();
        let xml = read_part(&name, &mut entry)?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(modified);
        writer
            .start_file(name.as_str(), options)
            .map_err(rewrite_failed)?;
        writer
            .write_all(&protect(&name, &xml, &hash)?)
            .map_err(|e| rewrite_failed(e.into()))?;
    }
    if workbooks != 1 {
        return Err(not_a_workbook(&format!(
            "it has {workbooks} workbook parts instead of one"
        )));
    }
    let out = writer.finish().map_err(rewrite_failed)?;
    Ok(out.into_inner())
}

/// Encrypts the whole package into an OLE compound file (ECMA-376 agile encryption).
fn encrypt(package: &[u8], password: &Secret) -> Result<Vec<u8>> {
    let out = Cursor::new(Vec::with_capacity(package.len() + 16 * 1024));
    let failed = |e: std::io::Error| crypto_failure("encrypting the xlsx document").with_source(e);
    let mut writer =
        Ecma376AgileWriter::create(&mut rand::rng(), password.expose(), out).map_err(failed)?;
    writer.write_all(package).map_err(failed)?;
    Ok(writer.into_inner().map_err(failed)?.into_inner())
}

/// Refuses anything but an Open XML workbook, so no other file is encrypted as one.
fn check_workbook(bytes: &[u8]) -> Result<()> {
    let mut archive = open_package(bytes)?;
    let types = content_types(&mut archive)?;
    let workbooks = archive
        .file_names()
        .filter_map(|name| name.ok())
        .filter(|name| types.of(name) == Some(Part::Workbook))
        .count();
    match workbooks {
        1 => Ok(()),
        n => Err(not_a_workbook(&format!(
            "it has {n} workbook parts instead of one"
        ))),
    }
}

fn open_package(bytes: &[u8]) -> Result<ZipArchive<Cursor<&[u8]>>> {
    ZipArchive::new(Cursor::new(bytes)).map_err(damaged)
}

/// The parts protection changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Workbook,
    Worksheet,
}

/// The package's content types: per part name, and per file extension for the rest. Part names
/// compare without regard to ASCII case, as Open Packaging requires.
struct ContentTypes {
    overrides: HashMap<String, String>,
    defaults: HashMap<String, String>,
}

impl ContentTypes {
    /// What a zip entry is, as far as protection is concerned.
    fn of(&self, entry: &str) -> Option<Part> {
        let entry = entry.to_ascii_lowercase();
        let extension = entry.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        let content_type = self
            .overrides
            .get(&entry)
            .or_else(|| self.defaults.get(extension))?;
        if content_type == WORKSHEET_TYPE {
            return Some(Part::Worksheet);
        }
        let is_workbook = content_type.starts_with(WORKBOOK_TYPE_START)
            && content_type.contains(".spreadsheetml.")
            && content_type.ends_with(WORKBOOK_TYPE_END);
        is_workbook.then_some(Part::Workbook)
    }
}

/// Reads the package's content types, so parts are known by what they are, whatever their names.
fn content_types(archive: &mut ZipArchive<Cursor<&[u8]>>) -> Result<ContentTypes> {
    let mut entry = archive.by_name(CONTENT_TYPES).map_err(|_| {
        not_a_workbook(&format!(
            "it has no {CONTENT_TYPES}, so it is not an Open XML package"
        ))
    })?;
    let xml = read_part(CONTENT_TYPES, &mut entry)?;
    let text =
        std::str::from_utf8(&xml).map_err(|_| not_a_workbook("its content types are not UTF-8"))?;

    let mut types = ContentTypes {
        overrides: HashMap::new(),
        defaults: HashMap::new(),
    };
    let mut reader = Reader::from_str(text);
    loop {
        let event = reader
            .read_event()
            .map_err(|e| not_a_workbook(&format!("its content types are malformed ({e})")))?;
        let tag = match event {
            Event::Start(tag) | Event::Empty(tag) => tag,
            Event::Eof => break,
            _ => continue,
        };
        let attribute = |key: &str| {
            tag.try_get_attribute(key)
                .ok()
                .flatten()
                .map(|a| a.value.to_ascii_lowercase())
        };
        let (key, map) = match tag.local_name().as_ref() {
            "Override" => (attribute("PartName"), &mut types.overrides),
            "Default" => (attribute("Extension"), &mut types.defaults),
            _ => continue,
        };
        if let (Some(key), Some(content_type)) = (key, attribute("ContentType")) {
            map.insert(key.trim_start_matches('/').to_string(), content_type);
        }
    }
    Ok(types)
}

fn read_part(name: &str, entry: &mut impl Read) -> Result<Vec<u8>> {
    let mut xml = Vec::new();
    entry
        .take(MAX_PART_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the xlsx part {name} could not be read ({e}); protect a valid xlsx workbook"
                ),
            )
            .with_backend(BACKEND)
        })?;
    if xml.len() as u64 > MAX_PART_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the xlsx part {name} is larger than {} MiB; split the report",
                MAX_PART_BYTES >> 20
            ),
        )
        .with_backend(BACKEND));
    }
    Ok(xml)
}

fn damaged(e: zip::result::ZipError) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the xlsx document is not a readable zip package ({e}); protect a valid xlsx workbook"
        ),
    )
    .with_backend(BACKEND)
}

fn not_a_workbook(why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the xlsx document is not a workbook: {why}"),
    )
    .with_backend(BACKEND)
}

fn rewrite_failed(e: zip::result::ZipError) -> Error {
    crypto_failure("rewriting the xlsx package").with_source(e)
}
