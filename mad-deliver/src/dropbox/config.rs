//! The options of the Dropbox channel.

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::http::IfExists;

/// Where and how the Dropbox channel uploads.
///
/// ```toml
/// [channels.dropbox]
/// kind = "dropbox"
/// app_key = "abcdefghijklmno"
/// app_secret = "env:DROPBOX_APP_SECRET"
/// refresh_token = "file:/run/secrets/dropbox-refresh-token"
/// folder = "/Reports"
/// subfolder = "{recipient.id}/{run.date}"
/// if_exists = "replace"          # fail (default) | replace | rename
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropboxOptions {
    /// The app key (OAuth2 client id).
    pub app_key: String,
    /// Where the app secret is (`env:NAME` or `file:PATH`).
    pub app_secret: SecretRef,
    /// Where the refresh token is, from the offline authorisation of the account to upload
    /// to.
    pub refresh_token: SecretRef,
    /// The folder documents go to (`/Reports`); the app's root when empty. Missing folders
    /// are created.
    #[serde(default)]
    pub folder: String,
    /// A folder below `folder`, with placeholders such as `{recipient.id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
    /// What to do when a file of the same name is there.
    #[serde(default)]
    pub if_exists: IfExists,
    /// The OAuth2 token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// The RPC endpoint root (metadata, removal).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The content endpoint root (uploads).
    #[serde(default = "default_content_url")]
    pub content_url: String,
    /// Documents up to this size are sent in one request (Dropbox accepts up to 150 MiB);
    /// larger ones through an upload session.
    #[serde(default = "default_simple_upload_max")]
    pub simple_upload_max: u64,
    /// The size of each upload session request: a multiple of 4 MiB, at most 148 MiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// The longest one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Upload session requests are multiples of this.
pub(super) const CHUNK_UNIT: u64 = 4 * 1024 * 1024;

/// The largest upload session request this channel sends.
pub(super) const MAX_CHUNK: u64 = 37 * CHUNK_UNIT;

/// The largest simple upload Dropbox accepts.
pub(super) const MAX_SIMPLE_UPLOAD: u64 = 150 * 1024 * 1024;

fn default_token_url() -> String {
    "https://api.dropboxapi.com/oauth2/token".to_string()
}

fn default_api_url() -> String {
    "https://api.dropboxapi.com/2".to_string()
}

fn default_content_url() -> String {
    "https://content.dropboxapi.com/2".to_string()
}

fn default_simple_upload_max() -> u64 {
    8 * 1024 * 1024
}

fn default_chunk_size() -> u64 {
    2 * CHUNK_UNIT
}

fn default_timeout_secs() -> u64 {
    300
}

impl DropboxOptions {
    pub fn new(
        app_key: impl Into<String>,
        app_secret: SecretRef,
        refresh_token: SecretRef,
    ) -> Self {
        DropboxOptions {
            app_key: app_key.into(),
            app_secret,
            refresh_token,
            folder: String::new(),
            subfolder: None,
            if_exists: IfExists::default(),
            token_url: default_token_url(),
            api_url: default_api_url(),
            content_url: default_content_url(),
            simple_upload_max: default_simple_upload_max(),
            chunk_size: default_chunk_size(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = folder.into();
        self
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

    pub fn with_content_url(mut self, url: impl Into<String>) -> Self {
        self.content_url = url.into();
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
