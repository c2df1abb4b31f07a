//! The FTP channel: each document becomes a file on an FTP server, over explicit TLS (FTPS) or,
//! on this machine only unless allowed, in plain text.
//!
//! Files are uploaded in binary passive mode under a temporary name, their size checked, and
//! renamed into place, so nobody sees half a report under its final name. Connections are kept
//! between deliveries. suppaftp is built with its `no-log` feature: without it, it logs every
//! command at trace level, the password included.

mod config;
mod error;
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
    is_loopback_host, join_remote, place_files, remote_file_names, remote_subfolder, remove_all,
};
pub use config::{FtpOptions, Security};
use error::{BACKEND, invalid};
use session::{Connector, FtpSession};

/// The kind name definitions use for this channel.
pub const KIND: &str = "ftp";

/// Registers the `ftp` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(FtpChannel::from_options(options, ctx)?))
    });
}

/// Uploads documents to an FTP server.
pub struct FtpChannel {
    options: FtpOptions,
    base: String,
    connector: Arc<Connector>,
    pool: ConnectionPool<FtpSession>,
}

impl FtpChannel {
    /// A channel uploading with `options`. The password and `ca_file` are read now; the server
    /// is first contacted at the first delivery.
    pub fn new(options: FtpOptions) -> Result<Self> {
        check(&options)?;
        let base = check_remote_base(BACKEND, &options.path)?;
        let connector = Arc::new(Connector::new(&options)?);
        Ok(FtpChannel {
            pool: ConnectionPool::new(options.max_connections),
            options,
            base,
            connector,
        })
    }

    /// A channel from a definition's options, `ca_file` resolved against `ctx`.
    pub fn from_options(options: &serde_json::Value, ctx: &BuildContext) -> Result<Self> {
        let mut options: FtpOptions = parse_options(KIND, options)?;
        if let Some(ca_file) = options.ca_file.as_mut() {
            *ca_file = ctx.resolve(ca_file);
        }
        FtpChannel::new(options)
    }

    pub fn options(&self) -> &FtpOptions {
        &self.options
    }

    /// A pooled connection that still answers, or a new one.
    async fn session(&self) -> Result<(tokio::sync::OwnedSemaphorePermit, FtpSession)> {
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

        tracing::debug!(recipient = %delivery.recipient.id, files = written.locations.len(), bytes = written.bytes, "delivered over FTP");
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

fn check(options: &FtpOptions) -> Result<()> {
    let host = options.host.trim();
    if host.is_empty() {
        return Err(invalid(
            "the FTP channel needs a host: set host to the server's name",
        ));
    }
    if options.username.is_empty() || options.username.chars().any(char::is_control) {
        return Err(invalid(
            "the FTP channel needs a username without line breaks or other control characters",
        ));
    }
    if options.timeout_secs == 0 {
        return Err(invalid("timeout_secs must be at least 1"));
    }
    if options.max_connections == 0 {
        return Err(invalid("max_connections must be at least 1"));
    }
    if options.security == Security::None {
        if !is_loopback_host(host) && !options.allow_insecure_remote {
            return Err(invalid(format!(
                "security = \"none\" would send the password and the reports unencrypted to \
                 {host}; use \"explicit_tls\", or set allow_insecure_remote = true if the network \
                 is trusted"
            )));
        }
        if options.ca_file.is_some() {
            return Err(invalid(
                "ca_file is set but security is \"none\", so no certificate is checked; remove \
                 ca_file or use \"explicit_tls\"",
            ));
        }
    }
    check_if_exists(BACKEND, options.if_exists)?;
    if let Some(template) = &options.subfolder {
        check_path_template(BACKEND, "subfolder pattern", template)?;
    }
    Ok(())
}

impl fmt::Debug for FtpChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpChannel")
            .field("connector", &self.connector)
            .field("path", &self.base)
            .field("subfolder", &self.options.subfolder)
            .field("if_exists", &self.options.if_exists)
            .field("pool", &self.pool)
            .finish()
    }
}

#[async_trait]
impl Channel for FtpChannel {
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
