//! Turning a delivery into a MIME message.

use std::borrow::Cow;

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MessageBuilder, MultiPart, SinglePart};
use mad_core::{Delivery, Document, Error, OutputFormat, Placeholders, Recipient, Result};

use super::body::{self, BodyTemplate, HubLink, InlineImage, LOGO_ID};
use super::config::{BodyFormat, EmailOptions, Fallback};
use super::error::{self, BACKEND};
use crate::common::{check_template, render_line, render_text, sanitize_file_name};

/// The body when none is configured.
const DEFAULT_BODY: &str = "{report.name} is attached.";

/// A message ready to send: its envelope, its bytes and its id.
#[derive(Debug)]
pub(super) struct Composed {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    /// The `Message-ID`, with its angle brackets.
    pub id: String,
    /// Whether documents are attached (a message without them has no smaller fallback).
    pub attached: bool,
}

impl Composed {
    pub(super) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// The parts of the options that shape every message, checked once.
#[derive(Debug)]
pub(super) struct Composer {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    subject: String,
    body_format: BodyFormat,
    body: Option<String>,
    template: Option<BodyTemplate>,
    logo: Option<InlineImage>,
    attach: Option<Vec<OutputFormat>>,
    hub: Option<HubBase>,
    /// Tells this channel's messages from another channel's for the same delivery.
    fingerprint: String,
}

/// Where the hub keeps the copies links point to.
#[derive(Debug)]
struct HubBase {
    base: String,
}

impl Composer {
    /// Checks the options and reads the body template and the logo (paths already
    /// resolved).
    pub(super) fn new(options: &EmailOptions) -> Result<Self> {
        let from = parse_mailbox(&options.from, "from")?;
        let reply_to = options
            .reply_to
            .as_deref()
            .map(|a| parse_mailbox(a, "reply_to"))
            .transpose()?;
        let cc = parse_all(&options.cc, "cc")?;
        let bcc = parse_all(&options.bcc, "bcc")?;
        check_template(BACKEND, "subject", &options.subject)?;
        if let Some(body) = &options.body {
            check_template(BACKEND, "body", body)?;
        }
        if options.body_format == BodyFormat::Text
            && options.body.is_some()
            && options.body_template.is_some()
        {
            return Err(invalid(
                "body and body_template both make the text body; keep one (with body_format = \
                 \"html\", body is the plain-text alternative of the template's HTML)",
            ));
        }
        let template = options
            .body_template
            .as_deref()
            .map(|path| BodyTemplate::load(path, options.body_format))
            .transpose()?;
        let logo = match (&options.logo, options.body_format) {
            (Some(path), BodyFormat::Html) => Some(InlineImage::load(path, "logo", LOGO_ID)?),
            (Some(_), BodyFormat::Text) => {
                return Err(invalid(
                    "logo is shown in an HTML body only; set body_format = \"html\" or remove logo",
                ));
            }
            (None, _) => None,
        };

        Ok(Composer {
            from,
            reply_to,
            cc,
            bcc,
            subject: options.subject.clone(),
            body_format: options.body_format,
            body: options.body.clone(),
            template,
            logo,
            attach: options.attach.clone(),
            hub: hub_link_options(options)?,
            fingerprint: serde_json::to_string(options).unwrap_or_default(),
        })
    }

    pub(super) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Whether a message too large for the server can go with a link instead of attachments.
    pub(super) fn links_to_hub(&self) -> bool {
        self.hub.is_some()
    }

    /// The `Message-ID` of the message for `delivery`: the same delivery through the same
    /// channel always gets the same one, so a duplicate is recognisable and a pickup file can
    /// be found again.
    pub(super) fn message_id(&self, delivery: &Delivery) -> String {
        let key = delivery.idempotency_key(super::KIND);
        let mut input = key.into_bytes();
        input.push(0x1f);
        input.extend_from_slice(self.fingerprint.as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("<mad.{hex}@{}>", self.from.email.domain())
    }

    /// The message for `delivery`. `keep_bcc` writes the Bcc header into the message itself
    /// (for pickup files, where the header is the only record of those recipients).
    /// `linked` leaves the attachments out and links to the hub copy instead.
    pub(super) fn compose(
        &self,
        delivery: &Delivery,
        keep_bcc: bool,
        linked: bool,
    ) -> Result<Composed> {
        let recipient = &delivery.recipient;
        let placeholders = placeholders_of(delivery);
        let subject = render_line(BACKEND, "subject", &self.subject, &placeholders)?;
        let links = match (&self.hub, linked) {
            (Some(hub), true) => Some(body::hub_links(&hub.base, delivery)),
            _ => None,
        };
        let body = self.body(delivery, &placeholders, links.as_deref())?;
        let attachments = if linked {
            Vec::new()
        } else {
            self.attachments(delivery)?
        };
        let attached = !attachments.is_empty();
        let id = self.message_id(delivery);

        let builder = self
            .addressed(recipient, keep_bcc)?
            .subject(subject)
            .message_id(Some(id.clone()));
        let message = if attachments.is_empty() {
            match body {
                Body::Single(part) => builder.singlepart(part),
                Body::Multi(part) => builder.multipart(part),
            }
        } else {
            let mixed = match body {
                Body::Single(part) => MultiPart::mixed().singlepart(part),
                Body::Multi(part) => MultiPart::mixed().multipart(part),
            };
            builder.multipart(attachments.into_iter().fold(mixed, MultiPart::singlepart))
        }
        .map_err(error::message)?;

        Ok(Composed {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
            id,
            attached,
        })
    }

    /// A message from the sender to the recipient and the copies, each address once.
    fn addressed(&self, recipient: &Recipient, keep_bcc: bool) -> Result<MessageBuilder> {
        let to = recipient_mailbox(recipient)?;
        let mut builder = Message::builder().from(self.from.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let mut seen = vec![to.email.to_string().to_lowercase()];
        let mut first = |mailbox: &Mailbox| {
            let address = mailbox.email.to_string().to_lowercase();
            let new = !seen.contains(&address);
            seen.push(address);
            new
        };
        builder = builder.to(to);
        for mailbox in self.copies(recipient, &recipient.cc, &self.cc, "cc")? {
            if first(&mailbox) {
                builder = builder.cc(mailbox);
            }
        }
        for mailbox in self.copies(recipient, &recipient.bcc, &self.bcc, "bcc")? {
            if first(&mailbox) {
                builder = builder.bcc(mailbox);
            }
        }
        Ok(if keep_bcc {
            builder.keep_bcc()
        } else {
            builder
        })
    }

    /// The recipient's own copies, then the channel's.
    fn copies(
        &self,
        recipient: &Recipient,
        own: &[String],
        channel: &[Mailbox],
        field: &str,
    ) -> Result<Vec<Mailbox>> {
        let mut all = own
            .iter()
            .map(|address| copy_mailbox(recipient, address, field))
            .collect::<Result<Vec<_>>>()?;
        all.extend(channel.iter().cloned());
        Ok(all)
    }

    fn body(
        &self,
        delivery: &Delivery,
        placeholders: &Placeholders,
        links: Option<&[HubLink]>,
    ) -> Result<Body> {
        let text = |template: &str| {
            render_text(BACKEND, "body", template, placeholders).map(|t| with_text_links(t, links))
        };
        match self.body_format {
            BodyFormat::Text => {
                let body = match &self.template {
                    Some(template) => with_text_links(
                        template.render(body::template_context(
                            delivery,
                            placeholders,
                            None,
                            links,
                        ))?,
                        links,
                    ),
                    None => text(self.body.as_deref().unwrap_or(DEFAULT_BODY))?,
                };
                Ok(Body::Single(SinglePart::plain(body)))
            }
            BodyFormat::Html => {
                let html = self.html(delivery, placeholders, links)?;
                let Some(plain) = self.body.as_deref().map(text).transpose()? else {
                    return Ok(html);
                };
                let alternative = MultiPart::alternative().singlepart(SinglePart::plain(plain));
                Ok(Body::Multi(match html {
                    Body::Single(part) => alternative.singlepart(part),
                    Body::Multi(part) => alternative.multipart(part),
                }))
            }
        }
    }

    /// The HTML body: the template's output or the delivery's HTML document, with the images
    /// it shows inline as parts of a `multipart/related`.
    fn html(
        &self,
        delivery: &Delivery,
        placeholders: &Placeholders,
        links: Option<&[HubLink]>,
    ) -> Result<Body> {
        let html = match &self.template {
            Some(template) => {
                let report_html = html_document(delivery).ok();
                let context =
                    body::template_context(delivery, placeholders, report_html.as_deref(), links);
                template.render(context)?
            }
            None => html_document(delivery)?,
        };
        let html = match links {
            Some(links) => body::html_with_links(html, links),
            None => html,
        };
        let (html, mut images) = body::extract_data_images(&html);
        // Images the renderer made for the page (charts) travel beside it, by content id.
        let rendered = delivery
            .documents
            .iter()
            .filter(|d| d.format == OutputFormat::Html)
            .flat_map(|d| &d.inline);
        images.extend(rendered.map(|part| InlineImage {
            content_id: part.content_id.clone(),
            media_type: part.media_type.clone(),
            bytes: part.bytes.to_vec(),
        }));
        if let Some(logo) = &self.logo
            && body::refers_to(&html, LOGO_ID)
        {
            images.insert(0, logo.clone());
        }

        let part = SinglePart::html(html);
        if images.is_empty() {
            return Ok(Body::Single(part));
        }
        let related = images
            .iter()
            .map(InlineImage::part)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .fold(MultiPart::related().singlepart(part), MultiPart::singlepart);
        Ok(Body::Multi(related))
    }

    fn attachments(&self, delivery: &Delivery) -> Result<Vec<SinglePart>> {
        let chosen: Vec<&Document> = match &self.attach {
            Some(formats) => formats
                .iter()
                .map(|format| find_document(delivery, *format))
                .collect::<Result<_>>()?,
            None => delivery
                .documents
                .iter()
                .map(|d| d.as_ref())
                .filter(|d| {
                    !(self.body_format == BodyFormat::Html && d.format == OutputFormat::Html)
                })
                .collect(),
        };
        chosen.into_iter().map(attachment).collect()
    }
}

/// The delivery's placeholders, with the recipient's attributes as `recipient.<name>` where
/// the delivery does not set that name already.
fn placeholders_of(delivery: &Delivery) -> Cow<'_, Placeholders> {
    let attributes = &delivery.recipient.attributes;
    let missing = attributes.keys().any(|name| {
        delivery
            .placeholders
            .get(&format!("recipient.{name}"))
            .is_none()
    });
    if !missing {
        return Cow::Borrowed(&delivery.placeholders);
    }
    let mut placeholders = (*delivery.placeholders).clone();
    for (name, value) in attributes {
        let key = format!("recipient.{name}");
        if placeholders.get(&key).is_none() {
            placeholders.set(key, value);
        }
    }
    Cow::Owned(placeholders)
}

fn with_text_links(text: String, links: Option<&[HubLink]>) -> String {
    match links {
        Some(links) => body::text_with_links(text, links),
        None => text,
    }
}

fn hub_link_options(options: &EmailOptions) -> Result<Option<HubBase>> {
    let base = options.hub_link_base.as_deref().map(str::trim);
    match (options.fallback, base) {
        (Fallback::Fail, _) => Ok(None),
        (Fallback::HubLink, None | Some("")) => Err(invalid(
            "fallback = \"hub_link\" needs hub_link_base, the address of the hub the documents \
             are also delivered to (such as https://reports.example.com/hub)",
        )),
        (Fallback::HubLink, Some(base)) => {
            let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
            if !scheme_ok || base.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(invalid(format!(
                    "hub_link_base {base:?} is not an http(s) address; write it as \
                     https://reports.example.com/hub"
                )));
            }
            Ok(Some(HubBase {
                base: base.to_string(),
            }))
        }
    }
}

fn parse_all(addresses: &[String], option: &str) -> Result<Vec<Mailbox>> {
    addresses.iter().map(|a| parse_mailbox(a, option)).collect()
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

fn parse_mailbox(text: &str, option: &str) -> Result<Mailbox> {
    text.parse().map(with_clean_name).map_err(|e| {
        Error::invalid_config(format!(
            "{option} {text:?} is not an e-mail address ({e}); write it as \
             reports@example.com or Reports <reports@example.com>"
        ))
        .with_backend(BACKEND)
    })
}

fn recipient_mailbox(recipient: &Recipient) -> Result<Mailbox> {
    let Some(address) = recipient.email.as_deref().filter(|a| !a.trim().is_empty()) else {
        return Err(Error::invalid_config(format!(
            "recipient '{}' ({}) has no e-mail address; add one to the recipient (or its value \
             table's email column)",
            recipient.id, recipient.name
        ))
        .with_backend(BACKEND));
    };
    let mailbox: Mailbox = address.trim().parse().map_err(|e| {
        Error::invalid_config(format!(
            "recipient '{}' has the invalid e-mail address {address:?} ({e})",
            recipient.id
        ))
        .with_backend(BACKEND)
    })?;
    match mailbox.name {
        None => Ok(with_clean_name(Mailbox::new(
            Some(recipient.name.clone()),
            mailbox.email,
        ))),
        Some(_) => Ok(with_clean_name(mailbox)),
    }
}

/// The mailbox with control characters in its display name turned into spaces: a line break
/// there could add a header (and lettre panics writing one). An empty name is dropped.
fn with_clean_name(mailbox: Mailbox) -> Mailbox {
    let name = mailbox.name.map(|name| {
        name.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string()
    });
    Mailbox::new(name.filter(|n| !n.is_empty()), mailbox.email)
}

fn copy_mailbox(recipient: &Recipient, address: &str, field: &str) -> Result<Mailbox> {
    address.trim().parse().map(with_clean_name).map_err(|e| {
        Error::invalid_config(format!(
            "recipient '{}' has the invalid {field} address {address:?} ({e})",
            recipient.id
        ))
        .with_backend(BACKEND)
    })
}

fn find_document(delivery: &Delivery, format: OutputFormat) -> Result<&Document> {
    delivery
        .documents
        .iter()
        .find(|d| d.format == format)
        .map(|d| d.as_ref())
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "attach lists {format}, but report '{}' delivered only {}; add {format} to the \
                 report's formats (and the channel's), or remove it from attach",
                delivery.report.name,
                formats_of(delivery)
            ))
            .with_backend(BACKEND)
        })
}

fn html_document(delivery: &Delivery) -> Result<String> {
    let doc = delivery
        .documents
        .iter()
        .find(|d| d.format == OutputFormat::Html)
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "body_format = \"html\" needs an html document, but report '{}' delivered only \
                 {}; add html to the report's formats (and the channel's)",
                delivery.report.name,
                formats_of(delivery)
            ))
            .with_backend(BACKEND)
        })?;
    let html = String::from_utf8(doc.bytes.to_vec()).map_err(|_| {
        Error::invalid_input(format!(
            "the html document {} is not UTF-8 text, so it cannot be the message body",
            doc.file_name
        ))
        .with_backend(BACKEND)
    })?;
    Ok(html)
}

fn attachment(doc: &Document) -> Result<SinglePart> {
    let content_type = ContentType::parse(doc.media_type()).map_err(error::message)?;
    Ok(Attachment::new(sanitize_file_name(&doc.file_name)).body(doc.bytes.to_vec(), content_type))
}

fn formats_of(delivery: &Delivery) -> String {
    let formats: Vec<&str> = delivery
        .documents
        .iter()
        .map(|d| d.format.extension())
        .collect();
    if formats.is_empty() {
        "no documents".to_string()
    } else {
        formats.join(", ")
    }
}
