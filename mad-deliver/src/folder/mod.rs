//! The folder channel: each document becomes a file in a folder (a local disk or a mounted
//! share).
//!
//! File names are sanitised, the target never leaves the configured folder (not through the
//! name, the subfolder pattern or a symbolic link), and every file is written under a
//! temporary name and moved into place, so nobody sees half a report under its final name.

mod config;
mod error;
mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Error, Receipt, Registry, Result,
    parse_options,
};

use crate::common::{Owner, check_path_template, render_path, sanitize_file_name};
pub use config::{FolderOptions, IfExists};
use error::BACKEND;

/// The kind name definitions use for this channel.
pub const KIND: &str = "folder";

/// Registers the `folder` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(FolderChannel::from_options(options, ctx)?))
    });
}

/// Writes documents into a folder.
#[derive(Debug, Clone)]
pub struct FolderChannel {
    options: FolderOptions,
    memory: Arc<write::Memory>,
}

impl FolderChannel {
    /// A channel writing with `options`; a broken subfolder pattern is an `InvalidConfig`
    /// error now rather than at the first delivery.
    pub fn new(options: FolderOptions) -> Result<Self> {
        if options.path.as_os_str().is_empty() {
            return Err(Error::invalid_config(
                "the folder channel needs a path: set path to the folder documents go to",
            )
            .with_backend(BACKEND));
        }
        if let Some(template) = &options.subfolder {
            check_path_template(BACKEND, "subfolder pattern", template)?;
        }
        Ok(FolderChannel {
            options,
            memory: Arc::default(),
        })
    }

    /// A channel from a definition's options, its path resolved against `ctx`.
    pub fn from_options(options: &serde_json::Value, ctx: &BuildContext) -> Result<Self> {
        let mut options: FolderOptions = parse_options(KIND, options)?;
        options.path = ctx.resolve_output(&options.path);
        FolderChannel::new(options)
    }

    pub fn options(&self) -> &FolderOptions {
        &self.options
    }
}

/// The rendered subfolder and the sanitised file names of a delivery.
type Plan = (PathBuf, Vec<(String, Arc<mad_core::Document>)>);

impl FolderChannel {
    fn plan(&self, delivery: &Delivery) -> Result<Plan> {
        let subfolder = match &self.options.subfolder {
            Some(template) => render_path(
                BACKEND,
                "subfolder pattern",
                template,
                &delivery.placeholders,
            )?,
            None => PathBuf::new(),
        };
        let files = delivery
            .documents
            .iter()
            .map(|doc| (sanitize_file_name(&doc.file_name), doc.clone()))
            .collect();
        Ok((subfolder, files))
    }
}

#[async_trait]
impl Channel for FolderChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            attachments: true,
            // Written on the render thread that made the documents while writing is quick (a
            // local disk), and by the blocking pool, many at a time, while it is slow (a
            // network share), so that rendering goes on meanwhile. Not with versioned names:
            // what an interrupted attempt wrote under them cannot be found again.
            blocking: self.options.if_exists != IfExists::Version
                && self.memory.write_times.quick(),
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let (channel, delivery) = (self.clone(), delivery.clone());
        tokio::task::spawn_blocking(move || channel.deliver_blocking(&delivery))
            .await
            .map_err(|e| {
                Error::internal(format!("the folder writer stopped: {e}")).with_backend(BACKEND)
            })?
    }

    fn deliver_blocking(&self, delivery: &Delivery) -> Result<Receipt> {
        let (subfolder, files) = self.plan(delivery)?;
        let owner = Owner::of(delivery);
        let started = Instant::now();
        let written = write::write_files(
            &self.options,
            &subfolder,
            files,
            (&delivery.run_id, &owner),
            &self.memory,
        );
        self.memory.write_times.record(started.elapsed());
        let written = written?;
        tracing::debug!(recipient = %delivery.recipient.id, files = written.locations.len(), bytes = written.bytes, "delivered to folder");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: written.locations,
            bytes: written.bytes,
        })
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.memory
            .claims
            .delivered_earlier(run_id, recipient, report, receipt);
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let (subfolder, files) = self.plan(delivery)?;
        let (options, memory) = (self.options.clone(), self.memory.clone());
        let found = tokio::task::spawn_blocking(move || {
            write::confirm_files(&options, &subfolder, files, &memory)
        })
        .await
        .map_err(|e| {
            Error::internal(format!("the folder writer stopped: {e}")).with_backend(BACKEND)
        })??;
        Ok(found.map(|written| Receipt {
            channel: KIND.to_string(),
            locations: written.locations,
            bytes: written.bytes,
        }))
    }
}
