//! The run summary: what happened to each recipient.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channel::Receipt;
use crate::error::{Error, ErrorKind};

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every report reached every channel.
    Delivered,
    /// Nothing was sent, on purpose (for example the filters select no rows).
    Skipped,
    /// Something failed; `error` says what. Receipts list what did get through.
    Failed,
}

/// A failure, as recorded in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: ErrorKind,
    pub code: i32,
    pub message: String,
    /// The report and channel (where known) that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Failure {
    pub fn from_error(err: &Error, report: Option<&str>, channel: Option<&str>) -> Self {
        Failure {
            kind: err.kind(),
            code: err.kind().code(),
            message: err.to_string(),
            report: report.map(str::to_string),
            channel: channel.map(str::to_string),
        }
    }
}

/// One recipient's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// Why the recipient was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<Receipt>,
    /// Rows the recipient's reports were made from (summed over reports).
    pub rows: usize,
    pub bytes: u64,
    /// Deliveries an earlier attempt of this run had already made (not made again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Counts for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub recipients: usize,
    pub delivered: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Fetches made: one per distinct filter set and query.
    pub fetches: usize,
    /// Documents rendered (shared documents count once).
    pub documents: usize,
    /// Deliveries made (one per recipient, report and channel).
    pub deliveries: usize,
    /// Bytes delivered.
    pub bytes: u64,
    /// Deliveries found already made by an earlier attempt of the run.
    #[serde(default)]
    pub resumed: usize,
}

/// Time spent, in milliseconds. Fetch and render times add up over parallel work, so they can
/// exceed the wall time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    pub total_ms: u64,
    pub fetch_ms: u64,
    pub render_ms: u64,
    pub deliver_ms: u64,
}

/// The result of one run of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub task: String,
    /// UTC start, as `YYYY-MM-DDThh:mm:ssZ`.
    pub started_at: String,
    pub counts: Counts,
    pub durations: Durations,
    pub recipients: Vec<RecipientOutcome>,
}

impl RunSummary {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serialises")
    }

    pub fn outcome(&self, id: &str) -> Option<&RecipientOutcome> {
        self.recipients.iter().find(|r| r.id == id)
    }

    /// A few lines for people: counts, then each recipient that was not delivered.
    pub fn human(&self) -> String {
        let c = &self.counts;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let earlier = if c.resumed > 0 {
            format!(" ({} by an earlier attempt of this run)", c.resumed)
        } else {
            String::new()
        };
        let mut out = format!(
            "{}: {}: {} delivered, {} skipped, {} failed; {}, {}, {}{earlier}, {:.1} MB in {:.2} s\n",
            self.task,
            plural(c.recipients, "recipient", "recipients"),
            c.delivered,
            c.skipped,
            c.failed,
            plural(c.fetches, "fetch", "fetches"),
            plural(c.documents, "document", "documents"),
            plural(c.deliveries, "delivery", "deliveries"),
            c.bytes as f64 / 1e6,
            self.durations.total_ms as f64 / 1000.0
        );
        for r in &self.recipients {
            match r.status {
                Status::Delivered => {}
                Status::Skipped => out.push_str(&format!(
                    "  skipped {} ({}): {}\n",
                    r.id,
                    r.name,
                    r.reason.as_deref().unwrap_or("")
                )),
                Status::Failed => {
                    for e in &r.errors {
                        out.push_str(&format!(
                            "  failed {} ({}): [{}] {}\n",
                            r.id, r.name, e.kind, e.message
                        ));
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
