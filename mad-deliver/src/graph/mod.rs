//! The Microsoft Graph channel: each document becomes a file in a SharePoint document library,
//! a Teams channel's files, or a OneDrive, through the Graph API.
//!
//! The app signs in as itself (client credentials against the tenant's token endpoint).
//! Small documents go up in one request; larger ones through an upload session in chunks of a
//! multiple of 320 KiB, resumed from the server's `nextExpectedRanges` after a dropped chunk.
//! Graph shows a file only once all of its bytes arrived, so nobody sees half a report; a
//! delivery whose later document fails removes the files it created before.

mod config;
mod error;
mod upload;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Error, Receipt, Registry, Result,
    parse_options,
};
use reqwest::Url;

use crate::common::{Claims, check_path_template};
pub use crate::http::IfExists;
use crate::http::client::{Api, endpoint};
use crate::http::oauth::{Grant, read_secret};
use crate::http::outcome::{self, partly_delivered, upload_failed};
use crate::http::remote::{base_folder, claim, file_names, subfolder};
use crate::http::upload::check_chunk_size;
pub use config::GraphOptions;
use config::{CHUNK_UNIT, MAX_CHUNK};
use error::BACKEND;
use upload::{DriveItem, Uploaded};

/// The kind name definitions use for this channel.
pub const KIND: &str = "graph";

/// Registers the `graph` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(GraphChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to a drive through Microsoft Graph.
pub struct GraphChannel {
    api: Api,
    api_url: Url,
    /// The drive's path segments (`drives/{id}`, `sites/{id}/drive`, ...).
    drive: Vec<String>,
    folder: Vec<String>,
    subfolder: Option<String>,
    if_exists: IfExists,
    simple_upload_max: u64,
    chunk_size: usize,
    /// The files of this run and whose documents they hold.
    claims: Claims,
}

impl fmt::Debug for GraphChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphChannel")
            .field("drive", &self.drive.join("/"))
            .field("folder", &self.folder.join("/"))
            .field("subfolder", &self.subfolder)
            .field("if_exists", &self.if_exists)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl GraphChannel {
    /// A channel uploading with `options`. The client secret is read now; Graph is first
    /// contacted at the first delivery.
    pub fn new(options: GraphOptions) -> Result<Self> {
        let drive = drive_segments(&options)?;
        check_tenant(&options.tenant)?;
        let folder = base_folder(BACKEND, "folder", &options.folder)?;
        if let Some(template) = &options.subfolder {
            check_path_template(BACKEND, "subfolder pattern", template)?;
        }
        let chunk_size = check_chunk_size(BACKEND, options.chunk_size, CHUNK_UNIT, MAX_CHUNK)?;
        let api_url = endpoint(BACKEND, "api_url", &options.api_url)?;
        let authority = endpoint(BACKEND, "authority_url", &options.authority_url)?;
        let token_url = crate::http::client::join(
            &authority,
            [options.tenant.as_str(), "oauth2", "v2.0", "token"],
        );
        let secret = read_secret(BACKEND, "client_secret", &options.client_secret)?;

        let grant = Grant::ClientCredentials {
            params: vec![("scope", options.scope.clone())],
        };
        let api = Api::signed_in(
            BACKEND,
            options.timeout_secs,
            token_url,
            &options.client_id,
            secret,
            grant,
            error::read_refusal,
        )?;
        Ok(GraphChannel {
            api,
            api_url,
            drive,
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
        GraphChannel::new(parse_options(KIND, options)?)
    }

    /// The folder path in the drive for one delivery.
    fn folder_for(&self, delivery: &Delivery) -> Result<Vec<String>> {
        let mut parts = self.folder.clone();
        parts.extend(subfolder(BACKEND, self.subfolder.as_deref(), delivery)?);
        Ok(parts)
    }

    fn location(&self, folder: &[String], item: &DriveItem) -> String {
        self.location_of(folder, &item.name)
    }

    /// The file `name` in `folder`, as receipts (and this run's claims) name it.
    fn location_of(&self, folder: &[String], name: &str) -> String {
        let mut path = folder.to_vec();
        path.push(name.to_string());
        format!("graph:{}/root:/{}", self.drive.join("/"), path.join("/"))
    }
}

#[async_trait]
impl Channel for GraphChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        outcome::capabilities()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let folder = self.folder_for(delivery)?;
        let names = file_names(delivery);
        let targets: Vec<String> = names.iter().map(|n| self.location_of(&folder, n)).collect();
        claim(&self.claims, BACKEND, self.if_exists, delivery, &targets)?;

        let mut uploaded: Vec<Uploaded> = Vec::with_capacity(names.len());
        for (doc, name) in delivery.documents.iter().zip(names) {
            let mut path = folder.clone();
            path.push(name);
            match self.upload(&path, doc).await {
                Ok(up) => uploaded.push(up),
                Err(err) => {
                    self.roll_back(&uploaded).await;
                    return Err(upload_failed(err, delivery));
                }
            }
        }

        tracing::debug!(recipient = %delivery.recipient.id, files = uploaded.len(), "delivered to Graph");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: uploaded
                .iter()
                .map(|u| self.location(&folder, &u.item))
                .collect(),
            bytes: delivery.bytes(),
        })
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.claims
            .delivered_earlier(run_id, recipient, report, receipt);
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let folder = self.folder_for(delivery)?;
        let names = file_names(delivery);

        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (doc, name) in delivery.documents.iter().zip(names) {
            let mut path = folder.clone();
            path.push(name.clone());
            match self.lookup(&path).await? {
                Some(item) if item.size == Some(doc.len() as u64) => found.push(item),
                _ => missing.push(name),
            }
        }

        if missing.is_empty() {
            return Ok(Some(Receipt {
                channel: KIND.to_string(),
                locations: found.iter().map(|i| self.location(&folder, i)).collect(),
                bytes: delivery.bytes(),
            }));
        }
        if found.is_empty() || self.if_exists == IfExists::Replace {
            return Ok(None);
        }
        let found: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        Err(partly_delivered(BACKEND, &found, &missing))
    }
}

/// The path segments of the configured drive: exactly one of the ids must be set.
fn drive_segments(options: &GraphOptions) -> Result<Vec<String>> {
    let named: Vec<(&str, &String)> = [
        ("drives", &options.drive_id),
        ("sites", &options.site_id),
        ("groups", &options.group_id),
        ("users", &options.user_id),
    ]
    .into_iter()
    .filter_map(|(kind, id)| id.as_ref().map(|id| (kind, id)))
    .collect();
    let [(kind, id)] = named.as_slice() else {
        return Err(Error::invalid_config(
            "name the drive with exactly one of drive_id, site_id, group_id or user_id",
        )
        .with_backend(BACKEND));
    };
    if id.trim().is_empty() || id.contains(['/', '\\']) || id.chars().any(char::is_control) {
        return Err(Error::invalid_config(format!(
            "the {} \"{id}\" is not an id; copy it from the Graph API",
            kind.trim_end_matches('s')
        ))
        .with_backend(BACKEND));
    }
    let mut segments = vec![kind.to_string(), id.to_string()];
    if *kind != "drives" {
        segments.push("drive".to_string());
    }
    Ok(segments)
}

fn check_tenant(tenant: &str) -> Result<()> {
    let valid = !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        return Ok(());
    }
    Err(Error::invalid_config(format!(
        "the tenant \"{tenant}\" is not a directory id or domain"
    ))
    .with_backend(BACKEND))
}
