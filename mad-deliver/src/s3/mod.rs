//! The S3 channel: each document becomes an object in a bucket of Amazon S3 or an
//! S3-compatible store, under `prefix/file name`.
//!
//! Keys are built from sanitised parts only, so a key never leaves the configured prefix.
//! Each document goes up in one PUT, which the store makes visible whole or not at all, with
//! its SHA-256 checked by the store and kept as metadata; a resumed run asks the store
//! (`HEAD`) whether an interrupted delivery completed, so it never uploads twice.

mod client;
mod config;
mod error;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Document, Receipt, Registry, Result,
    parse_options,
};
use object_store::path::Path as Key;
use sha2::{Digest, Sha256};

use crate::common::{
    Claims, check_path_template, render_path, sanitize_file_name, versioned_file_name,
};
pub(crate) use client::Bucket;
pub use config::{CredentialSource, S3Options, ServerSideEncryption};
use error::BACKEND;

/// The kind name definitions use for this channel.
pub const KIND: &str = "s3";

/// Registers the `s3` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(S3Channel::from_options(options, ctx)?))
    });
}

/// Uploads documents to a bucket.
pub struct S3Channel {
    options: S3Options,
    bucket: Bucket,
    /// The keys the current run wrote, and whose documents they hold.
    claims: Claims,
}

impl S3Channel {
    /// A channel uploading with `options`. Credentials are read now; a broken prefix pattern
    /// or an unsafe endpoint is an `InvalidConfig` error now rather than at the first
    /// delivery. The store is first contacted at the first delivery.
    pub fn new(options: S3Options) -> Result<Self> {
        if let Some(template) = &options.prefix {
            check_path_template(BACKEND, "prefix pattern", template)?;
        }
        let bucket = Bucket::connect(&options)?;
        Ok(S3Channel {
            options,
            bucket,
            claims: Claims::new(false),
        })
    }

    /// A channel from a definition's options.
    pub fn from_options(options: &serde_json::Value, _ctx: &BuildContext) -> Result<Self> {
        S3Channel::new(parse_options(KIND, options)?)
    }

    pub fn options(&self) -> &S3Options {
        &self.options
    }

    /// Each document with the key it goes to (deterministic for a delivery, so `confirm`
    /// finds what an earlier attempt uploaded).
    fn plan(&self, delivery: &Delivery) -> Result<Vec<(Key, Arc<Document>)>> {
        let prefix = match &self.options.prefix {
            Some(template) => {
                render_path(BACKEND, "prefix pattern", template, &delivery.placeholders)?
            }
            None => std::path::PathBuf::new(),
        };
        let folders: Vec<String> = prefix
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        let names = unique_names(delivery.documents.iter().map(|d| d.file_name.as_str()));
        names
            .iter()
            .zip(&delivery.documents)
            .map(|(name, doc)| {
                let parts = folders.iter().map(String::as_str).chain([name.as_str()]);
                let key = self.bucket.key(parts)?;
                Ok((key, doc.clone()))
            })
            .collect()
    }

    fn receipt(&self, plan: &[(Key, Arc<Document>)]) -> Receipt {
        Receipt {
            channel: KIND.to_string(),
            locations: plan
                .iter()
                .map(|(key, _)| self.bucket.location(key))
                .collect(),
            bytes: plan.iter().map(|(_, doc)| doc.bytes.len() as u64).sum(),
        }
    }

    /// Removes what a failed delivery uploaded, so no partial delivery stays behind.
    async fn roll_back(&self, uploaded: &[Key]) {
        for key in uploaded {
            if let Err(err) = self.bucket.delete(key).await {
                tracing::debug!(key = %key, error = %err, "could not remove an object of a failed delivery");
            }
        }
    }
}

impl fmt::Debug for S3Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Channel")
            .field("bucket", &self.options.bucket)
            .field("prefix", &self.options.prefix)
            .field("region", &self.options.region)
            .field("endpoint", &self.options.endpoint)
            .field("credentials", &self.options.credentials)
            .field("sse", &self.options.sse)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Channel for S3Channel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        // The 5 GiB limit of one PUT applies per document, not per delivery, so it is not
        // published as the delivery's `max_bytes`.
        ChannelCapabilities {
            attachments: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let plan = self.plan(delivery)?;
        self.claims
            .claim(BACKEND, delivery, &self.receipt(&plan).locations)?;

        let mut uploaded = Vec::with_capacity(plan.len());
        for (key, doc) in &plan {
            let sha256 = sha256_hex(&doc.bytes);
            if let Err(err) = self
                .bucket
                .put(key, doc.bytes.clone(), doc.media_type(), &sha256)
                .await
            {
                self.roll_back(&uploaded).await;
                return Err(err.context(format!(
                    "delivering report '{}' to recipient '{}'",
                    delivery.report.name, delivery.recipient.id
                )));
            }
            uploaded.push(key.clone());
        }

        let receipt = self.receipt(&plan);
        tracing::debug!(recipient = %delivery.recipient.id, objects = plan.len(), bytes = receipt.bytes, "delivered to s3");
        Ok(receipt)
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.claims
            .delivered_earlier(run_id, recipient, report, receipt);
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let plan = self.plan(delivery)?;
        for (key, doc) in &plan {
            let complete = self.bucket.head(key).await?.is_some_and(|stored| {
                stored.size == doc.bytes.len() as u64
                    && stored.sha256.as_deref() == Some(sha256_hex(&doc.bytes).as_str())
            });
            if !complete {
                return Ok(None);
            }
        }
        Ok(Some(self.receipt(&plan)))
    }
}

/// The SHA-256 of `bytes` as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Safe file names for a delivery's documents, a repeated name numbered so two documents
/// never share a key.
pub(crate) fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .map(|name| {
            let name = sanitize_file_name(name);
            let mut n = 1;
            let mut candidate = name.clone();
            while !seen.insert(candidate.to_lowercase()) {
                n += 1;
                candidate = versioned_file_name(&name, n);
            }
            candidate
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn repeated_names_are_numbered() {
        let names = unique_names(["a.pdf", "A.pdf", "../x"].into_iter());
        assert_eq!(names, ["a.pdf", "A (2).pdf", "_x"]);
    }
}
