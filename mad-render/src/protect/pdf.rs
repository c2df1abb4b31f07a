//! PDF protection: the standard security handler, AES-256 (V5, revision 6).

use std::collections::BTreeMap;
use std::sync::Arc;

use lopdf::encryption::crypt_filters::{Aes256CryptFilter, CryptFilter};
use lopdf::{
    Dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, StringFormat,
};
use mad_core::{Error, ErrorKind, Passwords, Result};
use rand::Rng;

use super::{BACKEND, crypto_failure};

/// Poppler (up to at least 22.12) refuses revision 6 user passwords longer than this, although
/// the standard allows 127 bytes.
const POPPLER_PASSWORD_BYTES: usize = 32;

/// What a reader may do without the password to edit: print at low resolution and extract text
/// for accessibility tools. Printing in high quality, changing the document, its pages, forms or
/// annotations, and copying are refused.
fn restricted_permissions() -> Permissions {
    Permissions::PRINTABLE | Permissions::COPYABLE_FOR_ACCESSIBILITY
}

/// The document encrypted with `passwords`, as a new PDF file.
///
/// With only a password to open, the same password is also the owner password, so the document
/// is fully usable once opened. An empty owner password would let anyone open the document as its
/// owner, so it is never used.
pub(super) fn protect(bytes: &[u8], passwords: &Passwords) -> Result<Vec<u8>> {
    let mut document = load(bytes)?;

    let open = passwords.open.as_ref().map(|s| s.expose());
    let edit = passwords.edit.as_ref().map(|s| s.expose());
    let (user_password, owner_password, permissions) = match (open, edit) {
        (Some(open), None) => (open, open, Permissions::all()),
        (open, Some(edit)) => (open.unwrap_or(""), edit, restricted_permissions()),
        (None, None) => return Err(Error::internal("no password reached the pdf protection")),
    };
    if user_password.len() > POPPLER_PASSWORD_BYTES {
        tracing::warn!(
            "a pdf password to open is longer than {POPPLER_PASSWORD_BYTES} bytes; readers built on \
             poppler (Evince, Okular, pdftotext) may refuse it"
        );
    }
    let mut file_key = [0u8; 32];
    rand::rng().fill(&mut file_key);
    let aes: Arc<dyn CryptFilter> = Arc::new(Aes256CryptFilter);
    let state = EncryptionState::try_from(EncryptionVersion::V5 {
        encrypt_metadata: true,
        crypt_filters: BTreeMap::from([(b"StdCF".to_vec(), aes)]),
        file_encryption_key: &file_key,
        stream_filter: b"StdCF".to_vec(),
        string_filter: b"StdCF".to_vec(),
        owner_password,
        user_password,
        permissions,
    })
    // The library's message may quote the character it refused, so it is not passed on.
    .map_err(|_| {
        Error::invalid_config(
            "a pdf password could not be prepared; it may hold characters PDF passwords exclude \
             (control characters or unassigned code points): choose another",
        )
        .with_backend(BACKEND)
    })?;

    declare_aes256(&mut document)?;
    identify(&mut document);
    document
        .encrypt(&state)
        .map_err(|e| crypto_failure("encrypting the pdf document").with_source(e))?;
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 1024);
    document
        .save_to(&mut out)
        .map_err(|e| crypto_failure("writing the encrypted pdf document").with_source(e))?;
    Ok(out)
}

/// Parses the document; an encrypted one is refused, since its protection cannot be replaced
/// without its passwords.
fn load(bytes: &[u8]) -> Result<Document> {
    let document = Document::load_mem(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the pdf document could not be read ({e}); protect a complete, valid pdf"),
        )
        .with_backend(BACKEND)
    })?;
    if document.is_encrypted() || document.was_encrypted() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the pdf document is already encrypted; protect the unprotected original",
        )
        .with_backend(BACKEND));
    }
    Ok(document)
}

/// An encrypted document must carry a file identifier; one is made up when it has none.
fn identify(document: &mut Document) {
    let valid = matches!(document.trailer.get(b"ID"), Ok(Object::Array(ids)) if ids.len() == 2);
    if valid {
        return;
    }
    let mut id = [0u8; 16];
    rand::rng().fill(&mut id);
    let id = Object::String(id.to_vec(), StringFormat::Hexadecimal);
    document
        .trailer
        .set("ID", Object::Array(vec![id.clone(), id]));
}

/// AES-256 with revision 6 belongs to PDF 2.0; for older headers it is declared as Adobe's
/// extension level 8 to PDF 1.7, as readers expect.
fn declare_aes256(document: &mut Document) -> Result<()> {
    if document.version.as_str() >= "2.0" {
        return Ok(());
    }
    document.version = "1.7".to_string();

    let unreadable = |e: lopdf::Error| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the pdf document has no readable catalog ({e})"),
        )
        .with_backend(BACKEND)
    };
    let shared = match document.catalog().map_err(unreadable)?.get(b"Extensions") {
        Ok(Object::Reference(id)) => Some(*id),
        _ => None,
    };
    let extensions = match shared.map(|id| document.get_object_mut(id)) {
        Some(Ok(Object::Dictionary(extensions))) => extensions,
        _ => {
            let catalog = document.catalog_mut().map_err(unreadable)?;
            if !matches!(catalog.get(b"Extensions"), Ok(Object::Dictionary(_))) {
                catalog.set("Extensions", Dictionary::new());
            }
            catalog
                .get_mut(b"Extensions")
                .and_then(Object::as_dict_mut)
                .map_err(unreadable)?
        }
    };
    let level = extensions
        .get(b"ADBE")
        .and_then(Object::as_dict)
        .and_then(|adobe| adobe.get(b"ExtensionLevel"))
        .and_then(Object::as_i64)
        .ok();
    if level.is_none_or(|level| level < 8) {
        let mut adobe = Dictionary::new();
        adobe.set("BaseVersion", Object::Name(b"1.7".to_vec()));
        adobe.set("ExtensionLevel", Object::Integer(8));
        extensions.set("ADBE", adobe);
    }
    Ok(())
}
