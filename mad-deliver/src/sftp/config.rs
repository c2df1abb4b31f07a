//! The options of the SFTP channel.

use std::path::PathBuf;

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

use crate::folder::IfExists;

/// Where and how the SFTP channel uploads.
///
/// ```toml
/// [channels.sftp]
/// kind = "sftp"
/// host = "files.example.com"
/// username = "reports"
/// private_key = "file:/run/secrets/reports_ed25519"   # or password = "env:SFTP_PASSWORD"
/// known_hosts = "known_hosts"      # relative to the definitions file
/// path = "/srv/reports"            # must exist on the server
/// subfolder = "{recipient.id}"     # created below path when missing
/// if_exists = "overwrite"          # fail | overwrite | keep
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpOptions {
    pub host: String,
    /// 22 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub username: String,
    /// Where the password is (`env:NAME` or `file:PATH`), never the password itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// Where the private key is (OpenSSH, PEM or PuTTY format); tried before the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretRef>,
    /// Where the passphrase of an encrypted private key is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_passphrase: Option<SecretRef>,
    /// An OpenSSH `known_hosts` file listing the server's key; relative paths are resolved
    /// against the definitions' folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// Accepts a server key that `known_hosts` does not list, which lets anyone who can
    /// intercept the connection receive the reports and the password. For tests only.
    #[serde(default)]
    pub trust_unknown_host_key_dangerous: bool,
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
    /// The longest one step may take: connecting and logging in, or one request.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// How many connections to the server may be open at once; idle ones are kept for the
    /// next delivery.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_timeout_secs() -> u64 {
    60
}

fn default_max_connections() -> usize {
    4
}

impl SftpOptions {
    pub fn new(host: impl Into<String>, username: impl Into<String>) -> Self {
        SftpOptions {
            host: host.into(),
            port: None,
            username: username.into(),
            password: None,
            private_key: None,
            private_key_passphrase: None,
            known_hosts: None,
            trust_unknown_host_key_dangerous: false,
            path: String::new(),
            subfolder: None,
            if_exists: IfExists::default(),
            timeout_secs: default_timeout_secs(),
            max_connections: default_max_connections(),
        }
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_password(mut self, password: SecretRef) -> Self {
        self.password = Some(password);
        self
    }

    pub fn with_private_key(mut self, key: SecretRef) -> Self {
        self.private_key = Some(key);
        self
    }

    pub fn with_private_key_passphrase(mut self, passphrase: SecretRef) -> Self {
        self.private_key_passphrase = Some(passphrase);
        self
    }

    pub fn with_known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.known_hosts = Some(path.into());
        self
    }

    pub fn with_trust_unknown_host_key_dangerous(mut self, trust: bool) -> Self {
        self.trust_unknown_host_key_dangerous = trust;
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

    /// The port to connect to: the configured one, or 22.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(22)
    }
}
