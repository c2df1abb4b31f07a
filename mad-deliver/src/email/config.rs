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
/// bcc = ["archive@example.com"]
/// subject = "{report.name} for {recipient.name}"
/// body_format = "html"
/// body_template = "mail/report.html"   # minijinja, HTML-escaped; else the HTML document
/// logo = "mail/logo.png"               # shown where the body says <img src="cid:logo">
/// attach = ["pdf"]
/// fallback = "hub_link"                # when the message is too big for the server
/// hub_link_base = "https://reports.example.com/hub"
/// smtp = { host = "mail.example.com", username = "reports", password = "env:SMTP_PASSWORD", max_message_bytes = 10_000_000 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailOptions {
    /// The sender, as `reports@example.com` or `Reports <reports@example.com>`.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Copies to these addresses on every message, besides the recipient's own `cc`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Blind copies to these addresses on every message, besides the recipient's own `bcc`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
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
    /// A body template file (minijinja syntax); relative paths are resolved against the
    /// definitions' folder. With `body_format = "html"` it makes the HTML body and every value
    /// it prints is HTML-escaped; with `"text"` it makes the text body, unescaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_template: Option<PathBuf>,
    /// An image file (PNG, JPEG, GIF or SVG) the HTML body can show as `<img src="cid:logo">`;
    /// it is sent as an inline part only when the body refers to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<PathBuf>,
    /// The formats to attach; every document except the one used as body when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Vec<OutputFormat>>,
    /// Write messages as `.eml` files into a folder. The default when `smtp` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<PickupOptions>,
    /// Send messages to an SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpOptions>,
    /// What to do with a message larger than `smtp.max_message_bytes`, or one the server
    /// refuses as too large.
    #[serde(default)]
    pub fallback: Fallback,
    /// The address of the hub the documents are also delivered to, such as
    /// `https://reports.example.com/hub`; needed by `fallback = "hub_link"`. Each document's
    /// link is this address, a `/` and the document's hub entry id, as the hub channel's own
    /// `hub_link_base` makes them: give both the same address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_link_base: Option<String>,
}

fn default_subject() -> String {
    "{report.name}".to_string()
}

impl EmailOptions {
    pub fn new(from: impl Into<String>) -> Self {
        EmailOptions {
            from: from.into(),
            reply_to: None,
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: default_subject(),
            body_format: BodyFormat::default(),
            body: None,
            body_template: None,
            logo: None,
            attach: None,
            pickup: None,
            smtp: None,
            fallback: Fallback::default(),
            hub_link_base: None,
        }
    }

    /// Adds a copy to every message.
    pub fn with_cc(mut self, address: impl Into<String>) -> Self {
        self.cc.push(address.into());
        self
    }

    /// Adds a blind copy to every message.
    pub fn with_bcc(mut self, address: impl Into<String>) -> Self {
        self.bcc.push(address.into());
        self
    }

    pub fn with_body_template(mut self, path: impl Into<PathBuf>) -> Self {
        self.body_template = Some(path.into());
        self
    }

    pub fn with_logo(mut self, path: impl Into<PathBuf>) -> Self {
        self.logo = Some(path.into());
        self
    }

    /// Sends a link to the hub copy instead of the attachments when a message is too large.
    pub fn with_hub_link(mut self, base: impl Into<String>) -> Self {
        self.fallback = Fallback::HubLink;
        self.hub_link_base = Some(base.into());
        self
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

/// What happens to a message that is too large for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The delivery fails with a `Delivery` error naming the size and the limit.
    #[default]
    Fail,
    /// The message goes without its attachments and with a link to the copy the hub channel
    /// of the same task keeps.
    HubLink,
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
    /// The most messages sent to this server per minute, evenly spaced; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u32>,
    /// The most connections open to this server at once; they are kept and reused.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// The largest message the server takes, in bytes, as sent (attachments are base64
    /// encoded, so about 4/3 of their size). Larger messages follow `fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
}

fn default_max_connections() -> u32 {
    4
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
            max_per_minute: None,
            max_connections: default_max_connections(),
            max_message_bytes: None,
        }
    }

    pub fn with_max_per_minute(mut self, messages: u32) -> Self {
        self.max_per_minute = Some(messages);
        self
    }

    pub fn with_max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections;
        self
    }

    pub fn with_max_message_bytes(mut self, bytes: u64) -> Self {
        self.max_message_bytes = Some(bytes);
        self
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
