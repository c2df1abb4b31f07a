//! The options of the hub channel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::s3::S3Options;

/// Where the hub keeps its index and documents, and for how long.
///
/// ```toml
/// [channels.library]
/// kind = "hub"
/// index = "hub/index.sqlite"        # relative to the output folder
/// root = "hub/documents"            # or: store = { s3 = { bucket = "hub", ... } }
/// retention_days = 30
/// hub_link_base = "https://reports.example.com/hub"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubOptions {
    /// The SQLite file of the index: which documents the hub keeps, for whom, until when.
    pub index: PathBuf,
    /// The folder the documents' bytes go to (created when missing). Set this or `store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// An object store for the documents' bytes instead of `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<HubStore>,
    /// How many days a document is kept before `purge_expired` removes it.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// The start of links to hub documents; an entry's link is this, a `/`, and its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_link_base: Option<String>,
}

fn default_retention_days() -> u32 {
    30
}

impl HubOptions {
    /// A hub with its index at `index` and documents in the folder `root`.
    pub fn new(index: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        HubOptions {
            index: index.into(),
            root: Some(root.into()),
            store: None,
            retention_days: default_retention_days(),
            hub_link_base: None,
        }
    }

    /// A hub with its index at `index` and documents in an S3 bucket. The bucket options'
    /// `prefix` must be a fixed path: hub keys are the entries' ids below it.
    pub fn with_s3(index: impl Into<PathBuf>, s3: S3Options) -> Self {
        HubOptions {
            index: index.into(),
            root: None,
            store: Some(HubStore::S3(s3)),
            retention_days: default_retention_days(),
            hub_link_base: None,
        }
    }

    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    pub fn with_link_base(mut self, base: impl Into<String>) -> Self {
        self.hub_link_base = Some(base.into());
        self
    }
}

/// An object store holding the hub's documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HubStore {
    S3(S3Options),
}
