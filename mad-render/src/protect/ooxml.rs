//! Workbook and worksheet protection written into SpreadsheetML parts (ECMA-376 Part 1,
//! `workbookProtection` and `sheetProtection`), with the SHA-512 password hash.
//!
//! This protection is advisory: the hash only tells a spreadsheet application whether the typed
//! password is right, the data itself stays readable to any program.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mad_core::{Error, ErrorKind, Result, Secret};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use rand::Rng;
use sha2::{Digest, Sha512};

use super::BACKEND;

/// The hash rounds Excel itself uses.
const SPIN_COUNT: u32 = 100_000;

/// The elements a worksheet's `sheetProtection` follows, in schema order.
const BEFORE_SHEET_PROTECTION: &[&str] = &[
    "sheetPr",
    "dimension",
    "sheetViews",
    "sheetFormatPr",
    "cols",
    "sheetData",
    "sheetCalcPr",
];

/// The elements a workbook's `workbookProtection` precedes, in schema order.
const AFTER_WORKBOOK_PROTECTION: &[&str] = &[
    "bookViews",
    "sheets",
    "functionGroups",
    "externalReferences",
    "definedNames",
    "calcPr",
    "oleSize",
    "customWorkbookViews",
    "pivotCaches",
    "smartTagPr",
    "smartTagTypes",
    "webPublishing",
    "fileRecoveryPr",
    "webPublishObjects",
    "extLst",
];

/// Attributes of an earlier protection that a new password replaces.
const SHEET_PASSWORD_ATTRIBUTES: &[&str] = &[
    "password",
    "algorithmName",
    "hashValue",
    "saltValue",
    "spinCount",
];
const WORKBOOK_PASSWORD_ATTRIBUTES: &[&str] = &[
    "workbookPassword",
    "workbookPasswordCharacterSet",
    "workbookAlgorithmName",
    "workbookHashValue",
    "workbookSaltValue",
    "workbookSpinCount",
];

/// A salted SHA-512 password hash, computed once and written into every part of a document.
pub(super) struct PasswordHash {
    salt: String,
    hash: String,
}

impl PasswordHash {
    /// Hashes the password's UTF-16LE code units after a fresh random salt, then rehashes the
    /// result with each round's number appended, [`SPIN_COUNT`] times.
    pub(super) fn new(password: &Secret) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill(&mut salt);

        let mut hasher = Sha512::new();
        hasher.update(salt);
        for unit in password.expose().encode_utf16() {
            hasher.update(unit.to_le_bytes());
        }
        let mut hash = hasher.finalize_reset();
        for round in 0..SPIN_COUNT {
            hasher.update(hash);
            hasher.update(round.to_le_bytes());
            hash = hasher.finalize_reset();
        }

        PasswordHash {
            salt: BASE64.encode(salt),
            hash: BASE64.encode(hash),
        }
    }
}

/// The worksheet with a `sheetProtection` element for `hash`, replacing any earlier one but
/// keeping what it allowed (sorting, filtering, ...).
pub(super) fn protect_worksheet(part: &str, xml: &[u8], hash: &PasswordHash) -> Result<Vec<u8>> {
    let root = scan(part, xml, "worksheet")?;
    if !root.children.iter().any(|c| c.local == "sheetData") {
        return Err(damaged(part, "it has no sheetData element"));
    }

    let existing = root.child("sheetProtection");
    let mut attributes = vec![
        ("algorithmName", "SHA-512".to_string()),
        ("hashValue", hash.hash.clone()),
        ("saltValue", hash.salt.clone()),
        ("spinCount", SPIN_COUNT.to_string()),
        ("sheet", "1".to_string()),
    ];
    if existing.is_none() {
        attributes.push(("objects", "1".to_string()));
        attributes.push(("scenarios", "1".to_string()));
    }
    let element = element(
        &root.prefix,
        "sheetProtection",
        &attributes,
        existing,
        SHEET_PASSWORD_ATTRIBUTES,
    );

    let at = match existing {
        Some(child) => child.start..child.end,
        None => {
            let end = root
                .children
                .iter()
                .filter(|c| BEFORE_SHEET_PROTECTION.contains(&c.local.as_str()))
                .map(|c| c.end)
                .max()
                .unwrap_or(root.content_start);
            end..end
        }
    };
    Ok(splice(xml, at, &element))
}

/// The workbook with a `workbookProtection` element locking its structure (sheets cannot be
/// added, removed, renamed, hidden or shown) with `hash`.
pub(super) fn protect_workbook(part: &str, xml: &[u8], hash: &PasswordHash) -> Result<Vec<u8>> {
    let root = scan(part, xml, "workbook")?;

    let existing = root.child("workbookProtection");
    let attributes = [
        ("workbookAlgorithmName", "SHA-512".to_string()),
        ("workbookHashValue", hash.hash.clone()),
        ("workbookSaltValue", hash.salt.clone()),
        ("workbookSpinCount", SPIN_COUNT.to_string()),
        ("lockStructure", "1".to_string()),
    ];
    let element = element(
        &root.prefix,
        "workbookProtection",
        &attributes,
        existing,
        WORKBOOK_PASSWORD_ATTRIBUTES,
    );

    let at = match existing {
        Some(child) => child.start..child.end,
        None => {
            let before = root
                .children
                .iter()
                .find(|c| AFTER_WORKBOOK_PROTECTION.contains(&c.local.as_str()))
                .ok_or_else(|| damaged(part, "it has no sheets element"))?;
            before.start..before.start
        }
    };
    Ok(splice(xml, at, &element))
}

/// The root element of a part and its direct children, with their byte ranges.
struct Root {
    /// The namespace prefix of the root element, with its colon, or empty.
    prefix: String,
    /// Where the root element's content begins.
    content_start: usize,
    children: Vec<Child>,
}

struct Child {
    local: String,
    start: usize,
    end: usize,
    /// The raw (still escaped) attributes of the child's start tag.
    attributes: Vec<(String, String)>,
}

impl Root {
    fn child(&self, local: &str) -> Option<&Child> {
        self.children.iter().find(|c| c.local == local)
    }
}

/// Reads the part's root element, which must be `expected`, and lists its children.
fn scan(part: &str, xml: &[u8], expected: &str) -> Result<Root> {
    let text = std::str::from_utf8(xml).map_err(|_| damaged(part, "it is not UTF-8 text"))?;
    let mut reader = Reader::from_str(text);
    let mut root: Option<Root> = None;
    let mut depth = 0usize;

    loop {
        let start = position(&reader);
        let event = reader
            .read_event()
            .map_err(|e| damaged(part, &format!("its XML is malformed ({e})")))?;
        let end = position(&reader);
        let opens = matches!(event, Event::Start(_));
        match event {
            Event::Start(tag) | Event::Empty(tag) if depth == 0 => {
                let name = tag.name();
                if tag.local_name().as_ref() != expected {
                    return Err(damaged(
                        part,
                        &format!("its root element is not {expected}"),
                    ));
                }
                let prefix = name.prefix().map(|p| format!("{}:", p.as_ref()));
                root = Some(Root {
                    prefix: prefix.unwrap_or_default(),
                    content_start: end,
                    children: Vec::new(),
                });
                if opens {
                    depth = 1;
                }
            }
            Event::Start(tag) | Event::Empty(tag) if depth == 1 => {
                if let Some(root) = root.as_mut() {
                    root.children.push(Child {
                        local: tag.local_name().as_ref().to_string(),
                        start,
                        end,
                        attributes: attributes(&tag),
                    });
                }
                if opens {
                    depth = 2;
                }
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                let child = root.as_mut().and_then(|r| r.children.last_mut());
                if let (2, Some(child)) = (depth, child) {
                    child.end = end;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| damaged(part, &format!("it has no {expected} element")))
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

fn attributes(tag: &BytesStart<'_>) -> Vec<(String, String)> {
    tag.attributes()
        .with_checks(false)
        .filter_map(|a| a.ok())
        // Values stay escaped; a double quote that was legal between single quotes is escaped
        // because the new element quotes with double quotes.
        .map(|a| (a.key.as_ref().to_string(), a.value.replace('"', "&quot;")))
        .collect()
}

/// An empty element with `attributes`, followed by those of `existing` that `replaced` does not
/// name and `attributes` does not set.
fn element(
    prefix: &str,
    name: &str,
    attributes: &[(&str, String)],
    existing: Option<&Child>,
    replaced: &[&str],
) -> String {
    let mut xml = format!("<{prefix}{name}");
    for (key, value) in attributes {
        xml.push_str(&format!(" {key}=\"{value}\""));
    }
    let kept = existing
        .map(|c| c.attributes.as_slice())
        .unwrap_or_default();
    for (key, value) in kept {
        let is_set = attributes.iter().any(|(k, _)| k == key);
        if !is_set && !replaced.contains(&key.as_str()) {
            xml.push_str(&format!(" {key}=\"{value}\""));
        }
    }
    xml.push_str("/>");
    xml
}

fn splice(xml: &[u8], at: std::ops::Range<usize>, element: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + element.len());
    out.extend_from_slice(&xml[..at.start]);
    out.extend_from_slice(element.as_bytes());
    out.extend_from_slice(&xml[at.end..]);
    out
}

fn damaged(part: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the xlsx part {part} cannot be protected: {why}; protect a valid xlsx workbook"),
    )
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> PasswordHash {
        PasswordHash::new(&Secret::new("unit-test-throwaway"))
    }

    fn sheet(xml: &str) -> Result<String> {
        protect_worksheet("sheet.xml", xml.as_bytes(), &hash())
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn prefixed_worksheet_gets_a_prefixed_element_after_its_data() {
        let xml = r#"<x:worksheet xmlns:x="s"><x:sheetData><x:row/></x:sheetData><x:pageMargins/></x:worksheet>"#;
        let out = sheet(xml).unwrap();
        let at = out.find("<x:sheetProtection ").unwrap();
        assert!(out.find("</x:sheetData>").unwrap() < at, "{out}");
        assert!(at < out.find("<x:pageMargins").unwrap(), "{out}");
    }

    #[test]
    fn earlier_protection_with_content_is_replaced_and_quotes_stay_escaped() {
        let xml = r#"<worksheet><sheetData/><sheetProtection password='CC1A' sheet='1' sort='0' x='a"b'></sheetProtection><mergeCells/></worksheet>"#;
        let out = sheet(xml).unwrap();
        assert_eq!(out.matches("sheetProtection").count(), 1, "{out}");
        assert!(!out.contains("CC1A"), "{out}");
        assert!(out.contains(r#" sort="0""#), "{out}");
        assert!(out.contains(r#" x="a&quot;b""#), "{out}");
        assert!(out.ends_with("/><mergeCells/></worksheet>"), "{out}");
    }

    #[test]
    fn damaged_parts_are_refused() {
        for xml in [
            "<worksheet><sheetViews/></worksheet>",
            "<workbook><sheetData/></workbook>",
            "<worksheet><sheetData></worksheet>",
            "",
        ] {
            let err = sheet(xml).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{xml}: {err}");
        }
        let err = protect_worksheet("s.xml", &[0xff, 0xfe, b'<'], &hash()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = protect_workbook("w.xml", b"<workbook><workbookPr/></workbook>", &hash());
        assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn workbook_protection_goes_before_the_views_and_sheets() {
        let xml = br#"<workbook><fileVersion/><workbookPr/><xr:revisionPtr/><bookViews/><sheets/></workbook>"#;
        let out = String::from_utf8(protect_workbook("w.xml", xml, &hash()).unwrap()).unwrap();
        let at = out.find("<workbookProtection ").unwrap();
        assert!(out.find("<xr:revisionPtr/>").unwrap() < at, "{out}");
        assert!(at < out.find("<bookViews/>").unwrap(), "{out}");
        assert!(out.contains(r#"lockStructure="1""#), "{out}");
    }
}
