//! The hub's errors: refused and unknown entries, damaged documents, file system failures.

use std::fmt;
use std::io;

use mad_core::{Error, ErrorKind};

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "hub";

pub(super) fn io(what: impl fmt::Display, err: io::Error) -> Error {
    let hint = match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; check that the account running mad may write to the hub's root"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "; free some space",
        _ => "",
    };
    let kind = Error::io("", io::Error::from(err.kind())).kind();
    Error::new(kind, format!("{what}: {err}{hint}"))
        .with_backend(BACKEND)
        .with_source(err)
}

pub(super) fn unknown_entry(entry_id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("the hub has no document '{entry_id}'; it may have expired and been purged"),
    )
    .with_backend(BACKEND)
}

pub(super) fn not_theirs(recipient: &str, entry_id: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("the hub document '{entry_id}' does not belong to recipient '{recipient}'"),
    )
    .with_backend(BACKEND)
}

pub(super) fn expired(entry_id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("the hub document '{entry_id}' has expired"),
    )
    .with_backend(BACKEND)
}

pub(super) fn missing_bytes(entry_id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "the hub's index lists '{entry_id}' but its bytes are gone; deliver the report again"
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn damaged(entry_id: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the hub document '{entry_id}' no longer matches its checksum; deliver the report \
             again"
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn config(message: impl Into<String>) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}
