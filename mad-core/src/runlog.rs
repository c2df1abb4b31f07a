//! The run log: every delivery recorded before and after it is made, so a retried or resumed
//! run never delivers the same (run, recipient, report, channel) twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::channel::Receipt;
use crate::engine::RunInfo;
use crate::error::Result;
use crate::summary::Failure;

/// Identifies one delivery across attempts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    pub run_id: String,
    pub recipient: String,
    pub report: String,
    pub channel: String,
}

/// What earlier attempts of a delivery left behind.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorAttempt {
    /// No earlier attempt.
    None,
    /// Delivered before: do not deliver again.
    Delivered(Receipt),
    /// An earlier attempt started and never finished (the process died while sending): it
    /// may or may not have reached the target.
    Interrupted,
    /// An earlier attempt failed: deliver again.
    Failed(Failure),
}

/// Where runs and deliveries are recorded.
///
/// # Contract
/// - `begin` records that an attempt starts and returns what earlier attempts left, atomically,
///   so two workers cannot both start the same delivery unnoticed.
/// - `finish` is durable when it returns: after a crash, `begin` reports `Delivered`.
/// - `start_run` returns the run as first recorded, so a resumed run keeps its id, date and
///   time (and therefore its file names and placeholders).
#[async_trait]
pub trait RunLog: Send + Sync + fmt::Debug {
    async fn start_run(&self, run: &RunInfo, task: &str) -> Result<RunInfo>;

    async fn begin(&self, key: &DeliveryKey) -> Result<PriorAttempt>;

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &std::result::Result<Receipt, Failure>,
    ) -> Result<()>;
}

#[derive(Debug, Clone)]
enum Entry {
    Started,
    Delivered(Receipt),
    Failed(Failure),
}

/// A run log in memory: retries within one process are no-ops for what was delivered. Use a
/// durable log (SQLite) to survive a crash.
#[derive(Debug, Default)]
pub struct MemoryRunLog {
    runs: Mutex<HashMap<String, RunInfo>>,
    entries: Mutex<HashMap<DeliveryKey, Entry>>,
}

impl MemoryRunLog {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RunLog for MemoryRunLog {
    async fn start_run(&self, run: &RunInfo, _task: &str) -> Result<RunInfo> {
        let mut runs = self.runs.lock().expect("run log lock");
        Ok(runs
            .entry(run.id.clone())
            .or_insert_with(|| run.clone())
            .clone())
    }

    async fn begin(&self, key: &DeliveryKey) -> Result<PriorAttempt> {
        let mut entries = self.entries.lock().expect("run log lock");
        let prior = match entries.get(key) {
            None => PriorAttempt::None,
            Some(Entry::Delivered(r)) => return Ok(PriorAttempt::Delivered(r.clone())),
            Some(Entry::Started) => PriorAttempt::Interrupted,
            Some(Entry::Failed(f)) => PriorAttempt::Failed(f.clone()),
        };
        entries.insert(key.clone(), Entry::Started);
        Ok(prior)
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &std::result::Result<Receipt, Failure>,
    ) -> Result<()> {
        let entry = match outcome {
            Ok(r) => Entry::Delivered(r.clone()),
            Err(f) => Entry::Failed(f.clone()),
        };
        self.entries
            .lock()
            .expect("run log lock")
            .insert(key.clone(), entry);
        Ok(())
    }
}
