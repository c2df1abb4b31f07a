//! The run log in an embedded SQLite database.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mad_core::runlog::{DeliveryKey, PriorAttempt, RunLog};
use mad_core::summary::Failure;
use mad_core::{Error, ErrorKind, Receipt, Result, RunInfo};
use rusqlite::{Connection, OptionalExtension, params};

const BACKEND: &str = "sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    date TEXT NOT NULL,
    time TEXT NOT NULL,
    started INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    run_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    report TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('started', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    outcome TEXT,
    PRIMARY KEY (run_id, recipient, report, channel)
);
";

/// A durable run log in one SQLite file. An outcome is on disk when `finish` returns, so a
/// run killed at any point and resumed with the same run id makes no delivery twice.
#[derive(Debug, Clone)]
pub struct SqliteRunLog {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl SqliteRunLog {
    /// Opens (or creates) the run log at `path`. Several runs, in this process or others, may
    /// share one file; each waits up to five seconds for another's write.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(|e| db_error(&path, e))?;
        connection
            .execute_batch(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
            )
            .and_then(|()| connection.execute_batch(SCHEMA))
            .map_err(|e| db_error(&path, e))?;
        Ok(SqliteRunLog {
            path,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection on a blocking thread.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| Error::internal("the run log connection was poisoned by a panic"))?;
            work(&mut connection).map_err(|e| db_error(&path, e))
        })
        .await
        .map_err(|e| Error::internal(format!("the run log worker stopped: {e}")))?
    }
}

fn db_error(path: &Path, err: rusqlite::Error) -> Error {
    let kind = match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                ErrorKind::Transient
            }
            rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly => {
                ErrorKind::PermissionDenied
            }
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Internal,
        },
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("run log {}: {err}", path.display()))
        .with_backend(BACKEND)
        .with_source(err)
}

#[async_trait]
impl RunLog for SqliteRunLog {
    async fn start_run(&self, run: &RunInfo, task: &str) -> Result<RunInfo> {
        let run = run.clone();
        let task = task.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO runs (id, task, date, time, started) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
                params![run.id, task, run.date, run.time, run.started],
            )?;
            c.query_row(
                "SELECT date, time, started, task FROM runs WHERE id = ?1",
                [&run.id],
                |row| {
                    let started = RunInfo {
                        id: run.id.clone(),
                        date: row.get(0)?,
                        time: row.get(1)?,
                        started: row.get(2)?,
                    };
                    Ok((started, row.get::<_, String>(3)?, task))
                },
            )
        })
        .await
        .and_then(|(started, was, task)| {
            mad_core::runlog::check_same_task(&started.id, &was, &task)?;
            Ok(started)
        })
    }

    async fn begin(&self, key: &DeliveryKey) -> Result<PriorAttempt> {
        let key = key.clone();
        let (state, outcome) = self
            .with(move |c| {
                // Takes the write lock at once: a read upgraded to a write later fails at once
                // when another run wrote in between, whatever the busy timeout.
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let prior: Option<(String, Option<String>)> = tx
                    .query_row(
                        "SELECT state, outcome FROM deliveries WHERE run_id = ?1 AND recipient = ?2 AND report = ?3 AND channel = ?4",
                        params![key.run_id, key.recipient, key.report, key.channel],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?;
                if prior.as_ref().is_none_or(|(state, _)| state != "delivered") {
                    tx.execute(
                        "INSERT INTO deliveries (run_id, recipient, report, channel, state, attempts)
                         VALUES (?1, ?2, ?3, ?4, 'started', 1)
                         ON CONFLICT (run_id, recipient, report, channel)
                         DO UPDATE SET state = 'started', attempts = attempts + 1",
                        params![key.run_id, key.recipient, key.report, key.channel],
                    )?;
                }
                tx.commit()?;
                Ok(prior.map_or((None, None), |(s, o)| (Some(s), o)))
            })
            .await?;
        let parse = |text: Option<String>| -> Result<String> {
            text.ok_or_else(|| Error::internal("a finished delivery has no recorded outcome"))
        };
        Ok(match state.as_deref() {
            None => PriorAttempt::None,
            Some("started") => PriorAttempt::Interrupted,
            Some("delivered") => {
                PriorAttempt::Delivered(serde_json::from_str(&parse(outcome)?).map_err(|e| {
                    Error::internal(format!("a recorded receipt is unreadable: {e}"))
                })?)
            }
            _ => {
                PriorAttempt::Failed(serde_json::from_str(&parse(outcome)?).map_err(|e| {
                    Error::internal(format!("a recorded failure is unreadable: {e}"))
                })?)
            }
        })
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &std::result::Result<Receipt, Failure>,
    ) -> Result<()> {
        let key = key.clone();
        let (state, json) = match outcome {
            Ok(receipt) => ("delivered", serde_json::to_string(receipt)),
            Err(failure) => ("failed", serde_json::to_string(failure)),
        };
        let json = json.map_err(|e| Error::internal(format!("recording an outcome: {e}")))?;
        self.with(move |c| {
            c.execute(
                "UPDATE deliveries SET state = ?5, outcome = ?6
                 WHERE run_id = ?1 AND recipient = ?2 AND report = ?3 AND channel = ?4",
                params![
                    key.run_id,
                    key.recipient,
                    key.report,
                    key.channel,
                    state,
                    json
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delivered(&self, run_id: &str) -> Result<Vec<(DeliveryKey, Receipt)>> {
        let run_id = run_id.to_string();
        let rows: Vec<(DeliveryKey, Option<String>)> = self
            .with(move |c| {
                let mut statement = c.prepare(
                    "SELECT recipient, report, channel, outcome FROM deliveries
                     WHERE run_id = ?1 AND state = 'delivered'",
                )?;
                let rows = statement.query_map([&run_id], |row| {
                    Ok((
                        DeliveryKey {
                            run_id: run_id.clone(),
                            recipient: row.get(0)?,
                            report: row.get(1)?,
                            channel: row.get(2)?,
                        },
                        row.get(3)?,
                    ))
                })?;
                rows.collect()
            })
            .await?;
        rows.into_iter()
            .map(|(key, outcome)| {
                let receipt = outcome
                    .ok_or_else(|| Error::internal("a finished delivery has no recorded outcome"))
                    .and_then(|text| {
                        serde_json::from_str(&text).map_err(|e| {
                            Error::internal(format!("a recorded receipt is unreadable: {e}"))
                        })
                    })?;
                Ok((key, receipt))
            })
            .collect()
    }
}
