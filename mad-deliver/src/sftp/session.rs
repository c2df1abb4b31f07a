//! Connections to the SSH server: connecting, checking its host key, logging in, opening the
//! SFTP subsystem, and the file operations the shared placing code needs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use mad_core::{Error, ErrorKind, Result, Secret};
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::net::TcpStream;

use super::config::SftpOptions;
use super::error::{self, BACKEND};
use super::host_key::HostKeyPolicy;
use crate::common::remote::{
    Connect, RemoteFiles, Session, absolute_remote, bare_host, join_remote, server_name,
};

/// Bytes per write request; every SFTP server accepts this much.
const WRITE_CHUNK: usize = 32 * 1024;

/// Write requests sent before waiting for answers.
const WRITES_IN_FLIGHT: usize = 16;

/// The extension that renames over an existing file in one step.
const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// Everything needed to open a logged-in SFTP session; made once per channel.
pub(super) struct Connector {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    key: Option<Arc<PrivateKey>>,
    host_keys: HostKeyPolicy,
    limit: Duration,
    config: Arc<client::Config>,
}

impl Connector {
    /// Reads the secrets and the private key now; connects only when asked.
    pub(super) fn new(options: &SftpOptions, host_keys: HostKeyPolicy) -> Result<Self> {
        let read = |what: &str, secret: &mad_core::SecretRef| {
            secret.resolve().map_err(|e| {
                e.with_backend(BACKEND)
                    .context(format!("reading the {what} of {}", options.username))
            })
        };
        let password = options
            .password
            .as_ref()
            .map(|s| read("password", s))
            .transpose()?;
        let passphrase = options
            .private_key_passphrase
            .as_ref()
            .map(|s| read("private key passphrase", s))
            .transpose()?;
        let key = options
            .private_key
            .as_ref()
            .map(|s| read("private key", s))
            .transpose()?
            .map(|key| decode_key(&key, passphrase.as_ref()))
            .transpose()?;
        if password.is_none() && key.is_none() {
            return Err(error::invalid(
                "the SFTP channel needs a way to log in: set password or private_key",
            ));
        }

        let limit = Duration::from_secs(options.timeout_secs);
        let config = client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(limit),
            nodelay: true,
            ..client::Config::default()
        };
        Ok(Connector {
            host: bare_host(&options.host).to_string(),
            port: options.effective_port(),
            username: options.username.clone(),
            password,
            key: key.map(Arc::new),
            host_keys,
            limit,
            config: Arc::new(config),
        })
    }

    pub(super) fn server(&self) -> String {
        server_name(&self.host, self.port)
    }

    /// A new logged-in session with the SFTP subsystem started.
    pub(super) async fn connect(self: &Arc<Self>) -> Result<SftpSession> {
        let server = self.server();
        let tcp = self
            .within(
                "connecting",
                TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await?
            .map_err(|e| error::ssh(&russh::Error::IO(e), "connecting", &server))?;
        let check = ServerCheck {
            policy: self.host_keys.clone(),
            host: self.host.clone(),
            port: self.port,
        };
        let mut handle = self
            .within(
                "exchanging keys",
                client::connect_stream(Arc::clone(&self.config), tcp, check),
            )
            .await?
            .map_err(|e| e.into_error("exchanging keys", &server))?;

        self.log_in(&mut handle).await?;
        let sftp = self.start_sftp(&handle).await?;
        let (sftp, posix_rename) = self
            .within("starting SFTP", async {
                let version = sftp.init().await?;
                let posix_rename = version
                    .extensions
                    .get(POSIX_RENAME)
                    .is_some_and(|v| v == "1");
                Ok::<_, SftpError>((sftp, posix_rename))
            })
            .await?
            .map_err(|e| error::sftp(&e, "starting SFTP", &server))?;
        let home = sftp
            .realpath(".")
            .await
            .map_err(|e| error::sftp(&e, "asking for the login folder", &server))?
            .files
            .first()
            .map(|f| f.filename.clone())
            .unwrap_or_default();

        Ok(SftpSession {
            ssh: handle,
            sftp,
            home,
            posix_rename,
            connector: Arc::clone(self),
            broken: false,
        })
    }

    async fn log_in(&self, handle: &mut Handle<ServerCheck>) -> Result<()> {
        let server = self.server();
        let failed = |e: russh::Error| error::ssh(&e, "logging in", &server);
        let mut tried = Vec::new();

        if let Some(key) = &self.key {
            let hash = self
                .within("logging in", handle.best_supported_rsa_hash())
                .await?
                .map_err(failed)?
                .flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::clone(key), hash);
            let result = self
                .within(
                    "logging in",
                    handle.authenticate_publickey(&self.username, key),
                )
                .await?
                .map_err(failed)?;
            if result.success() {
                return Ok(());
            }
            tried.push("the private key");
        }
        if let Some(password) = &self.password {
            let result = self
                .within(
                    "logging in",
                    handle.authenticate_password(&self.username, password.expose()),
                )
                .await?
                .map_err(failed)?;
            if result.success() {
                return Ok(());
            }
            tried.push("the password");
        }
        Err(error::unauthenticated(
            &server,
            &self.username,
            &tried.join(" and "),
        ))
    }

    async fn start_sftp(&self, handle: &Handle<ServerCheck>) -> Result<RawSftpSession> {
        let server = self.server();
        let what = "opening an SFTP session";
        let opened = self
            .within(what, async {
                let mut channel = handle.channel_open_session().await?;
                channel.request_subsystem(true, "sftp").await?;
                loop {
                    match channel.wait().await {
                        Some(ChannelMsg::Success) => return Ok(channel),
                        Some(ChannelMsg::Failure) | None => {
                            return Err(russh::Error::RequestDenied);
                        }
                        Some(_) => continue,
                    }
                }
            })
            .await?
            .map_err(|e| error::ssh(&e, what, &server))?;

        let config = russh_sftp::client::Config {
            request_timeout_secs: self.limit.as_secs(),
            ..russh_sftp::client::Config::default()
        };
        Ok(RawSftpSession::new_with_config(
            opened.into_stream(),
            config,
        ))
    }

    async fn within<T>(&self, what: &str, operation: impl Future<Output = T>) -> Result<T> {
        tokio::time::timeout(self.limit, operation)
            .await
            .map_err(|_| error::timed_out(&self.server(), what, self.limit))
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server", &self.server())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("private_key", &self.key.as_ref().map(|_| "***"))
            .field("host_keys", &self.host_keys)
            .field("timeout", &self.limit)
            .finish()
    }
}

fn decode_key(key: &Secret, passphrase: Option<&Secret>) -> Result<PrivateKey> {
    russh::keys::decode_secret_key(key.expose(), passphrase.map(Secret::expose)).map_err(|e| {
        let hint = if passphrase.is_some() {
            "check the key and its passphrase"
        } else {
            "check the key; an encrypted key needs private_key_passphrase"
        };
        // The key parser's message names the problem, never the key's content.
        error::invalid(format!("the private key could not be read ({e}); {hint}"))
    })
}

/// Checks the server's key during the key exchange, before anything is sent.
struct ServerCheck {
    policy: HostKeyPolicy,
    host: String,
    port: u16,
}

/// Why the SSH handshake stopped: the connection failed, or the host key was refused.
#[derive(Debug)]
enum HandshakeError {
    Ssh(russh::Error),
    HostKey(Error),
}

impl HandshakeError {
    fn into_error(self, what: &str, server: &str) -> Error {
        match self {
            HandshakeError::Ssh(e) => error::ssh(&e, what, server),
            HandshakeError::HostKey(e) => e,
        }
    }
}

impl From<russh::Error> for HandshakeError {
    fn from(err: russh::Error) -> Self {
        HandshakeError::Ssh(err)
    }
}

impl client::Handler for ServerCheck {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        server_key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let key = match server_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(certificate) => {
                PublicKey::from(certificate.public_key().clone())
            }
        };
        self.policy
            .check(&self.host, self.port, &key)
            .map(|()| true)
            .map_err(HandshakeError::HostKey)
    }
}

/// A logged-in SFTP session.
pub(super) struct SftpSession {
    /// Keeps the SSH connection open while the session is used.
    ssh: Handle<ServerCheck>,
    sftp: RawSftpSession,
    /// The folder the login started in, for relative base folders.
    home: String,
    posix_rename: bool,
    connector: Arc<Connector>,
    /// The connection failed or stopped answering.
    broken: bool,
}

impl SftpSession {
    /// The configured base folder as an absolute path on this server.
    pub(super) fn base(&self, base: &str) -> String {
        absolute_remote(&self.home, base)
    }

    /// Whether an idle session still answers.
    pub(super) async fn is_alive(&mut self) -> bool {
        let checked = self.sftp.stat(self.home.as_str()).await;
        self.check(checked, "checking").is_ok()
    }

    /// The folder `base`/`parts`, with the folders below `base` created when missing.
    pub(super) async fn ensure_dir(&mut self, base: &str, parts: &[String]) -> Result<String> {
        let target = parts
            .iter()
            .fold(base.to_string(), |d, p| join_remote(&d, p));
        if self.is_dir(&target).await? {
            return Ok(target);
        }
        if !self.is_dir(base).await? {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{}: the folder {base} does not exist on the server; create it, or correct \
                     path",
                    self.connector.server()
                ),
            )
            .with_backend(BACKEND));
        }

        let mut dir = base.to_string();
        for part in parts {
            dir = join_remote(&dir, part);
            let what = format!("creating the folder {dir}");
            let created = self.sftp.mkdir(dir.as_str(), FileAttributes::empty()).await;
            if let Err(err) = self.check(created, &what)
                && !self.is_dir(&dir).await?
            {
                return Err(err);
            }
        }
        Ok(dir)
    }

    async fn is_dir(&mut self, path: &str) -> Result<bool> {
        let what = format!("looking at {path}");
        match self.sftp.stat(path).await {
            Ok(attrs) => Ok(attrs.attrs.is_dir()),
            Err(err) if error::is_missing(&err) => Ok(false),
            Err(err) => Err(self.failed(&err, &what)),
        }
    }

    /// The outcome of one request, its failure mapped and a lost connection noted.
    fn check<T>(&mut self, result: std::result::Result<T, SftpError>, what: &str) -> Result<T> {
        result.map_err(|err| self.failed(&err, what))
    }

    fn failed(&mut self, err: &SftpError, what: &str) -> Error {
        let mapped = error::sftp(err, what, &self.connector.server());
        if mapped.kind().is_retryable() {
            self.broken = true;
        }
        mapped
    }

    async fn write_all(&self, handle: &str, bytes: &[u8]) -> std::result::Result<(), SftpError> {
        let sftp = &self.sftp;
        let writes = (0..bytes.len().div_ceil(WRITE_CHUNK)).map(move |i| {
            let start = i * WRITE_CHUNK;
            let chunk = bytes[start..bytes.len().min(start + WRITE_CHUNK)].to_vec();
            sftp.write(handle.to_string(), start as u64, chunk)
        });
        futures::stream::iter(writes)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    async fn replace(&mut self, from: &str, to: &str) -> Result<()> {
        let what = format!("moving {from} over {to}");
        if self.posix_rename {
            let mut data = Vec::with_capacity(from.len() + to.len() + 8);
            for path in [from, to] {
                data.extend_from_slice(&(path.len() as u32).to_be_bytes());
                data.extend_from_slice(path.as_bytes());
            }
            let reply = self.sftp.extended(POSIX_RENAME, data).await;
            let reply = self.check(reply, &what)?;
            return match reply {
                Packet::Status(status) if status.status_code == StatusCode::Ok => Ok(()),
                Packet::Status(status) => Err(self.failed(&SftpError::Status(status), &what)),
                _ => Err(self.failed(&SftpError::UnexpectedPacket, &what)),
            };
        }

        // Without the extension the old file goes first, leaving a moment without any.
        match self.remove(to).await {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let renamed = self.sftp.rename(from, to).await;
        self.check(renamed, &what).map(|_| ())
    }
}

#[async_trait]
impl RemoteFiles for SftpSession {
    async fn file_size(&mut self, path: &str) -> Result<Option<u64>> {
        let what = format!("looking at {path}");
        match self.sftp.stat(path).await {
            Ok(attrs) => Ok(Some(attrs.attrs.size.unwrap_or(0))),
            Err(err) if error::is_missing(&err) => Ok(None),
            Err(err) => Err(self.failed(&err, &what)),
        }
    }

    async fn upload(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let what = format!("uploading {path}");
        let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
        let opened = self.sftp.open(path, flags, FileAttributes::empty()).await;
        let handle = self.check(opened, &what)?.handle;

        let written = self.write_all(&handle, bytes).await;
        let closed = self.sftp.close(handle.as_str()).await;
        match (written, closed) {
            (Err(err), _) | (Ok(()), Err(err)) => Err(self.failed(&err, &what)),
            (Ok(()), Ok(_)) => Ok(()),
        }
    }

    async fn rename(&mut self, from: &str, to: &str, replace: bool) -> Result<()> {
        if replace {
            return self.replace(from, to).await;
        }
        let exists = || {
            Error::new(ErrorKind::AlreadyExists, format!("{to} already exists"))
                .with_backend(BACKEND)
        };
        if self.file_size(to).await?.is_some() {
            return Err(exists());
        }
        // The plain rename of SFTP refuses to replace a file, so a file created since the
        // check above is not lost.
        let what = format!("renaming {from} to {to}");
        match self.sftp.rename(from, to).await {
            Ok(_) => Ok(()),
            Err(err) => {
                let mapped = self.failed(&err, &what);
                if self.file_size(to).await?.is_some() {
                    return Err(exists());
                }
                Err(mapped)
            }
        }
    }

    async fn remove(&mut self, path: &str) -> Result<()> {
        let what = format!("removing {path}");
        let removed = self.sftp.remove(path).await;
        self.check(removed, &what).map(|_| ())
    }

    fn is_usable(&self) -> bool {
        !self.broken && !self.ssh.is_closed()
    }

    fn location(&self, path: &str) -> String {
        format!("sftp://{}{path}", self.connector.server())
    }
}

impl fmt::Debug for SftpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpSession")
            .field("server", &self.connector.server())
            .field("home", &self.home)
            .field("posix_rename", &self.posix_rename)
            .field("broken", &self.broken)
            .finish()
    }
}

#[async_trait]
impl Connect for Connector {
    type Session = SftpSession;

    async fn open_session(self: Arc<Self>) -> Result<SftpSession> {
        self.connect().await
    }

    fn server(&self) -> String {
        Connector::server(self)
    }
}

#[async_trait]
impl Session for SftpSession {
    fn base(&self, base: &str) -> String {
        SftpSession::base(self, base)
    }

    async fn is_alive(&mut self) -> bool {
        SftpSession::is_alive(self).await
    }

    async fn ensure_dir(&mut self, base: &str, parts: &[String]) -> Result<String> {
        SftpSession::ensure_dir(self, base, parts).await
    }
}
