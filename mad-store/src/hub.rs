//! The index of the hub: which documents the hub keeps, for whom, and until when, in an
//! embedded SQLite database.
//!
//! The index holds no document bytes; the hub keeps those on disk or in an object store under
//! each entry's id. Whoever removes a document deletes its row first and its bytes after, so
//! a crash in between leaves an orphan file (swept later) and never a row pointing at nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mad_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OptionalExtension, Row, params};

const BACKEND: &str = "sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hub_documents (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    report TEXT NOT NULL,
    run_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hub_documents_by_recipient ON hub_documents (recipient, created);
CREATE INDEX IF NOT EXISTS hub_documents_by_expiry ON hub_documents (expires);
";

const COLUMNS: &str =
    "id, recipient, report, run_id, file_name, media_type, size, sha256, created, expires";

/// One document the hub keeps for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEntry {
    /// The entry's id: stable for one (run, recipient, report, file name).
    pub id: String,
    /// The id of the recipient the document belongs to; nobody else may fetch it.
    pub recipient: String,
    /// The name of the report the document is a copy of.
    pub report: String,
    /// The run that produced it.
    pub run_id: String,
    /// The document's file name, as the recipient should see it.
    pub file_name: String,
    pub media_type: String,
    /// The size in bytes.
    pub size: u64,
    /// The SHA-256 of the bytes, as lowercase hex.
    pub sha256: String,
    /// When the hub stored it, to the second.
    pub created: SystemTime,
    /// When the hub may purge it, to the second.
    pub expires: SystemTime,
}

impl HubEntry {
    /// Whether the entry's retention has ended at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires <= now
    }
}

/// The hub's index in one SQLite file.
///
/// Every call is one statement or one transaction, durable when it returns.
#[derive(Debug, Clone)]
pub struct HubIndex {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl HubIndex {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(|e| db_error(&path, e))?;
        connection
            .execute_batch(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
            )
            .and_then(|()| connection.execute_batch(SCHEMA))
            .map_err(|e| db_error(&path, e))?;
        Ok(HubIndex {
            path,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// The file the index lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `entry`, replacing an entry with the same id.
    pub async fn insert(&self, entry: &HubEntry) -> Result<()> {
        let entry = entry.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO hub_documents ({COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    entry.id,
                    entry.recipient,
                    entry.report,
                    entry.run_id,
                    entry.file_name,
                    entry.media_type,
                    i64::try_from(entry.size).unwrap_or(i64::MAX),
                    entry.sha256,
                    unix_seconds(entry.created),
                    unix_seconds(entry.expires),
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// The entry with `id`, whoever it belongs to and whether expired or not.
    pub async fn get(&self, id: &str) -> Result<Option<HubEntry>> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM hub_documents WHERE id = ?1"),
                [id],
                entry_from_row,
            )
            .optional()
        })
        .await
    }

    /// The entries of `recipient` still kept at `now`, newest first.
    pub async fn list(&self, recipient: &str, now: SystemTime) -> Result<Vec<HubEntry>> {
        let recipient = recipient.to_string();
        self.with(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {COLUMNS} FROM hub_documents WHERE recipient = ?1 AND expires > ?2
                 ORDER BY created DESC, file_name, id"
            ))?;
            let rows =
                statement.query_map(params![recipient, unix_seconds(now)], entry_from_row)?;
            rows.collect()
        })
        .await
    }

    /// Up to `limit` entries whose retention ended at or before `now`, oldest first.
    pub async fn expired(&self, now: SystemTime, limit: usize) -> Result<Vec<HubEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {COLUMNS} FROM hub_documents WHERE expires <= ?1
                 ORDER BY expires, id LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![unix_seconds(now), limit], entry_from_row)?;
            rows.collect()
        })
        .await
    }

    /// Removes the entry with `id`; `false` when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM hub_documents WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
        .await
    }

    /// The ids of every entry, for finding stored bytes no entry points at.
    pub async fn ids(&self) -> Result<HashSet<String>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT id FROM hub_documents")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
        .await
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
                .map_err(|_| Error::internal("the hub index connection was poisoned by a panic"))?;
            work(&mut connection).map_err(|e| db_error(&path, e))
        })
        .await
        .map_err(|e| Error::internal(format!("the hub index worker stopped: {e}")))?
    }
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<HubEntry> {
    let size: i64 = row.get(6)?;
    Ok(HubEntry {
        id: row.get(0)?,
        recipient: row.get(1)?,
        report: row.get(2)?,
        run_id: row.get(3)?,
        file_name: row.get(4)?,
        media_type: row.get(5)?,
        size: u64::try_from(size).unwrap_or(0),
        sha256: row.get(7)?,
        created: from_unix_seconds(row.get(8)?),
        expires: from_unix_seconds(row.get(9)?),
    })
}

/// Seconds since 1970, rounded down; times before 1970 count as 1970.
fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix_seconds(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
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
    Error::new(kind, format!("hub index {}: {err}", path.display()))
        .with_backend(BACKEND)
        .with_source(err)
}
