//! The folder channel's errors: file system failures, named by folder and file.

use std::fmt;
use std::io;
use std::path::Path;

use mad_core::{Error, ErrorKind};

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "folder";

/// An I/O failure while doing `what`, with a hint for the kinds a user can fix.
pub(super) fn io(what: impl fmt::Display, err: io::Error) -> Error {
    let hint = match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; check that the account running mad may write there"
        }
        io::ErrorKind::NotADirectory => "; a part of that path is a file, not a folder",
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "; free some space",
        _ => "",
    };
    let kind = match err.kind() {
        io::ErrorKind::NotADirectory => ErrorKind::NotFound,
        other => Error::io("", io::Error::from(other)).kind(),
    };
    Error::new(kind, format!("{what}: {err}{hint}"))
        .with_backend(BACKEND)
        .with_source(err)
}

pub(super) fn missing_folder(path: &Path) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "the folder {} does not exist; create it, or set create = true to let mad create it",
            path.display()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn not_a_folder(path: &Path) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "{} is a file, not a folder; point the channel's path at a folder",
            path.display()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn outside(path: &Path, root: &Path) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "{} leads outside of the folder {} (through a symbolic link); refusing to write there",
            path.display(),
            root.display()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn already_exists(path: &Path) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "{} already exists and if_exists is \"fail\"; nothing was written. Set if_exists to \
             \"overwrite\", \"keep\" or \"version\" to allow this",
            path.display()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn too_many_versions(path: &Path, limit: u32) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "{} and {limit} numbered versions of it already exist; clean up the folder",
            path.display()
        ),
    )
    .with_backend(BACKEND)
}
