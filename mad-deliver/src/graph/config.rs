//! The options of the Microsoft Graph channel (SharePoint, Teams, OneDrive).

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::http::IfExists;

/// Where and how the Graph channel uploads.
///
/// ```toml
/// [channels.sharepoint]
/// kind = "graph"
/// tenant = "contoso.onmicrosoft.com"     # directory (tenant) id or domain
/// client_id = "00000000-0000-0000-0000-000000000000"
/// client_secret = "env:GRAPH_CLIENT_SECRET"
/// site_id = "contoso.sharepoint.com,1111...,2222..."   # or drive_id, group_id, user_id
/// folder = "Reports/Monthly"
/// subfolder = "{recipient.id}/{run.date}"
/// if_exists = "replace"                   # fail (default) | replace | rename
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphOptions {
    /// The directory (tenant) id or one of its domains.
    pub tenant: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// Where the app's client secret is (`env:NAME` or `file:PATH`).
    pub client_secret: SecretRef,
    /// The drive (document library) to upload to, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_id: Option<String>,
    /// A SharePoint site, whose default document library is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// A Microsoft 365 group or team, whose files library is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// A user, whose OneDrive is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The folder in the drive documents go to (`Reports/Monthly`); the drive's root when
    /// empty. Missing folders are created.
    #[serde(default)]
    pub folder: String,
    /// A folder below `folder`, with placeholders such as `{recipient.id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
    /// What to do when a file of the same name is there.
    #[serde(default)]
    pub if_exists: IfExists,
    /// The sign-in authority; the token endpoint is `{authority_url}/{tenant}/oauth2/v2.0/token`.
    #[serde(default = "default_authority_url")]
    pub authority_url: String,
    /// The Graph API root.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The scope asked for with the client credentials.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Documents up to this size are sent in one request; larger ones through an upload
    /// session.
    #[serde(default = "default_simple_upload_max")]
    pub simple_upload_max: u64,
    /// The size of each upload session request: a multiple of 320 KiB (327,680 bytes), at
    /// most 60 MiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// The longest one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Upload session requests must be multiples of this.
pub(super) const CHUNK_UNIT: u64 = 320 * 1024;

/// The largest upload session request Graph accepts.
pub(super) const MAX_CHUNK: u64 = 60 * 1024 * 1024;

fn default_authority_url() -> String {
    "https://login.microsoftonline.com".to_string()
}

fn default_api_url() -> String {
    "https://graph.microsoft.com/v1.0".to_string()
}

fn default_scope() -> String {
    "https://graph.microsoft.com/.default".to_string()
}

fn default_simple_upload_max() -> u64 {
    4 * 1024 * 1024
}

fn default_chunk_size() -> u64 {
    32 * CHUNK_UNIT
}

fn default_timeout_secs() -> u64 {
    300
}

impl GraphOptions {
    /// Options for the app `client_id` of `tenant`; name the drive with one of the
    /// `with_*_id` methods.
    pub fn new(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretRef,
    ) -> Self {
        GraphOptions {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret,
            drive_id: None,
            site_id: None,
            group_id: None,
            user_id: None,
            folder: String::new(),
            subfolder: None,
            if_exists: IfExists::default(),
            authority_url: default_authority_url(),
            api_url: default_api_url(),
            scope: default_scope(),
            simple_upload_max: default_simple_upload_max(),
            chunk_size: default_chunk_size(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub fn with_drive_id(mut self, id: impl Into<String>) -> Self {
        self.drive_id = Some(id.into());
        self
    }

    pub fn with_site_id(mut self, id: impl Into<String>) -> Self {
        self.site_id = Some(id.into());
        self
    }

    pub fn with_group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }

    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
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

    pub fn with_authority_url(mut self, url: impl Into<String>) -> Self {
        self.authority_url = url.into();
        self
    }

    pub fn with_api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
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
