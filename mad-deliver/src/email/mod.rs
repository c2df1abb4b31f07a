//! The e-mail channel: one message per delivery, to the recipient's address, through an SMTP
//! server or into a pickup folder as `.eml` files.
//!
//! Messages are built and sent with lettre, without its `tracing` feature: that feature logs
//! every SMTP line, the `AUTH` command with its credentials included.

mod config;
mod error;
mod message;
mod transport;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Error, Receipt, Registry, Result,
    parse_options,
};

pub use config::{BodyFormat, EmailOptions, PickupOptions, Security, SmtpOptions};
use error::BACKEND;
use message::Composer;
use transport::{Smtp, Transport};

/// The kind name definitions use for this channel.
pub const KIND: &str = "email";

/// Registers the `email` channel kind.
pub fn register(registry: &mut Registry) {
    registry.register_channel(KIND, |options, ctx| {
        Ok(Arc::new(EmailChannel::from_options(options, ctx)?))
    });
}

/// Sends each delivery as one e-mail message.
pub struct EmailChannel {
    composer: Composer,
    transport: Transport,
}

impl EmailChannel {
    /// A channel sending with `options`. The password is read now; the SMTP server is first
    /// contacted at the first delivery.
    pub fn new(options: EmailOptions) -> Result<Self> {
        let composer = Composer::new(&options)?;
        let transport = match (&options.smtp, &options.pickup) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_config(
                    "the e-mail channel has both smtp and pickup; keep the one messages should \
                     go through",
                )
                .with_backend(BACKEND));
            }
            (Some(smtp), None) => Transport::Smtp(Box::new(Smtp::new(smtp)?)),
            (None, pickup) => Transport::Pickup(pickup.clone().unwrap_or_default().dir),
        };
        Ok(EmailChannel {
            composer,
            transport,
        })
    }

    /// A channel from a definition's options, its paths resolved against `ctx`.
    pub fn from_options(options: &serde_json::Value, ctx: &BuildContext) -> Result<Self> {
        let mut options: EmailOptions = parse_options(KIND, options)?;
        if options.smtp.is_none() {
            let mut pickup = options.pickup.take().unwrap_or_default();
            pickup.dir = ctx.resolve_output(&pickup.dir);
            options.pickup = Some(pickup);
        }
        if let Some(ca_file) = options.smtp.as_mut().and_then(|s| s.ca_file.as_mut()) {
            *ca_file = ctx.resolve(ca_file);
        }
        EmailChannel::new(options)
    }
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.composer.from().to_string())
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &str {
        KIND
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            attachments: true,
            inline_html: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let recipient = &delivery.recipient;
        let message = self
            .composer
            .compose(delivery, self.transport.is_pickup())?;
        let bytes = message.formatted();
        let size = bytes.len() as u64;

        let location = self.transport.send(&message, bytes).await.map_err(|e| {
            e.context(format!(
                "sending report '{}' to recipient '{}'",
                delivery.report.name, recipient.id
            ))
        })?;

        tracing::debug!(recipient = %recipient.id, bytes = size, "e-mail delivered");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: vec![location],
            bytes: size,
        })
    }
}
