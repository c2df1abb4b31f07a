//! What the cloud storage channels (`graph`, `dropbox`, `box`, `gdrive`) share: one HTTP client
//! set-up, OAuth2 access tokens, the mapping of HTTP failures to error kinds, chunked upload
//! driving, and the rules for remote folder paths.
//!
//! - [`client`]: a reqwest client over rustls (ring, the public web roots), no proxy from the
//!   environment, no redirects followed; base URLs must be `https`, or plain `http` to this
//!   machine only.
//! - [`oauth`]: client-credentials and refresh-token grants, the token cached until shortly
//!   before it expires and fetched again once when the API refuses it.
//! - [`outcome`]: the errors and receipts of `deliver` and `confirm` that read the same for
//!   every provider.
//! - [`upload`]: sends a document in chunks through a provider's upload session, resuming
//!   from where the server says it stands after a dropped chunk, and cancelling the session on
//!   failure so nothing half-uploaded remains.

pub(crate) mod client;
pub(crate) mod multipart;
pub(crate) mod oauth;
pub(crate) mod outcome;
pub(crate) mod remote;
pub(crate) mod upload;

use serde::{Deserialize, Serialize};

/// What a cloud channel does when a file of the same name is already in the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    /// Fail the delivery with `AlreadyExists`; the existing file is left as it was.
    #[default]
    Fail,
    /// Replace the file's content (the provider keeps the old one as a version where it does).
    Replace,
    /// Upload beside it under a new name the provider or the channel chooses.
    Rename,
}
