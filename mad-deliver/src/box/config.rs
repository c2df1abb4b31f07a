//! The options of the Box channel.

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::http::IfExists;

/// Where and how the Box channel uploads.
///
/// ```toml
/// [channels.box]
/// kind = "box"
/// client_id = "abc123"
/// client_secret = "env:BOX_CLIENT_SECRET"
/// subject_type = "enterprise"          # client credentials: enterprise | user
/// subject_id = "123456"
/// # or, instead of subject_type and subject_id:
/// # refresh_token = "file:/var/lib/mad/box-refresh-token"
/// folder_id = "987654321"              # "0" is the account's root
/// subfolder = "{recipient.id}"
/// if_exists = "replace"                # fail (default) | replace | rename
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxOptions {
    pub client_id: String,
    /// Where the client secret is (`env:NAME` or `file:PATH`).
    pub client_secret: SecretRef,
    /// For client credentials: whose account the app acts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<BoxSubject>,
    /// For client credentials: the enterprise id or the user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// Instead of client credentials: where the refresh token is. Box hands out a new refresh
    /// token with each use; when this is a `file:` reference the new one is written back to
    /// the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretRef>,
    /// The id of the folder documents go to; `"0"` is the root.
    #[serde(default = "default_folder_id")]
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
    /// The API root (folders, files).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The upload API root.
    #[serde(default = "default_upload_url")]
    pub upload_url: String,
    /// Documents of this size and larger go through a chunked upload session (Box accepts
    /// sessions for files of 20,000,000 bytes and more); smaller ones in one request.
    #[serde(default = "default_chunked_from")]
    pub chunked_from: u64,
    /// The longest one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Whose account a client-credentials app acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxSubject {
    /// The enterprise's service account.
    Enterprise,
    /// A managed user.
    User,
}

impl BoxSubject {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            BoxSubject::Enterprise => "enterprise",
            BoxSubject::User => "user",
        }
    }
}

/// The smallest file Box accepts in an upload session.
pub(super) const MIN_CHUNKED: u64 = 20_000_000;

fn default_folder_id() -> String {
    "0".to_string()
}

fn default_token_url() -> String {
    "https://api.box.com/oauth2/token".to_string()
}

fn default_api_url() -> String {
    "https://api.box.com/2.0".to_string()
}

fn default_upload_url() -> String {
    "https://upload.box.com/api/2.0".to_string()
}

fn default_chunked_from() -> u64 {
    50 * 1024 * 1024
}

fn default_timeout_secs() -> u64 {
    300
}

impl BoxOptions {
    /// Options for an app signing in with client credentials as `subject`.
    pub fn client_credentials(
        client_id: impl Into<String>,
        client_secret: SecretRef,
        subject_type: BoxSubject,
        subject_id: impl Into<String>,
    ) -> Self {
        let mut options = BoxOptions::base(client_id.into(), client_secret);
        options.subject_type = Some(subject_type);
        options.subject_id = Some(subject_id.into());
        options
    }

    /// Options for an app acting for the user who authorised it.
    pub fn refresh_token(
        client_id: impl Into<String>,
        client_secret: SecretRef,
        refresh_token: SecretRef,
    ) -> Self {
        let mut options = BoxOptions::base(client_id.into(), client_secret);
        options.refresh_token = Some(refresh_token);
        options
    }

    fn base(client_id: String, client_secret: SecretRef) -> Self {
        BoxOptions {
            client_id,
            client_secret,
            subject_type: None,
            subject_id: None,
            refresh_token: None,
            folder_id: default_folder_id(),
            subfolder: None,
            if_exists: IfExists::default(),
            token_url: default_token_url(),
            api_url: default_api_url(),
            upload_url: default_upload_url(),
            chunked_from: default_chunked_from(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub fn with_folder_id(mut self, id: impl Into<String>) -> Self {
        self.folder_id = id.into();
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

    pub fn with_upload_url(mut self, url: impl Into<String>) -> Self {
        self.upload_url = url.into();
        self
    }

    pub fn with_chunked_from(mut self, bytes: u64) -> Self {
        self.chunked_from = bytes;
        self
    }

    pub fn with_timeout_secs(mut self, seconds: u64) -> Self {
        self.timeout_secs = seconds;
        self
    }
}
