//! The run log: every delivery recorded before and after it is made, so a retried or resumed
//! run never delivers the same (run, recipient, report, channel) twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::channel::Receipt;
use crate::error::{Error, Result};
use crate::format::serial_to_parts;
use crate::summary::Failure;

/// Identifies a run and its time, for placeholders and idempotency keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub id: String,
    /// UTC, `YYYY-MM-DD`.
    pub date: String,
    /// UTC, `hh:mm:ss`.
    pub time: String,
    /// The start, in whole seconds since 1970; documents carry it as their creation time.
    pub started: i64,
}

impl RunInfo {
    /// A run starting now, with a fresh id.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let id = format!("{}-{}", since.as_millis(), std::process::id());
        RunInfo::at(id, since.as_secs_f64())
    }

    /// A run with a given id at a given time (seconds since 1970), for resumed runs and tests.
    pub fn at(id: impl Into<String>, unix_seconds: f64) -> Self {
        let p = serial_to_parts(unix_seconds / 86_400.0 + 25_569.0);
        RunInfo {
            id: id.into(),
            date: format!("{:04}-{:02}-{:02}", p.year, p.month, p.day),
            time: format!("{:02}:{:02}:{:02}", p.hour, p.minute, p.second),
            started: unix_seconds.floor() as i64,
        }
    }

    /// The run's start as a date (`YYYY-MM-DD`) and time (`hh:mm:ss`) on the wall clock of
    /// the IANA time zone `zone`, such as `Europe/Berlin`, with the zone's name as the time
    /// zone database spells it; an unknown zone is an error.
    pub fn local(&self, zone: &str) -> Result<(String, String, String)> {
        let tz = time_zone(zone)?;
        let name = tz.iana_name().unwrap_or(zone).to_string();
        let at = jiff::Timestamp::from_second(self.started)
            .map_err(|e| Error::invalid_input(format!("the run's start is out of range: {e}")))?
            .to_zoned(tz);
        Ok((
            at.strftime("%Y-%m-%d").to_string(),
            at.strftime("%H:%M:%S").to_string(),
            name,
        ))
    }
}

/// The IANA time zone `name`, from the system's time zone database or the one built in.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        Error::invalid_config(format!(
            "'{name}' is not a known time zone; write an IANA name such as Europe/Berlin, \
             America/New_York or UTC"
        ))
    })
}

/// Identifies one delivery across attempts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    pub run_id: String,
    pub recipient: String,
    /// The report's name; in a burst, followed by U+001F and the burst value, since one
    /// recipient receives the report once per value.
    pub report: String,
    pub channel: String,
}

impl DeliveryKey {
    pub fn new(
        run_id: &str,
        recipient: &str,
        report: &str,
        burst: Option<&str>,
        channel: &str,
    ) -> Self {
        let report = match burst {
            Some(value) => format!("{report}\u{1f}{value}"),
            None => report.to_string(),
        };
        DeliveryKey {
            run_id: run_id.to_string(),
            recipient: recipient.to_string(),
            report,
            channel: channel.to_string(),
        }
    }
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

    /// Every delivery of run `run_id` recorded as made, with its receipt. A resumed run tells
    /// its channels, so no new delivery takes a target an earlier one took. The default lists
    /// nothing, which leaves channels unaware of an earlier attempt's targets.
    async fn delivered(&self, run_id: &str) -> Result<Vec<(DeliveryKey, Receipt)>> {
        let _ = run_id;
        Ok(Vec::new())
    }
}

/// Refuses to resume run `run_id` of task `was` as a run of task `task`: deliveries are
/// recorded by run, recipient, report and channel, so another task's run under the same id
/// would take the first task's deliveries for its own and skip them.
pub fn check_same_task(run_id: &str, was: &str, task: &str) -> Result<()> {
    if was == task {
        return Ok(());
    }
    Err(Error::invalid_input(format!(
        "run id '{run_id}' is a run of task '{was}', not of task '{task}'; a run id names one \
         run of one task, so give this run its own id (for example '{run_id}-{task}')"
    )))
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
    /// Each run and the task it runs.
    runs: Mutex<HashMap<String, (RunInfo, String)>>,
    entries: Mutex<HashMap<DeliveryKey, Entry>>,
}

impl MemoryRunLog {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RunLog for MemoryRunLog {
    async fn start_run(&self, run: &RunInfo, task: &str) -> Result<RunInfo> {
        let mut runs = self.runs.lock().expect("run log lock");
        let (started, of) = runs
            .entry(run.id.clone())
            .or_insert_with(|| (run.clone(), task.to_string()));
        check_same_task(&run.id, of, task)?;
        Ok(started.clone())
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

    async fn delivered(&self, run_id: &str) -> Result<Vec<(DeliveryKey, Receipt)>> {
        let entries = self.entries.lock().expect("run log lock");
        Ok(entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Delivered(receipt) if key.run_id == run_id => {
                    Some((key.clone(), receipt.clone()))
                }
                _ => None,
            })
            .collect())
    }
}
