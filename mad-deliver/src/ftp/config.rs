//! The options of the FTP channel.

use std::path::PathBuf;

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::folder::IfExists;

/// Where and how the FTP channel uploads.
///
/// ```toml
/// [channels.ftp]
/// kind = "ftp"
/// host = "ftp.example.com"
/// security = "explicit_tls"        # explicit_tls | none
/// username = "reports"
/// password = "env:FTP_PASSWORD"
/// path = "/reports"                # must exist on the server
/// subfolder = "{recipient.id}"     # created below path when missing
/// if_exists = "overwrite"          # fail | overwrite | keep
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpOptions {
    pub host: String,
    /// 21 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: String,
    /// Where the password is (`env:NAME` or `file:PATH`), never the password itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The folder on the server documents go to: absolute, or relative to the folder the
    /// login starts in (the default). It must exist.
    #[serde(default)]
    pub path: String,
    /// A folder below `path`, with placeholders such as `{recipient.id}`; created when
    /// missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subfolder: Option<String>,
    /// What to do when a file of the same name is already there (`version` is not supported).
    #[serde(default)]
    pub if_exists: IfExists,
    /// The longest one step may take: connecting and logging in, one command, or the upload
    /// of one file.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// How many connections to the server may be open at once; idle ones are kept for the
    /// next delivery.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A PEM file with an extra root certificate to trust (a private CA), besides the public
    /// roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Allows `security = "none"` for a server that is not on this machine, which sends the
    /// password and the reports unencrypted over the network.
    #[serde(default)]
    pub allow_insecure_remote: bool,
}

fn default_timeout_secs() -> u64 {
    60
}

fn default_max_connections() -> usize {
    4
}

impl FtpOptions {
    pub fn new(host: impl Into<String>, username: impl Into<String>) -> Self {
        FtpOptions {
            host: host.into(),
            port: None,
            security: Security::default(),
            username: username.into(),
            password: None,
            path: String::new(),
            subfolder: None,
            if_exists: IfExists::default(),
            timeout_secs: default_timeout_secs(),
            max_connections: default_max_connections(),
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

    pub fn with_password(mut self, password: SecretRef) -> Self {
        self.password = Some(password);
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    pub fn with_subfolder(mut self, template: impl Into<String>) -> Self {
        self.subfolder = Some(template.into());
        self
    }

    pub fn with_if_exists(mut self, policy: IfExists) -> Self {
        self.if_exists = policy;
        self
    }

    pub fn with_timeout_secs(mut self, seconds: u64) -> Self {
        self.timeout_secs = seconds;
        self
    }

    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
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

    /// The port to connect to: the configured one, or 21.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(21)
    }
}

/// How the connection to the FTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Connect in plain text, then require `AUTH TLS` before logging in; commands and files
    /// are encrypted (FTPS, explicit mode).
    #[default]
    ExplicitTls,
    /// No encryption; only for a server on this machine unless `allow_insecure_remote`.
    None,
}
