//! Channels: where documents go.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::placeholder::Placeholders;
use crate::recipient::Recipient;
use crate::render::Document;
use crate::report::ReportDef;

/// What a channel can carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChannelCapabilities {
    /// Delivers documents as attachments (e-mail) or files.
    pub attachments: bool,
    /// Can show an HTML document inline, as a message body.
    pub inline_html: bool,
    /// The largest delivery it accepts, in bytes.
    pub max_bytes: Option<u64>,
    /// Keeps documents for a retention time and purges them after.
    pub retention: bool,
    /// Delivers on the calling thread too ([`Channel::deliver_blocking`]): the delivery is
    /// short local work, such as writing files to a local disk. The engine then begins the
    /// delivery in the run log before rendering, so such a channel must be able to confirm
    /// what an interrupted attempt left ([`Channel::confirm`]).
    pub blocking: bool,
}

/// One report's documents for one recipient.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub run_id: String,
    pub task: String,
    pub recipient: Arc<Recipient>,
    pub report: Arc<ReportDef>,
    /// The report's documents, one per format.
    pub documents: Vec<Arc<Document>>,
    /// Values for placeholders in subjects, bodies and paths.
    pub placeholders: Arc<Placeholders>,
}

impl Delivery {
    /// The key under which this delivery is recorded: the same run, recipient, report (and
    /// burst value) and channel never deliver twice.
    pub fn idempotency_key(&self, channel: &str) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.run_id,
            self.recipient.id,
            self.report_key(),
            channel
        )
    }

    /// The value of the burst field this delivery is for, in a burst (the `{burst}`
    /// placeholder the engine sets).
    pub fn burst(&self) -> Option<&str> {
        self.placeholders.get("burst")
    }

    /// The report as the run log names this delivery's: its name, and in a burst U+001F and
    /// the burst value, since a recipient receives the report once per value.
    pub fn report_key(&self) -> String {
        match self.burst() {
            Some(value) => format!("{}\u{1f}{value}", self.report.name),
            None => self.report.name.clone(),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.documents.iter().map(|d| d.bytes.len() as u64).sum()
    }
}

/// Proof of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub channel: String,
    /// Where the documents went: paths, a message id, a URL.
    pub locations: Vec<String>,
    pub bytes: u64,
}

/// Delivers documents to recipients.
///
/// # Contract
/// - A delivery either completes (and returns a receipt) or fails; a half-written file or a
///   partial upload is never reported as delivered, and is cleaned up where the target allows.
/// - An option the channel cannot honour is an `Unsupported` error naming it.
/// - Credentials never appear in errors, logs or `Debug` output.
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    fn name(&self) -> &str;

    fn capabilities(&self) -> ChannelCapabilities;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt>;

    /// Delivers as [`Channel::deliver`] does, blocking the calling thread until done. Channels
    /// whose capabilities say `blocking` implement it; the engine then delivers on the
    /// thread that rendered the documents, right after rendering, instead of handing them to
    /// another thread and back. The default refuses.
    fn deliver_blocking(&self, delivery: &Delivery) -> Result<Receipt> {
        let _ = delivery;
        Err(Error::unsupported(
            self.name().to_string(),
            "delivering on the calling thread",
        ))
    }

    /// Told, before a resumed run delivers anything, that an earlier attempt of run `run_id`
    /// delivered `report` (as its delivery key names it) to `recipient` through this channel,
    /// with `receipt`. A channel that refuses to let two recipients share a target within a
    /// run uses it to know which targets are taken; the default does nothing.
    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        let _ = (run_id, recipient, report, receipt);
    }

    /// After an attempt that was interrupted mid-way (the process died), looks for what it
    /// left: `Ok(Some(receipt))` when the delivery is complete at the target, `Ok(None)` when
    /// it certainly is not. Channels that cannot tell (SMTP) return `Unsupported`, and the
    /// engine's policy decides (by default it reports the delivery instead of risking a
    /// duplicate).
    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let _ = delivery;
        Err(Error::unsupported(
            self.name().to_string(),
            "confirming an interrupted delivery",
        ))
    }
}
