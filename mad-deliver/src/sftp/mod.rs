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
    BuildContext, Channel, ChannelCapabilities, Delivery, Document, Receipt, Registry, Result,
    parse_options,
};

use crate::common::check_path_template;
use crate::common::remote::{
    ConnectionPool, PlaceFailure, RemoteFiles, check_if_exists, check_remote_base, find_files,
    join_remote, place_files, remote_file_names, remote_subfolder, remove_all,
};
pub use config::SftpOptions;
use error::{BACKEND, invalid};
use host_key::HostKeyPolicy;
use session::{Connector, SftpSession};

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
    base: String,
    connector: Arc<Connector>,
    pool: ConnectionPool<SftpSession>,
}

impl SftpChannel {
    /// A channel uploading with `options`. The secrets, the private key and the `known_hosts`
    /// file are checked now; the server is first contacted at the first delivery.
    pub fn new(options: SftpOptions) -> Result<Self> {
        check(&options)?;
        let base = check_remote_base(BACKEND, &options.path)?;
        let connector = Arc::new(Connector::new(&options, host_key_policy(&options)?)?);
        Ok(SftpChannel {
            pool: ConnectionPool::new(options.max_connections),
            options,
            base,
            connector,
        })
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

    /// A pooled session that still answers, or a new one.
    async fn session(&self) -> Result<(tokio::sync::OwnedSemaphorePermit, SftpSession)> {
        let (permit, idle) = self.pool.checkout().await;
        if let Some(mut session) = idle {
            if session.is_alive().await {
                return Ok((permit, session));
            }
            tracing::debug!(server = %self.connector.server(), "an idle connection was closed; reconnecting");
        }
        Ok((permit, self.connector.connect().await?))
    }

    fn files(delivery: &Delivery) -> Vec<(String, Arc<Document>)> {
        remote_file_names(&delivery.documents)
            .into_iter()
            .zip(delivery.documents.iter().cloned())
            .collect()
    }

    /// One attempt at a delivery: all files in place, or none.
    async fn upload(&self, delivery: &Delivery) -> Result<Receipt> {
        let parts = remote_subfolder(
            BACKEND,
            self.options.subfolder.as_deref(),
            &delivery.placeholders,
        )?;
        let files = Self::files(delivery);
        let (_permit, mut session) = self.session().await?;

        let base = session.base(&self.base);
        let placed = match session.ensure_dir(&base, &parts).await {
            Ok(dir) => {
                place_files(&mut session, BACKEND, &dir, &files, self.options.if_exists).await
            }
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

        tracing::debug!(recipient = %delivery.recipient.id, files = written.locations.len(), bytes = written.bytes, "delivered over SFTP");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: written.locations,
            bytes: written.bytes,
        })
    }

    /// Removes temporary files a broken connection left, over a new one.
    async fn clean_up(&self, leftovers: Vec<String>) {
        if leftovers.is_empty() {
            return;
        }
        match self.connector.connect().await {
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
            .field("connector", &self.connector)
            .field("path", &self.base)
            .field("subfolder", &self.options.subfolder)
            .field("if_exists", &self.options.if_exists)
            .field("pool", &self.pool)
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
        self.upload(delivery).await.map_err(|e| {
            e.context(format!(
                "uploading report '{}' for recipient '{}'",
                delivery.report.name, delivery.recipient.id
            ))
        })
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let parts = remote_subfolder(
            BACKEND,
            self.options.subfolder.as_deref(),
            &delivery.placeholders,
        )?;
        let files = Self::files(delivery);
        let (_permit, mut session) = self.session().await?;

        let dir = parts
            .iter()
            .fold(session.base(&self.base), |d, p| join_remote(&d, p));
        let found = find_files(&mut session, &dir, &files).await?;
        if session.is_usable() {
            self.pool.give_back(session);
        }

        Ok(found.map(|written| Receipt {
            channel: KIND.to_string(),
            locations: written.locations,
            bytes: written.bytes,
        }))
    }
}
