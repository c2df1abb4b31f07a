//! The e-mail channel: one message per delivery, to the recipient's address, through an SMTP
//! server or into a pickup folder as `.eml` files.
//!
//! `message.rs` builds the MIME message (addresses, subject, attachments, the size-limit
//! fallback), `body.rs` its body (templates, inline images, the hub link), `transport.rs` sends
//! it or writes it as a pickup file, and `server.rs` keeps one pool of connections and one send
//! pace per SMTP server for the whole process.
//!
//! Messages are built and sent with lettre, without its `tracing` feature: that feature logs
//! every SMTP line, the `AUTH` command with its credentials included.

mod body;
mod config;
mod error;
mod message;
mod server;
mod transport;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mad_core::{
    BuildContext, Channel, ChannelCapabilities, Delivery, Error, Receipt, Registry, Result,
    parse_options,
};

pub use config::{BodyFormat, EmailOptions, Fallback, PickupOptions, Security, SmtpOptions};
use error::BACKEND;
use message::{Composed, Composer};
use transport::{Refused, Smtp, Transport};

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
    /// A channel sending with `options`. The password, the body template and the logo are
    /// read now; the SMTP server is first contacted at the first delivery.
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
        for path in [&mut options.body_template, &mut options.logo]
            .into_iter()
            .flatten()
        {
            *path = ctx.resolve(path);
        }
        EmailChannel::new(options)
    }

    /// The message for `delivery`, within the size limit: with its attachments when it fits,
    /// else (with `fallback = "hub_link"`) with a link to the hub copy instead.
    fn compose(&self, delivery: &Delivery) -> Result<Composed> {
        let keep_bcc = self.transport.is_pickup();
        let message = self.composer.compose(delivery, keep_bcc, false)?;
        let Some(limit) = self.transport.max_message_bytes() else {
            return Ok(message);
        };
        if message.len() <= limit {
            return Ok(message);
        }
        if !self.composer.links_to_hub() || !message.attached {
            return Err(self.too_large(&message, limit));
        }

        let linked = self.composer.compose(delivery, keep_bcc, true)?;
        if linked.len() > limit {
            return Err(self.too_large(&linked, limit));
        }
        tracing::warn!(recipient = %delivery.recipient.id, bytes = message.len(), limit, "message too large, sending a hub link instead of the attachments");
        Ok(linked)
    }

    fn too_large(&self, message: &Composed, limit: u64) -> Error {
        let advice = if message.attached {
            "make the documents smaller, raise the limit if the server takes more, or set \
             fallback = \"hub_link\" to send a link to the hub copy instead"
        } else {
            "even without attachments; make the body smaller (fewer or smaller images)"
        };
        error::too_large(message.len(), limit, &self.transport.describe(), advice)
    }

    /// Sends `message`; when the server refuses it as too large and the channel links to the
    /// hub, sends the linked message instead (a fallback, not a retry: the first one was
    /// refused for good).
    async fn send(&self, delivery: &Delivery, message: &Composed) -> Result<(String, u64)> {
        let refused = match self.transport.send(message).await {
            Ok(location) => return Ok((location, message.len())),
            Err(refused) => refused,
        };
        if !(refused.too_large && message.attached && self.composer.links_to_hub()) {
            return Err(refused.error);
        }

        tracing::warn!(recipient = %delivery.recipient.id, bytes = message.len(), "the server refused the message as too large, sending a hub link instead of the attachments");
        let linked = self
            .composer
            .compose(delivery, self.transport.is_pickup(), true)?;
        let location = self
            .transport
            .send(&linked)
            .await
            .map_err(|Refused { error, .. }| error)?;
        Ok((location, linked.len()))
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
        let max_bytes = if self.composer.links_to_hub() {
            None
        } else {
            self.transport.max_message_bytes()
        };
        ChannelCapabilities {
            attachments: true,
            inline_html: true,
            max_bytes,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let recipient = &delivery.recipient;
        let context = |e: Error| {
            e.context(format!(
                "sending report '{}' to recipient '{}'",
                delivery.report.name, recipient.id
            ))
        };
        let message = self.compose(delivery).map_err(context)?;
        let (location, size) = self.send(delivery, &message).await.map_err(context)?;

        tracing::debug!(recipient = %recipient.id, bytes = size, "e-mail delivered");
        Ok(Receipt {
            channel: KIND.to_string(),
            locations: vec![location],
            bytes: size,
        })
    }

    /// Finds the pickup file an interrupted attempt left, by its message id; over SMTP the
    /// server cannot be asked, so this is `Unsupported`.
    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        let id = self.composer.message_id(delivery);
        self.transport.confirm(&id).await
    }
}
