//! The options of the e-mail channel.

use std::path::PathBuf;

use mad_core::{OutputFormat, SecretRef};
use serde::{Deserialize, Serialize};

/// What the e-mail channel sends and how.
///
/// ```toml
/// [channels.mail]
/// kind = "email"
/// from = "Reports <reports@example.com>"
/// subject = "{report.name} for {recipient.name}"
/// body_format = "html"            # the HTML document becomes the message body
/// attach = ["pdf"]
/// smtp = { host = "mail.example.com", security = "starttls", username = "reports", password = "env:SMTP_PASSWORD" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailOptions {
    /// The sender, as `reports@example.com` or `Reports <reports@example.com>`.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The subject, with placeholders.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Whether the body is text (from `body`) or the delivery's HTML document.
    #[serde(default)]
    pub body_format: BodyFormat,
    /// The text body, with placeholders. With `body_format = "html"` it becomes the plain-text
    /// alternative of the HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The formats to attach; every document except the one used as body when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Vec<OutputFormat>>,
    /// Write messages as `.eml` files into a folder. The default when `smtp` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<PickupOptions>,
    /// Send messages to an SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpOptions>,
}

fn default_subject() -> String {
    "{report.name}".to_string()
}

impl EmailOptions {
    pub fn new(from: impl Into<String>) -> Self {
        EmailOptions {
            from: from.into(),
            reply_to: None,
            subject: default_subject(),
            body_format: BodyFormat::default(),
            body: None,
            attach: None,
            pickup: None,
            smtp: None,
        }
    }

    pub fn with_reply_to(mut self, address: impl Into<String>) -> Self {
        self.reply_to = Some(address.into());
        self
    }

    pub fn with_subject(mut self, template: impl Into<String>) -> Self {
        self.subject = template.into();
        self
    }

    pub fn with_body_format(mut self, format: BodyFormat) -> Self {
        self.body_format = format;
        self
    }

    pub fn with_body(mut self, template: impl Into<String>) -> Self {
        self.body = Some(template.into());
        self
    }

    pub fn with_attach(mut self, formats: Vec<OutputFormat>) -> Self {
        self.attach = Some(formats);
        self
    }

    pub fn with_pickup(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pickup = Some(PickupOptions { dir: dir.into() });
        self
    }

    pub fn with_smtp(mut self, smtp: SmtpOptions) -> Self {
        self.smtp = Some(smtp);
        self
    }
}

/// What the body of a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// Plain text from the `body` template.
    #[default]
    Text,
    /// The delivery's HTML document, shown inline.
    Html,
}

/// Messages written as files for a mail server or another program to pick up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickupOptions {
    /// The folder for the `.eml` files (created when missing); relative paths are resolved
    /// against the definitions' folder.
    #[serde(default = "default_pickup_dir")]
    pub dir: PathBuf,
}

impl Default for PickupOptions {
    fn default() -> Self {
        PickupOptions {
            dir: default_pickup_dir(),
        }
    }
}

fn default_pickup_dir() -> PathBuf {
    PathBuf::from("outbox")
}

/// An SMTP server to send through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpOptions {
    pub host: String,
    /// 587 for `starttls`, 465 for `tls`, 25 for `none` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Where the password is (`env:NAME` or `file:PATH`), never the password itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The longest one message may take, from connecting to the server's last answer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// A PEM file with an extra root certificate to trust (a private CA), besides the
    /// public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Allows `security = "none"` for a server that is not on this machine, which sends
    /// the password and the reports unencrypted over the network.
    #[serde(default)]
    pub allow_insecure_remote: bool,
}

fn default_timeout_secs() -> u64 {
    60
}

impl SmtpOptions {
    pub fn new(host: impl Into<String>) -> Self {
        SmtpOptions {
            host: host.into(),
            port: None,
            security: Security::default(),
            username: None,
            password: None,
            timeout_secs: default_timeout_secs(),
            ca_file: None,
            allow_insecure_remote: false,
        }
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    pub fn with_credentials(mut self, username: impl Into<String>, password: SecretRef) -> Self {
        self.username = Some(username.into());
        self.password = Some(password);
        self
    }

    pub fn with_timeout_secs(mut self, seconds: u64) -> Self {
        self.timeout_secs = seconds;
        self
    }

    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    pub fn with_allow_insecure_remote(mut self, allow: bool) -> Self {
        self.allow_insecure_remote = allow;
        self
    }

    /// The port to connect to: the configured one, or the usual one for `security`.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        })
    }
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Connect in plain text, then require `STARTTLS` before anything else is sent.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption; only for a server on this machine unless `allow_insecure_remote`.
    None,
}
