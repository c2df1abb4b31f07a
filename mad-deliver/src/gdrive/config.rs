//! The options of the Google Drive channel.

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::http::IfExists;

/// Where and how the Google Drive channel uploads.
///
/// ```toml
/// [channels.drive]
/// kind = "gdrive"
/// client_id = "1234-abc.apps.googleusercontent.com"
/// client_secret = "env:GDRIVE_CLIENT_SECRET"
/// refresh_token = "file:/run/secrets/gdrive-refresh-token"
/// folder_id = "1AbCdEfGhIjKlMnOpQrStUvWxYz"   # "root" is My Drive
/// subfolder = "{recipient.id}"
/// if_exists = "replace"                     # fail (default) | replace | rename
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GdriveOptions {
    /// The OAuth2 client id.
    pub client_id: String,
    /// Where the client secret is (`env:NAME` or `file:PATH`).
    pub client_secret: SecretRef,
    /// Where the refresh token is, from the offline authorisation of the account to upload
    /// to.
    pub refresh_token: SecretRef,
    /// The id of the folder documents go to (`root` is My Drive; shared drives work too).
    pub folder_id: String,
    /// Folders below `folder_id`, with placeholders such as `{recipient.id}`; created when
    /// missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
    /// What to do when a file of the same name is there.
    #[serde(default)]
    pub if_exists: IfExists,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// The Drive API root (file look-ups, folders, removal).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The Drive upload root.
    #[serde(default = "default_upload_url")]
    pub upload_url: String,
    /// Documents up to this size are sent in one multipart request; larger ones through a
    /// resumable upload.
    #[serde(default = "default_simple_upload_max")]
    pub simple_upload_max: u64,
    /// The size of each resumable upload request: a multiple of 256 KiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// The longest one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Resumable upload requests are multiples of this, except the last.
pub(super) const CHUNK_UNIT: u64 = 256 * 1024;

/// The largest resumable upload request this channel sends.
pub(super) const MAX_CHUNK: u64 = 1024 * CHUNK_UNIT;

fn default_token_url() -> String {
    "https://oauth2.googleapis.com/token".to_string()
}

fn default_api_url() -> String {
    "https://www.googleapis.com/drive/v3".to_string()
}

fn default_upload_url() -> String {
    "https://www.googleapis.com/upload/drive/v3".to_string()
}

fn default_simple_upload_max() -> u64 {
    5 * 1024 * 1024
}

fn default_chunk_size() -> u64 {
    32 * CHUNK_UNIT
}

fn default_timeout_secs() -> u64 {
    300
}

impl GdriveOptions {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretRef,
        refresh_token: SecretRef,
        folder_id: impl Into<String>,
    ) -> Self {
        GdriveOptions {
            client_id: client_id.into(),
            client_secret,
            refresh_token,
            folder_id: folder_id.into(),
            subfolder: None,
            if_exists: IfExists::default(),
            token_url: default_token_url(),
            api_url: default_api_url(),
            upload_url: default_upload_url(),
            simple_upload_max: default_simple_upload_max(),
            chunk_size: default_chunk_size(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub fn with_subfolder(mut self, template: impl Into<String>) -> Self {
        self.subfolder = Some(template.into());
        self
    }

    pub fn with_if_exists(mut self, policy: IfExists) -> Self {
        self.if_exists = policy;
        self
    }

    pub fn with_token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self
    }

    pub fn with_api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
        self
    }

    pub fn with_upload_url(mut self, url: impl Into<String>) -> Self {
        self.upload_url = url.into();
        self
    }

    pub fn with_simple_upload_max(mut self, bytes: u64) -> Self {
        self.simple_upload_max = bytes;
        self
    }

    pub fn with_chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    pub fn with_timeout_secs(mut self, seconds: u64) -> Self {
        self.timeout_secs = seconds;
        self
    }
}
