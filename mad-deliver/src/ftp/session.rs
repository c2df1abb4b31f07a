//! Connections to the FTP server: connecting, TLS, logging in, and the file operations the
//! shared placing code needs.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mad_core::{Error, ErrorKind, Result, Secret};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpResult, Mode};
use tokio::net::TcpStream;

use super::config::{FtpOptions, Security};
use super::error::{self, BACKEND};
use crate::common::remote::{
    Connect, RemoteFiles, Session, absolute_remote, bare_host, join_remote, server_name,
};

/// Everything needed to open a logged-in connection; made once per channel.
pub(super) struct Connector {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    tls: Option<tokio_rustls::TlsConnector>,
    limit: Duration,
}

impl Connector {
    /// Reads the password and the extra root certificate now; connects only when asked.
    pub(super) fn new(options: &FtpOptions) -> Result<Self> {
        let password = options
            .password
            .as_ref()
            .map(|secret| {
                secret.resolve().map_err(|e| {
                    e.with_backend(BACKEND)
                        .context(format!("reading the password of {}", options.username))
                })
            })
            .transpose()?;
        if password
            .as_ref()
            .is_some_and(|p| p.expose().chars().any(char::is_control))
        {
            return Err(error::invalid(
                "the FTP password holds a line break or another control character, which FTP \
                 cannot send; check the password secret",
            ));
        }
        let tls = match options.security {
            Security::ExplicitTls => Some(tls_connector(options.ca_file.as_deref())?),
            Security::None => None,
        };
        Ok(Connector {
            host: bare_host(&options.host).to_string(),
            port: options.effective_port(),
            username: options.username.clone(),
            password,
            tls,
            limit: Duration::from_secs(options.timeout_secs),
        })
    }

    pub(super) fn server(&self) -> String {
        server_name(&self.host, self.port)
    }

    /// A new connection, logged in, in binary passive mode.
    pub(super) async fn connect(self: &Arc<Self>) -> Result<FtpSession> {
        let mut state = State {
            connector: Arc::clone(self),
            broken: false,
        };
        let stream = state.step("connecting", self.open()).await?;
        let mut session = FtpSession {
            stream,
            home: String::new(),
            state,
        };

        let password = self.password.as_ref().map_or("", Secret::expose);
        let s = &mut session;
        s.state
            .step(
                "logging in",
                s.stream.login(self.username.as_str(), password),
            )
            .await?;
        s.state
            .step(
                "switching to binary transfers",
                s.stream.transfer_type(FileType::Binary),
            )
            .await?;
        s.home = s
            .state
            .step("asking for the login folder", s.stream.pwd())
            .await?;
        Ok(session)
    }

    async fn open(&self) -> FtpResult<AsyncRustlsFtpStream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(FtpError::ConnectionError)?;
        let mut stream = AsyncRustlsFtpStream::connect_with_stream(tcp).await?;
        if let Some(tls) = &self.tls {
            let connector = AsyncRustlsConnector::from(tls.clone());
            stream = stream.into_secure(connector, &self.host).await?;
        }
        stream.set_mode(Mode::Passive);
        // Data connections go to the server's own address, whatever address its PASV reply
        // names: a server cannot point mad at another host.
        stream.set_passive_nat_workaround(true);
        Ok(stream)
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server", &self.server())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.limit)
            .finish()
    }
}

/// A logged-in connection.
pub(super) struct FtpSession {
    stream: AsyncRustlsFtpStream,
    /// The folder the login started in, for relative base folders.
    home: String,
    state: State,
}

/// What a step needs besides the stream, kept apart so a step can borrow both.
struct State {
    connector: Arc<Connector>,
    /// A step was cut off or the connection failed: its replies may be out of step.
    broken: bool,
}

impl State {
    async fn step<T>(
        &mut self,
        what: &str,
        operation: impl Future<Output = FtpResult<T>>,
    ) -> Result<T> {
        let connector = &self.connector;
        match tokio::time::timeout(connector.limit, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                if matches!(err, FtpError::ConnectionError(_) | FtpError::SecureError(_)) {
                    self.broken = true;
                }
                Err(error::ftp(
                    err,
                    what,
                    &connector.server(),
                    connector.password.as_ref(),
                ))
            }
            Err(_) => {
                self.broken = true;
                Err(error::timed_out(&connector.server(), what, connector.limit))
            }
        }
    }

    /// FTP answers 550 both for a missing file and a refused one; where the question is
    /// whether something exists, 550 means no.
    fn is_missing(err: &Error) -> bool {
        err.kind() == ErrorKind::PermissionDenied
    }
}

impl FtpSession {
    /// The configured base folder as an absolute path on this server.
    pub(super) fn base(&self, base: &str) -> String {
        absolute_remote(&self.home, base)
    }

    /// Whether an idle connection still answers.
    pub(super) async fn is_alive(&mut self) -> bool {
        let s = self;
        s.state.step("checking", s.stream.noop()).await.is_ok()
    }

    /// The folder `base`/`parts`, with the folders below `base` created when missing.
    pub(super) async fn ensure_dir(&mut self, base: &str, parts: &[String]) -> Result<String> {
        let target = parts
            .iter()
            .fold(base.to_string(), |d, p| join_remote(&d, p));
        if self.change_dir(&target).await? {
            return Ok(target);
        }
        if !self.change_dir(base).await? {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{}: the folder {base} does not exist on the server; create it, or correct \
                     path",
                    self.state.connector.server()
                ),
            )
            .with_backend(BACKEND));
        }

        let mut dir = base.to_string();
        for part in parts {
            dir = join_remote(&dir, part);
            let what = format!("creating the folder {dir}");
            let s = &mut *self;
            let created = s.state.step(&what, s.stream.mkdir(dir.as_str())).await;
            if let Err(err) = created
                && !self.change_dir(&dir).await?
            {
                return Err(err);
            }
        }
        Ok(dir)
    }

    /// Whether `dir` exists (and is a folder the user may enter).
    async fn change_dir(&mut self, dir: &str) -> Result<bool> {
        let what = format!("opening the folder {dir}");
        let s = self;
        match s.state.step(&what, s.stream.cwd(dir)).await {
            Ok(()) => Ok(true),
            Err(err) if State::is_missing(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

#[async_trait]
impl RemoteFiles for FtpSession {
    async fn file_size(&mut self, path: &str) -> Result<Option<u64>> {
        let what = format!("asking for the size of {path}");
        let s = self;
        match s.state.step(&what, s.stream.size(path)).await {
            Ok(size) => Ok(Some(size as u64)),
            Err(err) if State::is_missing(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn upload(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let what = format!("uploading {path}");
        let s = self;
        let mut reader = bytes;
        s.state
            .step(&what, s.stream.put_file(path, &mut reader))
            .await
            .map(|_| ())
    }

    async fn rename(&mut self, from: &str, to: &str, replace: bool) -> Result<()> {
        // RNTO replaces an existing file on most servers, so ask first.
        if !replace && self.file_size(to).await?.is_some() {
            return Err(
                Error::new(ErrorKind::AlreadyExists, format!("{to} already exists"))
                    .with_backend(BACKEND),
            );
        }
        let what = format!("renaming {from} to {to}");
        let s = self;
        s.state.step(&what, s.stream.rename(from, to)).await
    }

    async fn remove(&mut self, path: &str) -> Result<()> {
        let what = format!("removing {path}");
        let s = self;
        match s.state.step(&what, s.stream.rm(path)).await {
            Err(err) if State::is_missing(&err) => Err(Error::new(
                ErrorKind::NotFound,
                format!("{path} is not there"),
            )
            .with_backend(BACKEND)),
            other => other,
        }
    }

    fn is_usable(&self) -> bool {
        !self.state.broken
    }

    fn location(&self, path: &str) -> String {
        format!("ftp://{}{path}", self.state.connector.server())
    }
}

impl fmt::Debug for FtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpSession")
            .field("server", &self.state.connector.server())
            .field("home", &self.home)
            .field("broken", &self.state.broken)
            .finish()
    }
}

/// TLS with the public roots, plus the certificates of `ca_file` when given.
fn tls_connector(ca_file: Option<&Path>) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::io(format!("reading ca_file {}", path.display()), e).with_backend(BACKEND)
        })?;
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                error::invalid(format!(
                    "ca_file {} is not a PEM certificate ({e})",
                    path.display()
                ))
            })?;
        if certificates.is_empty() {
            return Err(error::invalid(format!(
                "ca_file {} holds no PEM certificate",
                path.display()
            )));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                error::invalid(format!(
                    "ca_file {} holds an unusable certificate ({e})",
                    path.display()
                ))
            })?;
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("preparing TLS: {e}")).with_backend(BACKEND))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[async_trait]
impl Connect for Connector {
    type Session = FtpSession;

    async fn open_session(self: Arc<Self>) -> Result<FtpSession> {
        self.connect().await
    }

    fn server(&self) -> String {
        Connector::server(self)
    }
}

#[async_trait]
impl Session for FtpSession {
    fn base(&self, base: &str) -> String {
        FtpSession::base(self, base)
    }

    async fn is_alive(&mut self) -> bool {
        FtpSession::is_alive(self).await
    }

    async fn ensure_dir(&mut self, base: &str, parts: &[String]) -> Result<String> {
        FtpSession::ensure_dir(self, base, parts).await
    }
}
