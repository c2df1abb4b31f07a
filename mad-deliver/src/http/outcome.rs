//! What the cloud channels' `deliver` and `confirm` share: the errors of a file name already
//! taken, the context of a failed upload, and what the files an interrupted delivery left
//! mean.

use mad_core::{ChannelCapabilities, Delivery, Error, ErrorKind, Receipt, Result};

use super::IfExists;

/// How many numbered names `if_exists = "rename"` tries.
pub(crate) const MAX_VERSIONS: u32 = 100;

/// What a cloud channel sends: every document as a file.
pub(crate) fn capabilities() -> ChannelCapabilities {
    ChannelCapabilities {
        attachments: true,
        ..ChannelCapabilities::default()
    }
}

/// The error when `name` is already in the folder and `if_exists` is `fail`.
pub(crate) fn name_taken(backend: &'static str, name: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "{name} is already in the folder and if_exists is \"fail\"; nothing was replaced. \
             Set if_exists to \"replace\" or \"rename\" to allow this"
        ),
    )
    .with_backend(backend)
}

/// The error when `name` and all [`MAX_VERSIONS`] of its numbered copies are in the folder.
pub(crate) fn no_free_name(backend: &'static str, name: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!("{name} and {MAX_VERSIONS} numbered copies are already in the folder"),
    )
    .with_backend(backend)
}

/// The error when the checksum a provider reports for the committed file `name` differs from
/// the bytes sent. A file the delivery created is removed again before this is returned; a
/// file it `replaced` now holds the damaged bytes, which the error says, so a retry (which
/// replaces it again) or a person puts it right.
pub(crate) fn damaged(backend: &'static str, checksum: &str, name: &str, replaced: bool) -> Error {
    let left = if replaced {
        "it replaced the file that was there, so the file now holds damaged bytes until a \
         retry replaces it"
    } else {
        "the damaged file was removed"
    };
    Error::new(
        ErrorKind::Transient,
        format!(
            "the {checksum} the server reports for {name} differs from the bytes sent: the \
             upload was damaged on the way; {left}"
        ),
    )
    .with_backend(backend)
}

/// `err` as the failure of uploading one of `delivery`'s documents.
pub(crate) fn upload_failed(err: Error, delivery: &Delivery) -> Error {
    err.context(format!(
        "uploading report '{}' for recipient '{}'",
        delivery.report.name, delivery.recipient.id
    ))
}

/// What `confirm` concludes from looking for an interrupted delivery's files: a receipt
/// naming the `found` locations when none is `missing`, and `None` (send again) when none
/// was found or sending again replaces what is there. When only some arrived, sending again
/// would fail or add copies, so a person decides.
pub(crate) fn confirmation(
    kind: &str,
    backend: &'static str,
    if_exists: IfExists,
    delivery: &Delivery,
    found: Vec<String>,
    missing: &[String],
) -> Result<Option<Receipt>> {
    if missing.is_empty() {
        return Ok(Some(Receipt {
            channel: kind.to_string(),
            locations: found,
            bytes: delivery.bytes(),
        }));
    }
    if found.is_empty() || if_exists == IfExists::Replace {
        return Ok(None);
    }
    Err(partly_delivered(backend, &found, missing))
}

/// The error for an interrupted delivery that left the files `found` but not `missing`.
pub(crate) fn partly_delivered<S: AsRef<str>>(
    backend: &'static str,
    found: &[S],
    missing: &[String],
) -> Error {
    let found: Vec<&str> = found.iter().map(AsRef::as_ref).collect();
    Error::new(
        ErrorKind::Delivery,
        format!(
            "an interrupted delivery left {} but not {}; remove the files that arrived (or set \
             if_exists = \"replace\") and resume the run",
            found.join(", "),
            missing.join(", ")
        ),
    )
    .with_backend(backend)
}
