//! The options of the folder channel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where and how the folder channel writes.
///
/// ```toml
/// [channels.archive]
/// kind = "folder"
/// path = "reports"                 # relative to the definitions file
/// subfolder = "{recipient.id}/{run.date}"
/// if_exists = "version"            # fail | overwrite | keep | version
/// create = true
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderOptions {
    /// The folder documents go to; relative paths are resolved against the definitions'
    /// folder.
    pub path: PathBuf,
    /// A folder below `path`, with placeholders such as `{recipient.id}`; created when
    /// missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
    /// What to do when a file of the same name is already there.
    #[serde(default)]
    pub if_exists: IfExists,
    /// Create `path` itself when it is missing (subfolders are always created).
    #[serde(default)]
    pub create: bool,
}

impl FolderOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FolderOptions {
            path: path.into(),
            subfolder: None,
            if_exists: IfExists::default(),
            create: false,
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

    pub fn with_create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
}

/// What the folder channel does when the target file exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    /// Fail the delivery with `AlreadyExists`; nothing is written.
    #[default]
    Fail,
    /// Replace the file.
    Overwrite,
    /// Leave the old file; the receipt lists it, with no bytes written.
    Keep,
    /// Write `name (2).pdf`, `name (3).pdf`, ... beside it.
    Version,
}
