//! The hub channel: a per-recipient library. Each delivery stores one copy of every document
//! for its recipient, kept for a retention time and then purged; a recipient can list and
//! fetch their own documents and nobody else's.
//!
//! The index (who, what, until when) lives in SQLite through [`mad_store::HubIndex`]; the
//! bytes live in a folder or an S3 bucket under each entry's id. Bytes are written before
//! their index row and removed after it, so a row never points at nothing; bytes left without
//! a row by a crash are swept the first time the hub stores or purges.

mod config;
mod content;
mod error;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Document, Placeholders, Receipt,
    Registry, Result, parse_options,
};
use mad_store::HubIndex;
use tokio::sync::OnceCell;

use crate::common::render_path;
use crate::s3::{Bucket, sha256_hex, unique_names};
pub use config::{HubOptions, HubStore};
use content::{Content, ID_LEN, is_entry_id};
use error::BACKEND;
pub use mad_store::HubEntry;

/// The kind name definitions use for this channel.
pub const KIND: &str = "hub";

/// Bytes without an index row are left alone for this long, since a store in another
/// process may be about to write the row.
const ORPHAN_GRACE: Duration = Duration::from_secs(60 * 60);

/// Deliveries purge expired entries at the first delivery and then at most this often.
const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How many expired entries a purge takes from the index at a time.
const PURGE_BATCH: usize = 500;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Registers the `hub` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(Hub::from_options(options, ctx)?))
    });
}

/// What the hub takes as the current time.
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A per-recipient document library, and the channel that fills it.
pub struct Hub {
    options: HubOptions,
    index: HubIndex,
    content: Content,
    retention: Duration,
    clock: Clock,
    swept: OnceCell<()>,
    /// When a delivery last purged expired entries (by the hub's clock).
    purged_at: Mutex<Option<SystemTime>>,
}

impl Hub {
    /// Opens the hub: creates the index and the root folder (with their parent folders) when
    /// missing and reads the store's credentials. Nothing is contacted or swept until the first
    /// store or purge.
    pub fn open(options: HubOptions) -> Result<Hub> {
        if options.retention_days == 0 {
            return Err(error::config(
                "retention_days must be at least 1, or documents would expire as they arrive",
            ));
        }
        let content = match (&options.root, &options.store) {
            (Some(root), None) => {
                std::fs::create_dir_all(root).map_err(|e| {
                    error::io(format!("creating the hub's root {}", root.display()), e)
                })?;
                Content::Disk { root: root.clone() }
            }
            (None, Some(HubStore::S3(s3))) => s3_content(s3)?,
            (Some(_), Some(_)) => {
                return Err(error::config(
                    "the hub has both root and store; keep the one its documents should go to",
                ));
            }
            (None, None) => {
                return Err(error::config(
                    "the hub needs root (a folder) or store = { s3 = { ... } } for its documents",
                ));
            }
        };
        if let Some(parent) = options.index.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                error::io(
                    format!(
                        "creating the folder of the hub's index {}",
                        parent.display()
                    ),
                    e,
                )
            })?;
        }
        let index =
            HubIndex::open(&options.index).map_err(|e| e.context("opening the hub's index"))?;
        Ok(Hub {
            retention: DAY * options.retention_days,
            options,
            index,
            content,
            clock: Arc::new(SystemTime::now),
            swept: OnceCell::new(),
            purged_at: Mutex::new(None),
        })
    }

    /// A hub from a definition's options, its index and root resolved against the output
    /// folder.
    pub fn from_options(options: &serde_json::Value, ctx: &BuildContext) -> Result<Hub> {
        let mut options: HubOptions = parse_options(KIND, options)?;
        options.index = ctx.resolve_output(&options.index);
        options.root = options.root.map(|root| ctx.resolve_output(&root));
        Hub::open(options)
    }

    /// Uses `clock` instead of the system time (for tests and replays).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn options(&self) -> &HubOptions {
        &self.options
    }

    /// The documents `recipient_id` may fetch now, newest first.
    pub async fn list(&self, recipient_id: &str) -> Result<Vec<HubEntry>> {
        self.index.list(recipient_id, self.now()).await
    }

    /// The bytes of entry `entry_id`, for `recipient_id` only.
    ///
    /// Another recipient's entry is `PermissionDenied`; an unknown or expired one is
    /// `NotFound`; bytes that no longer match their checksum are `InvalidInput`.
    pub async fn fetch(&self, recipient_id: &str, entry_id: &str) -> Result<Bytes> {
        if !is_entry_id(entry_id) {
            return Err(error::unknown_entry(entry_id));
        }
        let entry = self
            .index
            .get(entry_id)
            .await?
            .ok_or_else(|| error::unknown_entry(entry_id))?;
        if entry.recipient != recipient_id {
            return Err(error::not_theirs(recipient_id, entry_id));
        }
        if entry.is_expired(self.now()) {
            return Err(error::expired(entry_id));
        }

        let bytes = self
            .content
            .get(entry_id)
            .await?
            .ok_or_else(|| error::missing_bytes(entry_id))?;
        if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
            return Err(error::damaged(entry_id));
        }
        Ok(bytes)
    }

    /// Removes every entry whose retention ended at or before `now`, its index row first and
    /// its bytes after; returns how many were removed.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<usize> {
        self.sweep_once().await;

        let mut purged = 0;
        loop {
            let batch = self.index.expired(now, PURGE_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for entry in batch {
                if !self.index.remove(&entry.id).await? {
                    continue;
                }
                purged += 1;
                if let Err(err) = self.content.delete(&entry.id).await {
                    // The row is gone, so the bytes are an orphan the next sweep removes.
                    tracing::debug!(entry = %entry.id, error = %err, "could not delete the bytes of a purged hub document");
                }
            }
        }
        tracing::debug!(purged, "hub purge finished");
        Ok(purged)
    }

    /// Removes stored bytes that no index row points at and that are older than an hour (a
    /// crash between writing bytes and their row leaves these); returns how many.
    pub async fn sweep_orphans(&self) -> Result<usize> {
        let cutoff = self
            .now()
            .checked_sub(ORPHAN_GRACE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let stored = self.content.stored(cutoff).await?;
        let indexed = self.index.ids().await?;

        let mut removed = 0;
        for (id, modified) in stored {
            if modified < cutoff && !indexed.contains(&id) {
                self.content.delete(&id).await?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::debug!(removed, "swept orphan hub documents");
        }
        Ok(removed)
    }

    /// The link to entry `entry_id`: `hub_link_base`, a `/`, and the id; `None` without a
    /// link base. The link is stable for the entry's whole life.
    pub fn link(&self, entry_id: &str) -> Option<String> {
        let base = self.options.hub_link_base.as_deref()?;
        Some(format!("{}/{entry_id}", base.trim_end_matches('/')))
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Sweeps orphans once per hub, before the first store or purge. A failed sweep is
    /// logged and not tried again: orphans cost space, never correctness.
    async fn sweep_once(&self) {
        self.swept
            .get_or_init(|| async {
                if let Err(err) = self.sweep_orphans().await {
                    tracing::warn!(error = %err, "the hub could not sweep orphan documents");
                }
            })
            .await;
    }

    /// Purges expired entries at the first delivery and then at most once an hour, so
    /// retention holds without anyone calling [`Hub::purge_expired`]. A failed purge is logged
    /// and tried again an hour later: expired entries are never listed or served meanwhile.
    async fn purge_when_due(&self) {
        let now = self.now();
        if !self.claim_purge(now) {
            return;
        }
        if let Err(err) = self.purge_expired(now).await {
            tracing::warn!(error = %err, "the hub could not purge expired documents");
        }
    }

    /// Whether a purge is due at `now`; when it is, records `now` so concurrent deliveries
    /// leave it to this one.
    fn claim_purge(&self, now: SystemTime) -> bool {
        let mut purged_at = self.purged_at.lock().unwrap_or_else(|e| e.into_inner());
        let due = match *purged_at {
            None => true,
            Some(at) => now
                .duration_since(at)
                .is_ok_and(|since| since >= PURGE_INTERVAL),
        };
        if due {
            *purged_at = Some(now);
        }
        due
    }

    /// The entries a delivery makes, one per document, with stable ids.
    fn entries(&self, delivery: &Delivery) -> Vec<(HubEntry, Arc<Document>)> {
        let created = self.now();
        document_ids(delivery)
            .into_iter()
            .zip(&delivery.documents)
            .map(|((file_name, id), doc)| {
                let entry = HubEntry {
                    id,
                    recipient: delivery.recipient.id.clone(),
                    report: delivery.report.name.clone(),
                    run_id: delivery.run_id.clone(),
                    media_type: doc.media_type().to_string(),
                    size: doc.bytes.len() as u64,
                    sha256: sha256_hex(&doc.bytes),
                    created,
                    expires: created + self.retention,
                    file_name,
                };
                (entry, doc.clone())
            })
            .collect()
    }

    /// Whether `entry` is already stored whole: its row matches and its bytes are there.
    async fn is_stored(&self, entry: &HubEntry) -> Result<bool> {
        let Some(row) = self.index.get(&entry.id).await? else {
            return Ok(false);
        };
        let same = row.recipient == entry.recipient
            && row.sha256 == entry.sha256
            && row.size == entry.size;
        Ok(same && self.content.size(&entry.id).await? == Some(entry.size))
    }

    async fn store(&self, entry: &HubEntry, doc: &Document) -> Result<()> {
        self.content
            .put(
                &entry.id,
                doc.bytes.clone(),
                &entry.media_type,
                &entry.sha256,
            )
            .await?;
        self.index.insert(entry).await
    }

    /// Removes what a failed delivery stored, row first.
    async fn roll_back(&self, stored: &[String]) {
        for id in stored {
            let removed = match self.index.remove(id).await {
                Ok(_) => self.content.delete(id).await,
                Err(err) => Err(err),
            };
            if let Err(err) = removed {
                tracing::debug!(entry = %id, error = %err, "could not remove a hub document of a failed delivery");
            }
        }
    }

    fn receipt(&self, entries: &[(HubEntry, Arc<Document>)]) -> Receipt {
        Receipt {
            channel: KIND.to_string(),
            locations: entries
                .iter()
                .map(|(e, _)| self.link(&e.id).unwrap_or_else(|| format!("hub:{}", e.id)))
                .collect(),
            bytes: entries.iter().map(|(e, _)| e.size).sum(),
        }
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("index", &self.options.index)
            .field("content", &self.content)
            .field("retention_days", &self.options.retention_days)
            .field("hub_link_base", &self.options.hub_link_base)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Channel for Hub {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            attachments: true,
            retention: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.sweep_once().await;
        self.purge_when_due().await;
        let entries = self.entries(delivery);

        let mut stored = Vec::new();
        for (entry, doc) in &entries {
            let result = match self.is_stored(entry).await {
                Ok(true) => Ok(()),
                Ok(false) => self
                    .store(entry, doc)
                    .await
                    .map(|()| stored.push(entry.id.clone())),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                self.roll_back(&stored).await;
                return Err(err.context(format!(
                    "storing report '{}' for recipient '{}'",
                    delivery.report.name, delivery.recipient.id
                )));
            }
        }

        tracing::debug!(recipient = %delivery.recipient.id, documents = entries.len(), "stored in the hub");
        Ok(self.receipt(&entries))
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let entries = self.entries(delivery);
        for (entry, _) in &entries {
            if !self.is_stored(entry).await? {
                return Ok(None);
            }
        }
        Ok(Some(self.receipt(&entries)))
    }
}

/// The file name and entry id each of `delivery`'s documents gets in a hub, in order: what
/// a link to the hub copy of a delivery points to.
pub(crate) fn document_ids(delivery: &Delivery) -> Vec<(String, String)> {
    unique_names(delivery.documents.iter().map(|d| d.file_name.as_str()))
        .into_iter()
        .map(|name| {
            let id = entry_id(delivery, &name);
            (name, id)
        })
        .collect()
}

/// The entry id of one document of a delivery: the same run, recipient, report (and burst
/// value) and file name always give the same id, so a repeated or resumed delivery finds its
/// earlier copy.
fn entry_id(delivery: &Delivery, file_name: &str) -> String {
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        delivery.run_id,
        delivery.recipient.id,
        delivery.report_key(),
        file_name
    );
    let mut id = sha256_hex(key.as_bytes());
    id.truncate(ID_LEN);
    id
}

/// The hub's documents in a bucket, below the options' fixed prefix.
fn s3_content(s3: &crate::s3::S3Options) -> Result<Content> {
    let prefix = match &s3.prefix {
        Some(template) => render_path(BACKEND, "store prefix", template, &Placeholders::new())
            .map_err(|e| {
                e.context("the hub's store prefix is a fixed path, without placeholders")
            })?,
        None => std::path::PathBuf::new(),
    };
    let bucket = Bucket::connect(s3)?;
    Ok(Content::S3 {
        bucket,
        prefix: prefix
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect(),
    })
}
