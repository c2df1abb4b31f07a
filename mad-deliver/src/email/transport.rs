//! Where messages go: a pickup folder or an SMTP server.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mad_core::{Error, ErrorKind, Result, Secret};

use super::config::{Security, SmtpOptions};
use super::error::{self, BACKEND, SMTP};
use crate::common::{StagedFile, unique_token};

/// How a message leaves the channel.
pub(super) enum Transport {
    Pickup(PathBuf),
    Smtp(Box<Smtp>),
}

impl Transport {
    /// Whether messages are files, whose headers are the only record of Bcc recipients.
    pub(super) fn is_pickup(&self) -> bool {
        matches!(self, Transport::Pickup(_))
    }

    /// Sends `message`, returning where it went: the file's path or the message id.
    pub(super) async fn send(&self, message: &Message, bytes: Vec<u8>) -> Result<String> {
        match self {
            Transport::Pickup(dir) => write_pickup(dir.clone(), bytes).await,
            Transport::Smtp(smtp) => smtp.send(message, &bytes).await,
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Pickup(dir) => f.debug_tuple("Pickup").field(dir).finish(),
            Transport::Smtp(smtp) => smtp.fmt(f),
        }
    }
}

async fn write_pickup(dir: PathBuf, bytes: Vec<u8>) -> Result<String> {
    tokio::task::spawn_blocking(move || write_pickup_file(&dir, &bytes))
        .await
        .map_err(|e| {
            Error::internal(format!("the pickup writer stopped: {e}")).with_backend(BACKEND)
        })?
}

fn write_pickup_file(dir: &Path, bytes: &[u8]) -> Result<String> {
    let failed =
        |what: &str, e| Error::io(format!("{what} {}", dir.display()), e).with_backend(BACKEND);
    std::fs::create_dir_all(dir).map_err(|e| failed("creating the pickup folder", e))?;

    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let target = dir.join(format!("{millis:013}-{}.eml", unique_token()));
    let mut staged =
        StagedFile::write(dir, bytes).map_err(|e| failed("writing a message into", e))?;
    staged
        .place_new(&target)
        .map_err(|e| failed("placing a message into", e))?;
    Ok(target.display().to_string())
}

/// An SMTP server and the pool of connections to it, kept across deliveries.
pub(super) struct Smtp {
    server: String,
    username: Option<String>,
    password: Option<Secret>,
    limit: Duration,
    builder: AsyncSmtpTransportBuilder,
    pool: Mutex<Option<Arc<Pool>>>,
}

impl Smtp {
    /// Checks the options, reads the password and the extra root certificate; connects only
    /// at the first delivery.
    pub(super) fn new(options: &SmtpOptions) -> Result<Self> {
        let host = options.host.trim();
        if host.is_empty() {
            return Err(invalid(
                "smtp needs a host: set smtp.host to the mail server's name",
            ));
        }
        if options.timeout_secs == 0 {
            return Err(invalid("smtp.timeout_secs must be at least 1"));
        }
        if options.security == Security::None && !is_local(host) && !options.allow_insecure_remote {
            return Err(invalid(format!(
                "security = \"none\" would send the password and the reports unencrypted to \
                 {host}; use \"starttls\" or \"tls\", or set allow_insecure_remote = true if the \
                 network is trusted"
            )));
        }
        let port = options.effective_port();
        let limit = Duration::from_secs(options.timeout_secs);

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls(options, host)?)
            .timeout(Some(limit))
            .pool_config(PoolConfig::new());
        let password = match (&options.username, &options.password) {
            (Some(user), Some(secret)) => {
                let password = secret.resolve().map_err(|e| {
                    e.with_backend(SMTP)
                        .context(format!("reading the password of {user}"))
                })?;
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose().to_string(),
                ));
                Some(password)
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "smtp.username is set but smtp.password is not; set password = \"env:NAME\" or \"file:PATH\"",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid("smtp.password is set but smtp.username is not"));
            }
        };

        Ok(Smtp {
            server: format!("{host}:{port}"),
            username: options.username.clone(),
            password,
            limit,
            builder,
            pool: Mutex::new(None),
        })
    }

    async fn send(&self, message: &Message, bytes: &[u8]) -> Result<String> {
        let pool = self.pool();
        let sent = tokio::time::timeout(
            self.limit,
            pool.transport().send_raw(message.envelope(), bytes),
        )
        .await;

        match sent {
            Ok(Ok(_)) => Ok(message_id(message)),
            Ok(Err(err)) => {
                if err.is_timeout() {
                    self.discard(&pool);
                }
                Err(error::smtp(err, &self.server, self.password.as_ref()))
            }
            Err(_) => {
                // A connection cut off mid-conversation must not be reused.
                self.discard(&pool);
                Err(error::timed_out(&self.server, self.limit))
            }
        }
    }

    /// The current pool, made on first use (inside the runtime, which lettre's pool needs).
    fn pool(&self) -> Arc<Pool> {
        let mut slot = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| Arc::new(Pool::new(self.builder.clone().build())))
            .clone()
    }

    fn discard(&self, pool: &Arc<Pool>) {
        let mut slot = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, pool))
        {
            *slot = None;
        }
    }
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.limit)
            .finish_non_exhaustive()
    }
}

/// lettre's pooled transport, with the runtime it was made in: dropping the pool spawns a
/// task, which needs a runtime even when the channel is dropped outside one.
struct Pool {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    runtime: tokio::runtime::Handle,
}

impl Pool {
    fn new(transport: AsyncSmtpTransport<Tokio1Executor>) -> Self {
        Pool {
            transport: Some(transport),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.as_ref().expect("present until dropped")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let transport = self.transport.take();
        if tokio::runtime::Handle::try_current().is_err() {
            let _inside = self.runtime.enter();
            drop(transport);
        }
    }
}

fn tls(options: &SmtpOptions, host: &str) -> Result<Tls> {
    if options.security == Security::None {
        if options.ca_file.is_some() {
            return Err(invalid(
                "smtp.ca_file is set but security is \"none\", so no certificate is checked; remove ca_file or use \"starttls\" or \"tls\"",
            ));
        }
        return Ok(Tls::None);
    }

    let mut parameters = TlsParameters::builder(host.to_string());
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::io(format!("reading smtp.ca_file {}", path.display()), e).with_backend(SMTP)
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| {
            invalid(format!(
                "smtp.ca_file {} is not a PEM certificate ({e})",
                path.display()
            ))
        })?;
        parameters = parameters.add_root_certificate(certificate);
    }
    let parameters = parameters
        .build()
        .map_err(|e| invalid(format!("preparing TLS for {host}: {e}")))?;

    Ok(match options.security {
        Security::Starttls => Tls::Required(parameters),
        Security::Tls => Tls::Wrapper(parameters),
        Security::None => Tls::None,
    })
}

fn is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn message_id(message: &Message) -> String {
    message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or_default()
        .to_string()
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidConfig, message).with_backend(SMTP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_local() {
        assert!(is_local("localhost"));
        assert!(is_local("127.0.0.1"));
        assert!(is_local("[::1]"));
        assert!(!is_local("mail.example.com"));
        assert!(!is_local("10.0.0.1"));
    }

    #[test]
    fn plain_text_to_a_remote_server_is_refused() {
        let options = SmtpOptions::new("mail.example.com").with_security(Security::None);
        let err = Smtp::new(&options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("allow_insecure_remote"), "{err}");
        assert!(Smtp::new(&options.with_allow_insecure_remote(true)).is_ok());
    }
}
