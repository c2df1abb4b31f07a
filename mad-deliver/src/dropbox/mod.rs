//! The Dropbox channel: each document becomes a file in a Dropbox folder.
//!
//! The app acts for the account that authorised it once (a refresh token exchanged for
//! short-lived access tokens). Small documents go up with `files/upload`; larger ones through
//! an upload session (`upload_session/start`, `append_v2`, then `finish`, which commits the
//! file in one step), resumed from the server's `correct_offset` after a dropped chunk.
//! Dropbox's content hash of every new file is checked against the bytes sent.

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

use crate::common::{Claims, check_path_template};
pub use crate::http::IfExists;
use crate::http::client::{Api, endpoint};
use crate::http::oauth::{Grant, read_secret};
use crate::http::outcome::{self, confirmation, upload_failed};
use crate::http::remote::{base_folder, claim, file_names, subfolder};
use crate::http::upload::check_chunk_size;
pub use config::DropboxOptions;
use config::{CHUNK_UNIT, MAX_CHUNK, MAX_SIMPLE_UPLOAD};
use error::BACKEND;
use upload::{FileMetadata, content_hash};

/// The kind name definitions use for this channel.
pub const KIND: &str = "dropbox";

/// Registers the `dropbox` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(DropboxChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to Dropbox.
pub struct DropboxChannel {
    api: Api,
    api_url: Url,
    content_url: Url,
    folder: Vec<String>,
    subfolder: Option<String>,
    if_exists: IfExists,
    simple_upload_max: u64,
    chunk_size: usize,
    /// The files of this run and whose documents they hold.
    claims: Claims,
}

impl fmt::Debug for DropboxChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropboxChannel")
            .field("folder", &format!("/{}", self.folder.join("/")))
            .field("subfolder", &self.subfolder)
            .field("if_exists", &self.if_exists)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl DropboxChannel {
    /// A channel uploading with `options`. The app secret and refresh token are read now;
    /// Dropbox is first contacted at the first delivery.
    pub fn new(options: DropboxOptions) -> Result<Self> {
        let folder = base_folder(BACKEND, "folder", &options.folder)?;
        if let Some(template) = &options.subfolder {
            check_path_template(BACKEND, "subfolder pattern", template)?;
        }
        let chunk_size = check_chunk_size(BACKEND, options.chunk_size, CHUNK_UNIT, MAX_CHUNK)?;
        if options.simple_upload_max > MAX_SIMPLE_UPLOAD {
            return Err(Error::invalid_config(format!(
                "simple_upload_max may be at most {MAX_SIMPLE_UPLOAD} bytes (150 MiB), the most \
                 Dropbox accepts in one request"
            ))
            .with_backend(BACKEND));
        }
        let api_url = endpoint(BACKEND, "api_url", &options.api_url)?;
        let content_url = endpoint(BACKEND, "content_url", &options.content_url)?;
        let token_url = endpoint(BACKEND, "token_url", &options.token_url)?;
        let secret = read_secret(BACKEND, "app_secret", &options.app_secret)?;
        let grant = Grant::refresh_token(BACKEND, &options.refresh_token)?;

        let api = Api::signed_in(
            BACKEND,
            options.timeout_secs,
            token_url,
            &options.app_key,
            secret,
            grant,
            error::read_refusal,
        )?;
        Ok(DropboxChannel {
            api,
            api_url,
            content_url,
            folder,
            subfolder: options.subfolder,
            if_exists: options.if_exists,
            simple_upload_max: options.simple_upload_max,
            chunk_size,
            claims: Claims::new(true),
        })
    }

    /// A channel from a definition's options.
    pub fn from_options(options: &serde_json::Value, _ctx: &BuildContext) -> Result<Self> {
        DropboxChannel::new(parse_options(KIND, options)?)
    }

    /// The Dropbox paths (`/Reports/ann/report.pdf`) of a delivery's documents, in order.
    fn paths(&self, delivery: &Delivery) -> Result<Vec<String>> {
        let mut folder = self.folder.clone();
        folder.extend(subfolder(BACKEND, self.subfolder.as_deref(), delivery)?);
        Ok(file_names(delivery)
            .into_iter()
            .map(|name| {
                let mut parts = folder.clone();
                parts.push(name);
                format!("/{}", parts.join("/"))
            })
            .collect())
    }
}

/// Checks the content hash Dropbox reports for a committed file against the bytes sent.
fn verify(file: &FileMetadata, doc: &Document, replaced: bool) -> Result<()> {
    match &file.content_hash {
        Some(hash) if *hash != content_hash(&doc.bytes) => Err(outcome::damaged(
            BACKEND,
            "content hash",
            &file.name,
            replaced,
        )),
        _ => Ok(()),
    }
}

fn location(file: &FileMetadata, path: &str) -> String {
    format!("dropbox:{}", file.path_display.as_deref().unwrap_or(path))
}

#[async_trait]
impl Channel for DropboxChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        outcome::capabilities()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let paths = self.paths(delivery)?;
        let targets: Vec<String> = paths.iter().map(|p| format!("dropbox:{p}")).collect();
        claim(&self.claims, BACKEND, self.if_exists, delivery, &targets)?;

        let mut locations = Vec::with_capacity(paths.len());
        let mut created: Vec<String> = Vec::new();
        for (doc, path) in delivery.documents.iter().zip(&paths) {
            let existed = self.if_exists == IfExists::Replace && self.lookup(path).await?.is_some();
            let checked = match self.upload(path, doc).await {
                Ok(file) => {
                    let checked = verify(&file, doc, existed);
                    if !existed {
                        created.push(file.id.clone());
                    }
                    checked.map(|()| locations.push(location(&file, path)))
                }
                Err(err) => Err(err),
            };
            if let Err(err) = checked {
                for id in &created {
                    self.remove(id).await;
                }
                return Err(upload_failed(err, delivery));
            }
        }

        tracing::debug!(recipient = %delivery.recipient.id, files = locations.len(), "delivered to Dropbox");
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
        let paths = self.paths(delivery)?;

        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (doc, path) in delivery.documents.iter().zip(&paths) {
            match self.lookup(path).await? {
                Some(file) if file.content_hash.as_deref() == Some(&content_hash(&doc.bytes)) => {
                    found.push(location(&file, path));
                }
                _ => missing.push(path.clone()),
            }
        }

        confirmation(KIND, BACKEND, self.if_exists, delivery, found, &missing)
    }
}
