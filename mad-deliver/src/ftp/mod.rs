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
    BuildContext, Channel, ChannelCapabilities, Delivery, Receipt, Registry, Result, parse_options,
};

use crate::common::Claims;
use crate::common::check_path_template;
use crate::common::remote::{
    ConnectionPool, Uploads, check_if_exists, check_remote_base, is_loopback_host,
};
pub use config::{FtpOptions, Security};
use error::{BACKEND, invalid};
use session::Connector;

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
    uploads: Uploads<Connector>,
}

impl FtpChannel {
    /// A channel uploading with `options`. The password and `ca_file` are read now; the server
    /// is first contacted at the first delivery.
    pub fn new(options: FtpOptions) -> Result<Self> {
        check(&options)?;
        let base = check_remote_base(BACKEND, &options.path)?;
        let connector = Arc::new(Connector::new(&options)?);
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
        Ok(FtpChannel { options, uploads })
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
            .field("uploads", &self.uploads)
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
