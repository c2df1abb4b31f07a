//! Turning a delivery into a MIME message.

use std::time::{SystemTime, UNIX_EPOCH};

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use mad_core::{Delivery, Document, Error, InlinePart, OutputFormat, Recipient, Result};

use super::config::{BodyFormat, EmailOptions};
use super::error::{self, BACKEND};
use crate::common::{check_template, render_line, render_text, sanitize_file_name, unique_token};

/// The body when none is configured.
const DEFAULT_BODY: &str = "{report.name} is attached.";

/// The parts of the options that shape every message, checked once.
#[derive(Debug, Clone)]
pub(super) struct Composer {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    subject: String,
    body_format: BodyFormat,
    body: Option<String>,
    attach: Option<Vec<OutputFormat>>,
}

impl Composer {
    pub(super) fn new(options: &EmailOptions) -> Result<Self> {
        let from = parse_mailbox(&options.from, "from")?;
        let reply_to = options
            .reply_to
            .as_deref()
            .map(|a| parse_mailbox(a, "reply_to"))
            .transpose()?;
        check_template(BACKEND, "subject", &options.subject)?;
        if let Some(body) = &options.body {
            check_template(BACKEND, "body", body)?;
        }
        Ok(Composer {
            from,
            reply_to,
            subject: options.subject.clone(),
            body_format: options.body_format,
            body: options.body.clone(),
            attach: options.attach.clone(),
        })
    }

    pub(super) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The message for `delivery`. `keep_bcc` writes the Bcc header into the message itself
    /// (for pickup files, where the header is the only record of those recipients).
    pub(super) fn compose(&self, delivery: &Delivery, keep_bcc: bool) -> Result<Message> {
        let recipient = &delivery.recipient;
        let to = recipient_mailbox(recipient)?;
        let subject = render_line(BACKEND, "subject", &self.subject, &delivery.placeholders)?;
        let body = self.body_part(delivery)?;
        let attachments = self.attachments(delivery)?;

        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(self.message_id()));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        for address in &recipient.cc {
            builder = builder.cc(copy_mailbox(recipient, address, "cc")?);
        }
        for address in &recipient.bcc {
            builder = builder.bcc(copy_mailbox(recipient, address, "bcc")?);
        }
        if keep_bcc {
            builder = builder.keep_bcc();
        }

        let built = if attachments.is_empty() {
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
        };
        built.map_err(error::message)
    }

    fn body_part(&self, delivery: &Delivery) -> Result<Body> {
        let text = |template: &str| render_text(BACKEND, "body", template, &delivery.placeholders);
        match self.body_format {
            BodyFormat::Text => {
                let body = text(self.body.as_deref().unwrap_or(DEFAULT_BODY))?;
                Ok(Body::Single(SinglePart::plain(body)))
            }
            BodyFormat::Html => {
                let (html, inline) = html_document(delivery)?;
                if !inline.is_empty() {
                    // The page refers to its images by content id: they travel beside it.
                    let mut related = MultiPart::related().singlepart(SinglePart::html(html));
                    for part in inline {
                        related = related.singlepart(inline_part(part)?);
                    }
                    return Ok(Body::Multi(match &self.body {
                        Some(template) => MultiPart::alternative()
                            .singlepart(SinglePart::plain(text(template)?))
                            .multipart(related),
                        None => related,
                    }));
                }
                match &self.body {
                    Some(template) => Ok(Body::Multi(MultiPart::alternative_plain_html(
                        text(template)?,
                        html,
                    ))),
                    None => Ok(Body::Single(SinglePart::html(html))),
                }
            }
        }
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

    fn message_id(&self) -> String {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("<{millis}.{}@{}>", unique_token(), self.from.email.domain())
    }
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

fn html_document(delivery: &Delivery) -> Result<(String, &[InlinePart])> {
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
    Ok((html, &doc.inline))
}

fn inline_part(part: &InlinePart) -> Result<SinglePart> {
    let content_type = ContentType::parse(&part.media_type).map_err(error::message)?;
    Ok(Attachment::new_inline(part.content_id.clone()).body(part.bytes.to_vec(), content_type))
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
