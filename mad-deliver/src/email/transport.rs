//! Where messages go: a pickup folder or an SMTP server.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use mad_core::{Error, ErrorKind, Receipt, Result, Secret};

use super::KIND;
use super::config::{Security, SmtpOptions};
use super::error::{self, BACKEND, SMTP};
use super::message::Composed;
use super::server::{SendFailure, Server, ServerSettings};
use crate::common::{StagedFile, sanitize_file_name};

/// How a message leaves the channel.
pub(super) enum Transport {
    Pickup(PathBuf),
    Smtp(Box<Smtp>),
}

/// A message that was not sent, and whether the server refused it as too large.
pub(super) struct Refused {
    pub error: Error,
    pub too_large: bool,
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            error,
            too_large: false,
        }
    }
}

impl Transport {
    /// Whether messages are files, whose headers are the only record of Bcc recipients.
    pub(super) fn is_pickup(&self) -> bool {
        matches!(self, Transport::Pickup(_))
    }

    /// The largest message the target takes, when known.
    pub(super) fn max_message_bytes(&self) -> Option<u64> {
        match self {
            Transport::Pickup(_) => None,
            Transport::Smtp(smtp) => smtp.max_message_bytes,
        }
    }

    /// Where the size limit comes from, for error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Transport::Pickup(dir) => format!("the pickup folder {}", dir.display()),
            Transport::Smtp(smtp) => smtp.address.clone(),
        }
    }

    /// Sends `message`, returning where it went: the file's path or the message id.
    pub(super) async fn send(&self, message: &Composed) -> Result<String, Refused> {
        match self {
            Transport::Pickup(dir) => Ok(write_pickup(dir.clone(), message).await?),
            Transport::Smtp(smtp) => smtp.send(message).await,
        }
    }

    /// The receipt of a message an earlier attempt left complete in the pickup folder;
    /// `None` when it is not there (or not complete). An SMTP server cannot be asked.
    pub(super) async fn confirm(&self, id: &str) -> Result<Option<Receipt>> {
        let Transport::Pickup(dir) = self else {
            return Err(Error::unsupported(
                SMTP,
                "confirming an interrupted delivery (an SMTP server cannot be asked whether a \
                 message arrived)",
            ));
        };
        let target = pickup_path(dir, id);
        let id = id.to_string();
        tokio::task::spawn_blocking(move || completed_pickup(&target, &id))
            .await
            .map_err(|e| {
                Error::internal(format!("the pickup check stopped: {e}")).with_backend(BACKEND)
            })?
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

// ---- pickup ---------------------------------------------------------------------------------

/// The file of message `id`: its name comes from the id, so an interrupted attempt's file
/// can be found again.
fn pickup_path(dir: &Path, id: &str) -> PathBuf {
    let stem: String = id
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .collect();
    dir.join(sanitize_file_name(&format!("{stem}.eml")))
}

async fn write_pickup(dir: PathBuf, message: &Composed) -> Result<String> {
    let bytes = message.bytes.clone();
    let id = message.id.clone();
    tokio::task::spawn_blocking(move || write_pickup_file(&dir, &id, &bytes))
        .await
        .map_err(|e| {
            Error::internal(format!("the pickup writer stopped: {e}")).with_backend(BACKEND)
        })?
}

/// Writes the message unless a complete copy of it is there already (a repeated delivery
/// never makes a second message); a damaged copy is replaced in one step.
fn write_pickup_file(dir: &Path, id: &str, bytes: &[u8]) -> Result<String> {
    let failed =
        |what: &str, e| Error::io(format!("{what} {}", dir.display()), e).with_backend(BACKEND);
    std::fs::create_dir_all(dir).map_err(|e| failed("creating the pickup folder", e))?;

    let target = pickup_path(dir, id);
    if completed_pickup(&target, id)?.is_some() {
        tracing::debug!(path = %target.display(), "message already in the pickup folder");
        return Ok(target.display().to_string());
    }
    let mut staged =
        StagedFile::write(dir, bytes).map_err(|e| failed("writing a message into", e))?;
    staged
        .replace(&target)
        .map_err(|e| failed("placing a message into", e))?;
    Ok(target.display().to_string())
}

/// The receipt of the pickup file at `path` when it holds message `id` complete: its
/// `Message-ID` header is `id` and, for a multipart message, its closing boundary is there.
fn completed_pickup(path: &Path, id: &str) -> Result<Option<Receipt>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                Error::io(format!("reading the pickup file {}", path.display()), e)
                    .with_backend(BACKEND),
            );
        }
    };
    if !is_complete_message(&bytes, id) {
        tracing::debug!(path = %path.display(), "incomplete message in the pickup folder");
        return Ok(None);
    }
    Ok(Some(Receipt {
        channel: KIND.to_string(),
        locations: vec![path.display().to_string()],
        bytes: bytes.len() as u64,
    }))
}

fn is_complete_message(bytes: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let head = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    };
    if header("Message-ID") != Some(id) {
        return false;
    }
    match header("Content-Type").and_then(boundary_of) {
        Some(boundary) => body.trim_end().ends_with(&format!("--{boundary}--")),
        None => true,
    }
}

fn boundary_of(content_type: &str) -> Option<&str> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    let at = content_type.to_ascii_lowercase().find("boundary=")?;
    let value = &content_type[at + "boundary=".len()..];
    let value = value.split(';').next()?.trim();
    Some(value.trim_matches('"'))
}

// ---- SMTP -----------------------------------------------------------------------------------

/// An SMTP server to send through; its connections and pace are shared with every channel
/// using the same server settings.
pub(super) struct Smtp {
    address: String,
    username: Option<String>,
    password: Option<Secret>,
    limit: Duration,
    max_per_minute: Option<u32>,
    max_connections: u32,
    max_message_bytes: Option<u64>,
    server: Arc<Server>,
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
        if options.max_connections == 0 {
            return Err(invalid("smtp.max_connections must be at least 1"));
        }
        if options.max_per_minute == Some(0) {
            return Err(invalid(
                "smtp.max_per_minute = 0 would never send; remove it for no limit",
            ));
        }
        if options.max_message_bytes == Some(0) {
            return Err(invalid("smtp.max_message_bytes must be at least 1"));
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
        let (credentials, password) = credentials(options)?;

        let settings = ServerSettings {
            host: host.to_string(),
            port,
            tls: tls(options, host)?,
            credentials,
            timeout: limit,
            max_connections: options.max_connections,
            max_per_minute: options.max_per_minute,
        };
        Ok(Smtp {
            address: format!("{host}:{port}"),
            username: options.username.clone(),
            password,
            limit,
            max_per_minute: options.max_per_minute,
            max_connections: options.max_connections,
            max_message_bytes: options.max_message_bytes,
            server: Server::shared(server_key(options), settings),
        })
    }

    async fn send(&self, message: &Composed) -> Result<String, Refused> {
        match self.server.send(&message.envelope, &message.bytes).await {
            Ok(()) => Ok(message.id.clone()),
            Err(SendFailure::Smtp(err)) => Err(Refused {
                too_large: error::is_too_large(&err),
                error: error::smtp(err, &self.address, self.password.as_ref()),
            }),
            Err(SendFailure::TimedOut) => Err(error::timed_out(&self.address, self.limit).into()),
            Err(SendFailure::Unsure(err)) => {
                let error = match err {
                    Some(err) => error::smtp(err, &self.address, self.password.as_ref()),
                    None => error::timed_out(&self.address, self.limit),
                };
                Err(error.maybe_delivered().into())
            }
        }
    }
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.limit)
            .field("max_per_minute", &self.max_per_minute)
            .field("max_connections", &self.max_connections)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

/// Everything that makes two channels' servers the same one, except the password (compared
/// apart, and never part of a key).
fn server_key(options: &SmtpOptions) -> String {
    let mut options = options.clone();
    options.max_message_bytes = None;
    options.host = options.host.trim().to_ascii_lowercase();
    options.port = Some(options.effective_port());
    serde_json::to_string(&options).unwrap_or_default()
}

fn credentials(options: &SmtpOptions) -> Result<(Option<Credentials>, Option<Secret>)> {
    match (&options.username, &options.password) {
        (Some(user), Some(secret)) => {
            let password = secret.resolve().map_err(|e| {
                e.with_backend(SMTP)
                    .context(format!("reading the password of {user}"))
            })?;
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            Ok((Some(credentials), Some(password)))
        }
        (None, None) => Ok((None, None)),
        (Some(_), None) => Err(invalid(
            "smtp.username is set but smtp.password is not; set password = \"env:NAME\" or \"file:PATH\"",
        )),
        (None, Some(_)) => Err(invalid("smtp.password is set but smtp.username is not")),
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
    fn pickup_names_come_from_the_message_id() {
        let dir = Path::new("/out");
        assert_eq!(
            pickup_path(dir, "<mad.0a1b@example.com>"),
            dir.join("mad.0a1b_example.com.eml")
        );
        assert_eq!(pickup_path(dir, "<../x/y>"), dir.join("_x_y.eml"));
    }

    #[test]
    fn only_complete_messages_count() {
        let id = "<mad.1@example.com>";
        let single = format!("Message-ID: {id}\r\nSubject: x\r\n\r\nbody\r\n");
        assert!(is_complete_message(single.as_bytes(), id));
        assert!(!is_complete_message(
            single.as_bytes(),
            "<other@example.com>"
        ));
        assert!(!is_complete_message(b"Message-ID: <mad.1@example.com>", id));

        let multi = format!(
            "Message-ID: {id}\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"
        );
        assert!(is_complete_message(multi.as_bytes(), id));
        let cut = &multi.as_bytes()[..multi.len() - 8];
        assert!(!is_complete_message(cut, id));
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
