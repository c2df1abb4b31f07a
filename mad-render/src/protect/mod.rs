//! Output protection: passwords on finished documents, and encrypted zip bundles.
//!
//! | format | password to open | password to edit |
//! |---|---|---|
//! | pdf | user password, AES-256 (revision 6) | owner password; printing in high quality, changing and copying are refused |
//! | xlsx | ECMA-376 agile encryption (AES-256, SHA-512) | workbook structure and every worksheet protected (SHA-512 hash) |
//! | html, csv | `Unsupported`: deliver them in a bundle | `Unsupported` |
//! | bundle (zip) | WinZip AES-256 (AE-2) on every entry | applied to each document inside; `Unsupported` alone |
//!
//! Encryption is salted and its keys are random, so protected output differs on every run even
//! when rendering is deterministic.

mod bundle;
mod ooxml;
mod pdf;
mod xlsx;

use std::borrow::Cow;
use std::time::Instant;

use mad_core::{Document, Error, ErrorKind, OutputFormat, Passwords, Protector, Result, Secret};

/// The backend name protection errors carry.
const BACKEND: &str = "protect";

/// Excel refuses longer passwords, so a longer one would lock the recipient out.
const MAX_XLSX_PASSWORD_CHARS: usize = 255;

/// Puts passwords on PDF and XLSX documents and packs documents into AES-encrypted zips.
///
/// It holds no secrets: the passwords come with each call and are dropped with it.
#[derive(Debug, Clone, Default)]
pub struct DocumentProtector {}

impl DocumentProtector {
    pub fn new() -> Self {
        DocumentProtector::default()
    }
}

impl Protector for DocumentProtector {
    fn protect(&self, document: &Document, passwords: &Passwords) -> Result<Vec<u8>> {
        check_passwords(passwords)?;

        let started = Instant::now();
        let protected = protect_bytes(document.format, &document.bytes, passwords)
            .map_err(|e| e.context(format!("protecting '{}'", document.file_name)))?;

        tracing::debug!(
            format = %document.format,
            bytes = protected.len(),
            open_password = passwords.open.is_some(),
            edit_password = passwords.edit.is_some(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "protected a document"
        );
        Ok(protected)
    }

    fn bundle(&self, documents: &[Document], passwords: &Passwords) -> Result<Vec<u8>> {
        check_passwords(passwords)?;
        let Some(open) = &passwords.open else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "a zip bundle has no password to edit, only one to open; give the report's \
                 protection an open password, or set `bundle = false` to protect each document",
            )
            .with_backend(BACKEND));
        };

        let started = Instant::now();
        let mut entries = Vec::with_capacity(documents.len());
        for document in documents {
            let bytes = match &passwords.edit {
                Some(edit) => Cow::Owned(
                    lock_for_bundle(document, edit)
                        .map_err(|e| e.context(format!("bundling '{}'", document.file_name)))?,
                ),
                None => Cow::Borrowed(&document.bytes[..]),
            };
            entries.push((document.file_name.as_str(), bytes));
        }
        let archive = bundle::zip(&entries, open)?;

        tracing::debug!(
            documents = documents.len(),
            bytes = archive.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "bundled documents"
        );
        Ok(archive)
    }
}

/// The protected bytes of one document of `format`.
fn protect_bytes(format: OutputFormat, bytes: &[u8], passwords: &Passwords) -> Result<Vec<u8>> {
    match format {
        OutputFormat::Pdf => pdf::protect(bytes, passwords),
        OutputFormat::Xlsx => xlsx::protect(bytes, passwords),
        OutputFormat::Html | OutputFormat::Csv => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{format} documents cannot carry a password; set `bundle = true` in the \
                 report's protection to deliver them in an encrypted zip (with an open password \
                 only, since zip has no password to edit)"
            ),
        )
        .with_backend(BACKEND)),
        OutputFormat::Zip => Err(Error::new(
            ErrorKind::Unsupported,
            "a zip document is protected when it is bundled, not afterwards; bundle the \
             original documents instead",
        )
        .with_backend(BACKEND)),
    }
}

/// A document inside a bundle protected with the password to edit; the bundle's own password
/// is the one to open.
fn lock_for_bundle(document: &Document, edit: &Secret) -> Result<Vec<u8>> {
    if matches!(document.format, OutputFormat::Html | OutputFormat::Csv) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{format} documents cannot carry a password to edit, even in a bundle; remove \
                 the edit password from the report's protection or the {format} format from the \
                 report",
                format = document.format
            ),
        )
        .with_backend(BACKEND));
    }
    let passwords = Passwords {
        open: None,
        edit: Some(edit.clone()),
    };
    protect_bytes(document.format, &document.bytes, &passwords)
}

/// Refuses what would leave a document open: no password at all, or an empty one.
fn check_passwords(passwords: &Passwords) -> Result<()> {
    if passwords.open.is_none() && passwords.edit.is_none() {
        return Err(Error::invalid_config(
            "protection was asked for without a password; name an open or edit password",
        )
        .with_backend(BACKEND));
    }
    for (which, secret) in [("open", &passwords.open), ("edit", &passwords.edit)] {
        if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            return Err(Error::invalid_config(format!(
                "the password to {which} is empty, which would leave the documents unprotected; \
                 set a non-empty password"
            ))
            .with_backend(BACKEND));
        }
    }
    Ok(())
}

/// An xlsx password Excel can type: at most 255 characters.
fn check_xlsx_password(which: &str, secret: &Secret) -> Result<()> {
    if secret.expose().encode_utf16().count() > MAX_XLSX_PASSWORD_CHARS {
        return Err(Error::invalid_config(format!(
            "the xlsx password to {which} is longer than the {MAX_XLSX_PASSWORD_CHARS} \
             characters Excel accepts; choose a shorter one"
        ))
        .with_backend(BACKEND));
    }
    Ok(())
}

/// A failure of an encryption library. Its message is kept out on purpose: no library error
/// here should quote a password, and this makes sure none does.
fn crypto_failure(what: &str) -> Error {
    Error::new(ErrorKind::Render, format!("{what} failed")).with_backend(BACKEND)
}
