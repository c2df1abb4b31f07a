//! The Box channel: each document becomes a file in a Box folder.
//!
//! The app signs in with client credentials (as the enterprise's service account or a managed
//! user) or with a refresh token. Documents below `chunked_from` go up in one multipart
//! request; larger ones through a chunked upload session (parts of the size Box chooses, each
//! with its SHA-1 `Digest`, committed with the list of parts and the whole file's SHA-1),
//! resumed from the parts Box lists after a dropped part. Box shows the file only once
//! committed; a failed session is cancelled, and a delivery whose later document fails
//! removes the files it created before.

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
    self, MAX_VERSIONS, confirmation, damaged, name_taken, no_free_name, upload_failed,
};
use crate::http::remote::{FolderIds, claim, file_names, subfolder};
use config::MIN_CHUNKED;
pub use config::{BoxOptions, BoxSubject};
use error::BACKEND;
use upload::{BoxFile, Uploaded, sha1_hex};

/// The kind name definitions use for this channel.
pub const KIND: &str = "box";

/// Registers the `box` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(BoxChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to Box.
pub struct BoxChannel {
    api: Api,
    api_url: Url,
    upload_url: Url,
    folder_id: String,
    subfolder: Option<String>,
    if_exists: IfExists,
    chunked_from: u64,
    /// Folder ids by (parent id, lower-case name), so each folder is created or found once.
    folders: FolderIds,
    /// The files of this run and whose documents they hold: by folder id and name before
    /// uploading, and by file id (as receipts name them) for what an earlier attempt delivered.
    claims: Claims,
}

impl fmt::Debug for BoxChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxChannel")
            .field("folder_id", &self.folder_id)
            .field("subfolder", &self.subfolder)
            .field("if_exists", &self.if_exists)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl BoxChannel {
    /// A channel uploading with `options`. The secrets are read now; Box is first contacted
    /// at the first delivery.
    pub fn new(options: BoxOptions) -> Result<Self> {
        if let Some(template) = &options.subfolder {
            check_path_template(BACKEND, "subfolder pattern", template)?;
        }
        if options.folder_id.is_empty() || !options.folder_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_config(format!(
                "the folder_id \"{}\" is not a Box folder id (digits; \"0\" is the root)",
                options.folder_id
            ))
            .with_backend(BACKEND));
        }
        if options.chunked_from < MIN_CHUNKED {
            return Err(Error::invalid_config(format!(
                "chunked_from must be at least {MIN_CHUNKED} bytes, the smallest file Box accepts \
                 in an upload session"
            ))
            .with_backend(BACKEND));
        }
        let api_url = endpoint(BACKEND, "api_url", &options.api_url)?;
        let upload_url = endpoint(BACKEND, "upload_url", &options.upload_url)?;
        let token_url = endpoint(BACKEND, "token_url", &options.token_url)?;
        let grant = grant(&options)?;
        let secret = read_secret(BACKEND, "client_secret", &options.client_secret)?;

        let api = Api::signed_in(
            BACKEND,
            options.timeout_secs,
            token_url,
            &options.client_id,
            secret,
            grant,
            error::read_refusal,
        )?;
        Ok(BoxChannel {
            api,
            api_url,
            upload_url,
            folder_id: options.folder_id,
            subfolder: options.subfolder,
            if_exists: options.if_exists,
            chunked_from: options.chunked_from,
            folders: FolderIds::default(),
            claims: Claims::new(true),
        })
    }

    /// A channel from a definition's options.
    pub fn from_options(options: &serde_json::Value, _ctx: &BuildContext) -> Result<Self> {
        BoxChannel::new(parse_options(KIND, options)?)
    }

    /// The id of the folder a delivery's documents go to, its subfolders created.
    async fn folder_for(&self, delivery: &Delivery) -> Result<String> {
        let mut folder = self.folder_id.clone();
        for name in subfolder(BACKEND, self.subfolder.as_deref(), delivery)? {
            folder = self.folder(&folder, &name).await?;
        }
        Ok(folder)
    }

    /// Puts one of `delivery`'s documents in `folder` following `if_exists`.
    async fn place(
        &self,
        delivery: &Delivery,
        folder: &str,
        name: &str,
        doc: &Document,
    ) -> Result<Uploaded> {
        let taken = match self.upload_new(folder, name, doc).await? {
            Ok(file) => {
                return Ok(Uploaded {
                    file,
                    created: true,
                });
            }
            Err(taken) => taken,
        };
        match self.if_exists {
            IfExists::Fail => Err(name_taken(BACKEND, name)),
            IfExists::Replace => {
                // A file an earlier attempt of this run delivered to someone else is theirs.
                let existing = format!("box:file/{}/{name}", taken.id);
                claim(&self.claims, BACKEND, self.if_exists, delivery, &[existing])?;
                let file = self.upload_version(&taken.id, name, doc).await?;
                Ok(Uploaded {
                    file,
                    created: false,
                })
            }
            IfExists::Rename => {
                for n in 2..=MAX_VERSIONS {
                    let candidate = versioned_file_name(name, n);
                    if let Ok(file) = self.upload_new(folder, &candidate, doc).await? {
                        return Ok(Uploaded {
                            file,
                            created: true,
                        });
                    }
                }
                Err(no_free_name(BACKEND, name))
            }
        }
    }
}

fn grant(options: &BoxOptions) -> Result<Grant> {
    match (
        &options.subject_type,
        &options.subject_id,
        &options.refresh_token,
    ) {
        (Some(subject), Some(id), None) => Ok(Grant::ClientCredentials {
            params: vec![
                ("box_subject_type", subject.as_str().to_string()),
                ("box_subject_id", id.clone()),
            ],
        }),
        (None, None, Some(token)) => Grant::refresh_token(BACKEND, token),
        _ => Err(Error::invalid_config(
            "set either subject_type and subject_id (client credentials) or refresh_token",
        )
        .with_backend(BACKEND)),
    }
}

/// Checks the SHA-1 Box reports for a committed file against the bytes sent.
fn verify(up: &Uploaded, doc: &Document) -> Result<()> {
    match &up.file.sha1 {
        Some(sha1) if *sha1 != sha1_hex(&doc.bytes) => {
            Err(damaged(BACKEND, "SHA-1", &up.file.name, !up.created))
        }
        _ => Ok(()),
    }
}

fn location(file: &BoxFile) -> String {
    format!("box:file/{}/{}", file.id, file.name)
}

#[async_trait]
impl Channel for BoxChannel {
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
            .map(|n| format!("box:folder/{folder}/{n}"))
            .collect();
        claim(&self.claims, BACKEND, self.if_exists, delivery, &targets)?;

        let mut uploaded: Vec<Uploaded> = Vec::with_capacity(names.len());
        for (doc, name) in delivery.documents.iter().zip(&names) {
            let checked = match self.place(delivery, &folder, name, doc).await {
                Ok(up) => {
                    let checked = verify(&up, doc);
                    uploaded.push(up);
                    checked
                }
                Err(err) => Err(err),
            };
            if let Err(err) = checked {
                for up in uploaded.iter().filter(|u| u.created) {
                    self.remove(&up.file.id).await;
                }
                return Err(upload_failed(err, delivery));
            }
        }

        tracing::debug!(recipient = %delivery.recipient.id, files = uploaded.len(), "delivered to Box");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: uploaded.iter().map(|u| location(&u.file)).collect(),
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
            match self.preflight(&folder, &name, doc.len() as u64).await? {
                Some(taken) if taken.sha1.as_deref() == Some(&sha1_hex(&doc.bytes)) => {
                    found.push(location(&BoxFile {
                        id: taken.id,
                        name,
                        sha1: taken.sha1,
                    }));
                }
                _ => missing.push(name),
            }
        }

        confirmation(KIND, BACKEND, self.if_exists, delivery, found, &missing)
    }
}
