//! What the channels to file servers (FTP, SFTP) share: paths below a base folder, connections
//! kept for the next delivery, and placing files so that none appears half-written under its
//! final name.
//!
//! A channel implements [`RemoteFiles`] for its protocol; [`place_files`] and [`find_files`] do
//! the rest the same way for every server.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mad_core::{Delivery, Document, Error, ErrorKind, Placeholders, Receipt, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::names::{sanitize_file_name, versioned_file_name};
use super::staged::unique_token;
use super::template::render_path;
use crate::folder::IfExists;

/// Whether `host` names this machine, so plain-text protocols cannot leak anything on the way.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A host name or address as the network needs it: trimmed, an IPv6 address without brackets.
pub fn bare_host(host: &str) -> &str {
    host.trim().trim_start_matches('[').trim_end_matches(']')
}

/// `host:port` for messages and receipts, an IPv6 address in brackets.
pub fn server_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Checks a base folder from the options and writes it with single `/` separators and no
/// trailing one. An empty base is the folder the login starts in.
///
/// Control characters are refused: on FTP a line break would end the command and start another.
pub fn check_remote_base(backend: &'static str, base: &str) -> Result<String> {
    if base.chars().any(char::is_control) {
        return Err(Error::invalid_config(format!(
            "the path {base:?} holds a control character; write the folder on the server plainly"
        ))
        .with_backend(backend));
    }
    let absolute = base.starts_with('/');
    let parts: Vec<&str> = base
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    Ok(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

/// `base` made absolute: kept when it starts with `/`, else taken below `home`, the folder the
/// login starts in.
pub fn absolute_remote(home: &str, base: &str) -> String {
    if base.starts_with('/') {
        return base.to_string();
    }
    let home = if home.is_empty() { "/" } else { home };
    join_remote(home, base)
}

/// `dir`/`name`, with one `/` between them.
pub fn join_remote(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ if dir.ends_with('/') => format!("{dir}{name}"),
        _ => format!("{dir}/{name}"),
    }
}

/// The folders of a subfolder pattern below the base, each a safe single name: values cannot
/// add levels or climb out (see [`render_path`]).
pub fn remote_subfolder(
    backend: &'static str,
    template: Option<&str>,
    placeholders: &Placeholders,
) -> Result<Vec<String>> {
    let Some(template) = template else {
        return Ok(Vec::new());
    };
    let path = render_path(backend, "subfolder pattern", template, placeholders)?;
    Ok(path
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect())
}

/// The safe file names of a delivery's documents, a repeated one numbered so two documents
/// never share a file (compared without case, as some servers do).
pub fn remote_file_names(documents: &[Arc<Document>]) -> Vec<String> {
    let mut seen = HashSet::new();
    documents
        .iter()
        .map(|doc| {
            let name = sanitize_file_name(&doc.file_name);
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

/// A hidden name for a file being uploaded, unique across runs and machines.
pub fn temporary_name() -> String {
    format!(".mad-{}.tmp", unique_token())
}

/// The few file operations [`place_files`] and [`find_files`] need from a server.
#[async_trait]
pub trait RemoteFiles: Send {
    /// The size of the file at `path`, or `None` when there is no file there.
    async fn file_size(&mut self, path: &str) -> Result<Option<u64>>;

    /// Writes `bytes` to a new file at `path`.
    async fn upload(&mut self, path: &str, bytes: &[u8]) -> Result<()>;

    /// Moves the file `from` to `to`. With `replace` an existing `to` is replaced; without, an
    /// existing `to` is an `AlreadyExists` error and is left alone.
    async fn rename(&mut self, from: &str, to: &str, replace: bool) -> Result<()>;

    async fn remove(&mut self, path: &str) -> Result<()>;

    /// Whether the connection can still be used (no command was cut off half-way).
    fn is_usable(&self) -> bool;

    /// How a receipt names the file at `path` (a URL without credentials).
    fn location(&self, path: &str) -> String;
}

/// What one delivery left on the server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// The files written or kept, as locations.
    pub locations: Vec<String>,
    /// Bytes written (kept files add none).
    pub bytes: u64,
}

/// A delivery that failed, and the temporary files it could not remove (its connection broke);
/// the caller removes them over a new connection.
#[derive(Debug)]
pub struct PlaceFailure {
    pub error: Error,
    pub leftovers: Vec<String>,
}

impl From<Error> for PlaceFailure {
    fn from(error: Error) -> Self {
        PlaceFailure {
            error,
            leftovers: Vec::new(),
        }
    }
}

/// Puts `files` (safe names and their documents) into the folder `dir`: all of them, or none
/// when one fails.
///
/// Each file is uploaded under a temporary name, its size checked, and only then renamed to
/// its name, so nobody ever sees half a report under its final name. Files this delivery
/// created are removed again when a later one fails; replaced files cannot be restored.
///
/// Servers without a rename that refuses to replace (FTP) are asked first whether the target
/// exists; a file another client creates between that question and the rename is replaced.
pub async fn place_files(
    fs: &mut dyn RemoteFiles,
    backend: &'static str,
    dir: &str,
    files: &[(String, Arc<Document>)],
    policy: IfExists,
) -> std::result::Result<Written, PlaceFailure> {
    let mut kept = Vec::new();
    let mut pending = Vec::new();
    for (name, doc) in files {
        let target = join_remote(dir, name);
        let exists = fs.file_size(&target).await?.is_some();
        match (exists, policy) {
            (true, IfExists::Fail) => return Err(already_exists(backend, &target).into()),
            (true, IfExists::Keep) => kept.push(target),
            _ => pending.push((target, doc, exists)),
        }
    }

    let mut staged: Vec<(String, String, u64, bool)> = Vec::with_capacity(pending.len());
    for (target, doc, existed) in pending {
        let temp = join_remote(dir, &temporary_name());
        let len = doc.bytes.len() as u64;
        if let Err(error) = upload_checked(fs, backend, &temp, &doc.bytes).await {
            let mut temps: Vec<String> = staged.into_iter().map(|(t, ..)| t).collect();
            temps.push(temp);
            return Err(PlaceFailure {
                error,
                leftovers: remove_all(fs, temps).await,
            });
        }
        staged.push((temp, target, len, existed));
    }

    let mut written = Written::default();
    let mut created = Vec::new();
    let mut staged = staged.into_iter();
    while let Some((temp, target, len, existed)) = staged.next() {
        let replace = policy == IfExists::Overwrite;
        match fs.rename(&temp, &target, replace).await {
            Ok(()) => {
                written.locations.push(fs.location(&target));
                written.bytes += len;
                if !existed {
                    created.push(target);
                }
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists && policy == IfExists::Keep => {
                let _ = remove_all(fs, vec![temp]).await;
                kept.push(target);
            }
            Err(error) => {
                let mut temps = vec![temp];
                temps.extend(staged.map(|(t, ..)| t));
                let leftovers = remove_all(fs, temps).await;
                let _ = remove_all(fs, created).await;
                return Err(PlaceFailure { error, leftovers });
            }
        }
    }

    for target in kept {
        tracing::debug!(path = %target, "kept the existing file");
        written.locations.push(fs.location(&target));
    }
    Ok(written)
}

/// Looks for the files of an interrupted delivery: `Some` when every one is in `dir` with the
/// size of its document, `None` when one is missing or differs.
pub async fn find_files(
    fs: &mut dyn RemoteFiles,
    dir: &str,
    files: &[(String, Arc<Document>)],
) -> Result<Option<Written>> {
    let mut found = Written::default();
    for (name, doc) in files {
        let target = join_remote(dir, name);
        let len = doc.bytes.len() as u64;
        if fs.file_size(&target).await? != Some(len) {
            return Ok(None);
        }
        found.locations.push(fs.location(&target));
        found.bytes += len;
    }
    Ok(Some(found))
}

/// Removes `paths` as far as the connection allows, returning those it could not remove.
pub async fn remove_all(fs: &mut dyn RemoteFiles, paths: Vec<String>) -> Vec<String> {
    let mut left = Vec::new();
    for path in paths {
        if !fs.is_usable() {
            left.push(path);
            continue;
        }
        if let Err(err) = fs.remove(&path).await
            && err.kind() != ErrorKind::NotFound
        {
            tracing::debug!(path = %path, error = %err, "could not remove a file of a failed delivery");
            left.push(path);
        }
    }
    left
}

async fn upload_checked(
    fs: &mut dyn RemoteFiles,
    backend: &'static str,
    path: &str,
    bytes: &[u8],
) -> Result<()> {
    fs.upload(path, bytes).await?;

    let len = bytes.len() as u64;
    match fs.file_size(path).await? {
        Some(stored) if stored == len => Ok(()),
        stored => Err(Error::new(
            ErrorKind::Transient,
            format!(
                "the server kept {} of {len} bytes of {path}; the upload was cut short and is \
                 not counted as delivered",
                stored.unwrap_or(0)
            ),
        )
        .with_backend(backend)),
    }
}

fn already_exists(backend: &'static str, path: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "{path} already exists and if_exists is \"fail\"; nothing was written. Set if_exists \
             to \"overwrite\" or \"keep\" to allow this"
        ),
    )
    .with_backend(backend)
}

/// Refuses `if_exists = "version"`, which needs a rename that never replaces, and remote
/// servers do not all have one.
pub fn check_if_exists(backend: &'static str, policy: IfExists) -> Result<()> {
    if policy == IfExists::Version {
        return Err(Error::unsupported(
            backend,
            "if_exists = \"version\" (use \"fail\", \"overwrite\" or \"keep\")",
        ));
    }
    Ok(())
}

/// Connections to one server kept between deliveries, and a limit on how many are open at once.
pub struct ConnectionPool<C> {
    idle: Mutex<Vec<C>>,
    permits: Arc<Semaphore>,
    max: usize,
}

impl<C> ConnectionPool<C> {
    /// A pool allowing `max` connections at once (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        ConnectionPool {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Waits for a turn, then hands out an idle connection if there is one. Keep the permit
    /// while using the connection.
    pub async fn checkout(&self) -> (OwnedSemaphorePermit, Option<C>) {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        (permit, idle)
    }

    /// Keeps a connection that finished its work cleanly for the next delivery.
    pub fn give_back(&self, connection: C) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max {
            idle.push(connection);
        }
    }

    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl<C> fmt::Debug for ConnectionPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("max", &self.max)
            .field("idle", &self.idle())
            .finish()
    }
}

/// Opens sessions to one server.
#[async_trait]
pub trait Connect: fmt::Debug + Send + Sync + 'static {
    type Session: Session;

    /// A new session, logged in.
    async fn open_session(self: Arc<Self>) -> Result<Self::Session>;

    /// The server as logs and errors name it.
    fn server(&self) -> String;
}

/// A logged-in session with a server's files.
#[async_trait]
pub trait Session: RemoteFiles + Sized + 'static {
    /// The configured base folder as a path on this server (relative to the login folder
    /// unless absolute).
    fn base(&self, base: &str) -> String;

    /// Whether the server still answers.
    async fn is_alive(&mut self) -> bool;

    /// `base`/`parts`, creating the folders that are missing; returns the folder's path.
    async fn ensure_dir(&mut self, base: &str, parts: &[String]) -> Result<String>;
}

/// Safe file names and the documents to store under them.
type Files = Vec<(String, Arc<Document>)>;

/// What the channels to file servers share: a pool of sessions to one server, and deliveries
/// uploaded whole or not at all.
pub struct Uploads<C: Connect> {
    /// The channel's kind, as receipts name it.
    pub kind: &'static str,
    pub backend: &'static str,
    /// The base folder, normalised.
    pub base: String,
    pub subfolder: Option<String>,
    pub if_exists: IfExists,
    pub connector: Arc<C>,
    pub pool: ConnectionPool<C::Session>,
    /// The paths the current run placed, and whose documents they hold.
    pub claims: super::Claims,
}

impl<C: Connect> Uploads<C> {
    /// A pooled session that still answers, or a new one.
    async fn session(&self) -> Result<(OwnedSemaphorePermit, C::Session)> {
        let (permit, idle) = self.pool.checkout().await;
        if let Some(mut session) = idle {
            if session.is_alive().await {
                return Ok((permit, session));
            }
            tracing::debug!(server = %self.connector.server(), "an idle connection was closed; reconnecting");
        }
        Ok((permit, Arc::clone(&self.connector).open_session().await?))
    }

    /// The subfolder's parts and the files (safe names and documents) of a delivery.
    fn plan(&self, delivery: &Delivery) -> Result<(Vec<String>, Files)> {
        let parts = remote_subfolder(
            self.backend,
            self.subfolder.as_deref(),
            &delivery.placeholders,
        )?;
        let files = remote_file_names(&delivery.documents)
            .into_iter()
            .zip(delivery.documents.iter().cloned())
            .collect();
        Ok((parts, files))
    }

    fn receipt(&self, written: Written) -> Receipt {
        Receipt {
            channel: self.kind.to_string(),
            locations: written.locations,
            bytes: written.bytes,
        }
    }

    /// One attempt at a delivery: all files in place, or none.
    pub async fn upload(&self, delivery: &Delivery) -> Result<Receipt> {
        let (parts, files) = self.plan(delivery)?;
        let (_permit, mut session) = self.session().await?;

        let base = session.base(&self.base);
        let placed = match session.ensure_dir(&base, &parts).await {
            Ok(dir) => match self.claim(&session, delivery, &dir, &files) {
                Ok(()) => {
                    place_files(&mut session, self.backend, &dir, &files, self.if_exists).await
                }
                Err(err) => Err(PlaceFailure::from(err)),
            },
            Err(err) => Err(PlaceFailure::from(err)),
        };
        let written = match placed {
            Ok(written) => written,
            Err(failure) => {
                drop(session);
                self.clean_up(failure.leftovers).await;
                return Err(failure.error);
            }
        };
        self.pool.give_back(session);

        tracing::debug!(channel = self.kind, recipient = %delivery.recipient.id, files = written.locations.len(), bytes = written.bytes, "delivered");
        Ok(self.receipt(written))
    }

    /// Refuses paths that hold another recipient's documents of this run (unless numbered
    /// versions keep them apart), named as receipts name them.
    fn claim(
        &self,
        session: &C::Session,
        delivery: &Delivery,
        dir: &str,
        files: &Files,
    ) -> Result<()> {
        if self.if_exists == IfExists::Version {
            return Ok(());
        }
        let targets: Vec<String> = files
            .iter()
            .map(|(name, _)| session.location(&join_remote(dir, name)))
            .collect();
        self.claims.claim(self.backend, delivery, &targets)
    }

    /// The receipt of an earlier attempt whose files are all on the server, complete.
    pub async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let (parts, files) = self.plan(delivery)?;
        let (_permit, mut session) = self.session().await?;

        let dir = parts
            .iter()
            .fold(session.base(&self.base), |d, p| join_remote(&d, p));
        let found = find_files(&mut session, &dir, &files).await?;
        if session.is_usable() {
            self.pool.give_back(session);
        }
        Ok(found.map(|written| self.receipt(written)))
    }

    /// Removes temporary files a broken connection left, over a new one.
    async fn clean_up(&self, leftovers: Vec<String>) {
        if leftovers.is_empty() {
            return;
        }
        match Arc::clone(&self.connector).open_session().await {
            Ok(mut session) => {
                let left = remove_all(&mut session, leftovers).await;
                if !left.is_empty() {
                    tracing::debug!(files = ?left, "temporary files of a failed delivery remain");
                }
            }
            Err(err) => {
                tracing::debug!(files = ?leftovers, error = %err, "could not reconnect to remove temporary files");
            }
        }
    }
}

impl<C: Connect> fmt::Debug for Uploads<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploads")
            .field("connector", &self.connector)
            .field("path", &self.base)
            .field("subfolder", &self.subfolder)
            .field("if_exists", &self.if_exists)
            .field("pool", &self.pool)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::OutputFormat;

    #[test]
    fn bases_are_normalised() {
        assert_eq!(
            check_remote_base("t", "/reports//x/").unwrap(),
            "/reports/x"
        );
        assert_eq!(check_remote_base("t", "/").unwrap(), "/");
        assert_eq!(check_remote_base("t", "").unwrap(), "");
        assert_eq!(check_remote_base("t", "./out/").unwrap(), "out");
        let err = check_remote_base("t", "/a\r\nDELE x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn relative_bases_go_below_home() {
        assert_eq!(absolute_remote("/home/u", "out"), "/home/u/out");
        assert_eq!(absolute_remote("/", "out"), "/out");
        assert_eq!(absolute_remote("/home/u", ""), "/home/u");
        assert_eq!(absolute_remote("/home/u", "/srv"), "/srv");
    }

    #[test]
    fn subfolders_cannot_climb() {
        let p = Placeholders::new().with("recipient.id", "../../etc");
        let parts = remote_subfolder("t", Some("{recipient.id}/x"), &p).unwrap();
        assert_eq!(parts, ["_._etc", "x"]);
        assert!(remote_subfolder("t", Some("../x"), &p).is_err());
        assert!(remote_subfolder("t", Some("/x"), &p).is_err());
    }

    #[test]
    fn repeated_names_are_numbered() {
        let doc =
            |name: &str| Arc::new(Document::new(OutputFormat::Pdf, name, bytes::Bytes::new()));
        let names = remote_file_names(&[doc("a.pdf"), doc("A.pdf"), doc("../a.pdf")]);
        assert_eq!(names, ["a.pdf", "A (2).pdf", "_a.pdf"]);
    }

    #[test]
    fn ipv6_addresses_lose_and_regain_brackets() {
        assert_eq!(bare_host(" [::1] "), "::1");
        assert_eq!(server_name("::1", 21), "[::1]:21");
        assert_eq!(
            server_name(bare_host("ftp.example.com"), 21),
            "ftp.example.com:21"
        );
    }

    #[test]
    fn only_loopback_is_local() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("ftp.example.com"));
        assert!(!is_loopback_host("10.0.0.1"));
    }
}
