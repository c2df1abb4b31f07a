//! The SFTP channel: each document becomes a file on an SSH server.
//!
//! The server's host key must be listed in a `known_hosts` file (or trusted by an explicitly
//! dangerous switch); an unknown or changed key stops the connection before any secret or
//! report is sent. Logging in uses a private key, a password, or both (the key first). Files are
//! uploaded under a temporary name, their size checked, and renamed into place; connections are
//! kept between deliveries. SSH and SFTP are pure Rust (russh and russh-sftp).

mod config;
mod error;
mod host_key;
mod session;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Receipt, Registry, Result, parse_options,
};

use crate::common::Claims;
use crate::common::check_path_template;
use crate::common::remote::{ConnectionPool, Uploads, check_if_exists, check_remote_base};
pub use config::SftpOptions;
use error::{BACKEND, invalid};
use host_key::HostKeyPolicy;
use session::Connector;

/// The kind name definitions use for this channel.
pub const KIND: &str = "sftp";

/// Registers the `sftp` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(SftpChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to an SSH server over SFTP.
pub struct SftpChannel {
    options: SftpOptions,
    uploads: Uploads<Connector>,
}

impl SftpChannel {
    /// A channel uploading with `options`. The secrets, the private key and the `known_hosts`
    /// file are checked now; the server is first contacted at the first delivery.
    pub fn new(options: SftpOptions) -> Result<Self> {
        check(&options)?;
        let base = check_remote_base(BACKEND, &options.path)?;
        let connector = Arc::new(Connector::new(&options, host_key_policy(&options)?)?);
        let uploads = Uploads {
            kind: KIND,
            backend: BACKEND,
            base,
            subfolder: options.subfolder.clone(),
            if_exists: options.if_exists,
            connector,
            pool: ConnectionPool::new(options.max_connections),
            // Servers on Windows take names differing only in case for one file.
            claims: Claims::new(true),
        };
        Ok(SftpChannel { options, uploads })
    }

    /// A channel from a definition's options, `known_hosts` resolved against `ctx`.
    pub fn from_options(options: &serde_json::Value, ctx: &BuildContext) -> Result<Self> {
        let mut options: SftpOptions = parse_options(KIND, options)?;
        if let Some(known_hosts) = options.known_hosts.as_mut() {
            *known_hosts = ctx.resolve(known_hosts);
        }
        SftpChannel::new(options)
    }

    pub fn options(&self) -> &SftpOptions {
        &self.options
    }
}

fn check(options: &SftpOptions) -> Result<()> {
    if options.host.trim().is_empty() {
        return Err(invalid(
            "the SFTP channel needs a host: set host to the server's name",
        ));
    }
    if options.username.is_empty() {
        return Err(invalid("the SFTP channel needs a username"));
    }
    if options.timeout_secs == 0 {
        return Err(invalid("timeout_secs must be at least 1"));
    }
    if options.max_connections == 0 {
        return Err(invalid("max_connections must be at least 1"));
    }
    if options.private_key_passphrase.is_some() && options.private_key.is_none() {
        return Err(invalid(
            "private_key_passphrase is set but private_key is not",
        ));
    }
    check_if_exists(BACKEND, options.if_exists)?;
    if let Some(template) = &options.subfolder {
        check_path_template(BACKEND, "subfolder pattern", template)?;
    }
    Ok(())
}

fn host_key_policy(options: &SftpOptions) -> Result<HostKeyPolicy> {
    match (
        &options.known_hosts,
        options.trust_unknown_host_key_dangerous,
    ) {
        (Some(_), true) => Err(invalid(
            "known_hosts and trust_unknown_host_key_dangerous are both set; keep known_hosts \
             and remove the dangerous switch",
        )),
        (Some(path), false) => {
            if !path.is_file() {
                return Err(mad_core::Error::new(
                    mad_core::ErrorKind::NotFound,
                    format!(
                        "the known_hosts file {} does not exist; create it with the server's \
                         key (ssh-keyscan prints it; check it with the server's administrator)",
                        path.display()
                    ),
                )
                .with_backend(BACKEND));
            }
            Ok(HostKeyPolicy::KnownHosts(path.clone()))
        }
        (None, true) => {
            tracing::warn!(host = %options.host, "the SFTP server's host key is not checked");
            Ok(HostKeyPolicy::TrustAnything)
        }
        (None, false) => Ok(HostKeyPolicy::RefuseUnknown),
    }
}

impl fmt::Debug for SftpChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpChannel")
            .field("uploads", &self.uploads)
            .finish()
    }
}

#[async_trait]
impl Channel for SftpChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            attachments: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.uploads.upload(delivery).await.map_err(|e| {
            e.context(format!(
                "uploading report '{}' for recipient '{}'",
                delivery.report.name, delivery.recipient.id
            ))
        })
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.uploads
            .claims
            .delivered_earlier(run_id, recipient, report, receipt);
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        self.uploads.confirm(delivery).await
    }
}
