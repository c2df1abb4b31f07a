//! The Google Drive channel: each document becomes a file in a Drive folder (My Drive or a
//! shared drive).
//!
//! The app acts for the account that authorised it once (a refresh token exchanged for
//! short-lived access tokens). Small documents go up in one `multipart` request; larger ones
//! through a resumable upload in chunks of a multiple of 256 KiB, resumed from the `Range`
//! Drive reports (308 Resume Incomplete) after a dropped chunk. Drive shows a file only once
//! all of it arrived; a failed upload is cancelled, and a delivery whose later document fails
//! removes the files it created before.
//!
//! Drive allows several files of one name in a folder, so `if_exists` is applied by looking
//! for the name first. Two runs uploading the same name at the same moment can both see it
//! free and leave two files of that name.

mod config;
mod error;
mod upload;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Document, Error, Receipt, Registry,
    Result, parse_options,
};
use reqwest::Url;

use crate::common::{Claims, check_path_template, versioned_file_name};
pub use crate::http::IfExists;
use crate::http::client::{Api, endpoint};
use crate::http::oauth::{Grant, read_secret};
use crate::http::outcome::{
    self, MAX_VERSIONS, confirmation, name_taken, no_free_name, upload_failed,
};
use crate::http::remote::{FolderIds, claim, file_names, subfolder};
use crate::http::upload::check_chunk_size;
pub use config::GdriveOptions;
use config::{CHUNK_UNIT, MAX_CHUNK};
use error::BACKEND;
use upload::{DriveFile, Target, md5_hex};

/// The kind name definitions use for this channel.
pub const KIND: &str = "gdrive";

/// Registers the `gdrive` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(GdriveChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to Google Drive.
pub struct GdriveChannel {
    api: Api,
    api_url: Url,
    upload_url: Url,
    folder_id: String,
    subfolder: Option<String>,
    if_exists: IfExists,
    simple_upload_max: u64,
    chunk_size: usize,
    /// Folder ids by (parent id, name), so each folder is created or found once.
    folders: FolderIds,
    /// The files of this run and whose documents they hold: by folder id and name before
    /// uploading, and by file id (as receipts name them) for what an earlier attempt delivered.
    claims: Claims,
}

impl fmt::Debug for GdriveChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GdriveChannel")
            .field("folder_id", &self.folder_id)
            .field("subfolder", &self.subfolder)
            .field("if_exists", &self.if_exists)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl GdriveChannel {
    /// A channel uploading with `options`. The secrets are read now; Drive is first contacted
    /// at the first delivery.
    pub fn new(options: GdriveOptions) -> Result<Self> {
        if let Some(template) = &options.subfolder {
            check_path_template(BACKEND, "subfolder pattern", template)?;
        }
        let valid_id = !options.folder_id.is_empty()
            && options
                .folder_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !valid_id {
            return Err(Error::invalid_config(format!(
                "the folder_id \"{}\" is not a Drive folder id (copy it from the folder's \
                 address, or write \"root\")",
                options.folder_id
            ))
            .with_backend(BACKEND));
        }
        let chunk_size = check_chunk_size(BACKEND, options.chunk_size, CHUNK_UNIT, MAX_CHUNK)?;
        let api_url = endpoint(BACKEND, "api_url", &options.api_url)?;
        let upload_url = endpoint(BACKEND, "upload_url", &options.upload_url)?;
        let token_url = endpoint(BACKEND, "token_url", &options.token_url)?;
        let secret = read_secret(BACKEND, "client_secret", &options.client_secret)?;
        let grant = Grant::refresh_token(BACKEND, &options.refresh_token)?;

        let api = Api::signed_in(
            BACKEND,
            options.timeout_secs,
            token_url,
            &options.client_id,
            secret,
            grant,
            error::read_refusal,
        )?;
        Ok(GdriveChannel {
            api,
            api_url,
            upload_url,
            folder_id: options.folder_id,
            subfolder: options.subfolder,
            if_exists: options.if_exists,
            simple_upload_max: options.simple_upload_max,
            chunk_size,
            folders: FolderIds::default(),
            claims: Claims::new(true),
        })
    }

    /// A channel from a definition's options.
    pub fn from_options(options: &serde_json::Value, _ctx: &BuildContext) -> Result<Self> {
        GdriveChannel::new(parse_options(KIND, options)?)
    }

    /// The id of the folder a delivery's documents go to, its subfolders created.
    async fn folder_for(&self, delivery: &Delivery) -> Result<String> {
        let mut folder = self.folder_id.clone();
        for name in subfolder(BACKEND, self.subfolder.as_deref(), delivery)? {
            folder = self.folder(&folder, &name).await?;
        }
        Ok(folder)
    }

    /// Puts one document in `folder` following `if_exists`: the file and whether it is new.
    async fn place(
        &self,
        delivery: &Delivery,
        folder: &str,
        name: &str,
        doc: &Document,
    ) -> Result<(DriveFile, bool)> {
        let existing = self.find(folder, name, false).await?;
        let Some(first) = existing.first() else {
            let file = self.upload(Target::New { folder, name }, doc).await?;
            return Ok((file, true));
        };
        match self.if_exists {
            IfExists::Fail => Err(name_taken(BACKEND, name)),
            IfExists::Replace => {
                // A file an earlier attempt of this run delivered to someone else is theirs.
                claim(
                    &self.claims,
                    BACKEND,
                    self.if_exists,
                    delivery,
                    &[location(first)],
                )?;
                let file = self.upload(Target::Existing { id: &first.id }, doc).await?;
                Ok((file, false))
            }
            IfExists::Rename => {
                for n in 2..=MAX_VERSIONS {
                    let candidate = versioned_file_name(name, n);
                    if self.find(folder, &candidate, false).await?.is_empty() {
                        let target = Target::New {
                            folder,
                            name: &candidate,
                        };
                        return Ok((self.upload(target, doc).await?, true));
                    }
                }
                Err(no_free_name(BACKEND, name))
            }
        }
    }
}

fn location(file: &DriveFile) -> String {
    format!("gdrive:file/{}/{}", file.id, file.name)
}

/// Whether `file` holds exactly `doc`.
fn holds(file: &DriveFile, doc: &Document) -> bool {
    file.size.as_deref() == Some(doc.len().to_string().as_str())
        && file.md5_checksum.as_deref() == Some(md5_hex(&doc.bytes).as_str())
}

#[async_trait]
impl Channel for GdriveChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        outcome::capabilities()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let folder = self.folder_for(delivery).await?;
        let names = file_names(delivery);
        let targets: Vec<String> = names
            .iter()
            .map(|n| format!("gdrive:folder/{folder}/{n}"))
            .collect();
        claim(&self.claims, BACKEND, self.if_exists, delivery, &targets)?;

        let mut locations = Vec::with_capacity(names.len());
        let mut created: Vec<String> = Vec::new();
        for (doc, name) in delivery.documents.iter().zip(&names) {
            match self.place(delivery, &folder, name, doc).await {
                Ok((file, new)) => {
                    locations.push(location(&file));
                    if new {
                        created.push(file.id);
                    }
                }
                Err(err) => {
                    for id in &created {
                        self.remove(id).await;
                    }
                    return Err(upload_failed(err, delivery));
                }
            }
        }

        tracing::debug!(recipient = %delivery.recipient.id, files = locations.len(), "delivered to Google Drive");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations,
            bytes: delivery.bytes(),
        })
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.claims
            .delivered_earlier(run_id, recipient, report, receipt);
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let folder = self.folder_for(delivery).await?;
        let names = file_names(delivery);

        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (doc, name) in delivery.documents.iter().zip(names) {
            let files = self.find(&folder, &name, false).await?;
            match files.iter().find(|f| holds(f, doc)) {
                Some(file) => found.push(location(file)),
                None => missing.push(name),
            }
        }

        confirmation(KIND, BACKEND, self.if_exists, delivery, found, &missing)
    }
}
