//! Message bodies: the body template (minijinja), images shown inline by `cid:`, and the note
//! that points to the hub when the documents were too large to attach.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, SinglePart};
use mad_core::{Delivery, Error, Placeholders, Result};
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::config::BodyFormat;
use super::error::BACKEND;

/// The content id of the logo, as the body refers to it: `<img src="cid:logo">`.
pub(super) const LOGO_ID: &str = "logo";

/// The name the body template is stored under.
const TEMPLATE: &str = "body";

/// A body template file, parsed once when the channel is built.
#[derive(Debug)]
pub(super) struct BodyTemplate {
    path: PathBuf,
    env: Environment<'static>,
}

impl BodyTemplate {
    /// Reads and parses the template at `path`; with `format = Html` every value it prints
    /// is HTML-escaped unless marked safe.
    pub(super) fn load(path: &Path, format: BodyFormat) -> Result<Self> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            Error::io(format!("reading the body_template {}", path.display()), e)
                .with_backend(BACKEND)
        })?;
        let html = format == BodyFormat::Html;
        let mut env = Environment::new();
        env.set_auto_escape_callback(move |_| {
            if html {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Printing a name the context lacks is an error, as with `{}` placeholders, so a typo
        // never ships an empty greeting; `{% if name %}` still works for optional values.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.add_template_owned(TEMPLATE, source)
            .map_err(|e| template_error(path, &e))?;
        Ok(BodyTemplate {
            path: path.to_path_buf(),
            env,
        })
    }

    /// The body for one delivery.
    pub(super) fn render(&self, context: Value) -> Result<String> {
        self.env
            .get_template(TEMPLATE)
            .and_then(|t| t.render(context))
            .map_err(|e| template_error(&self.path, &e))
    }
}

fn template_error(path: &Path, err: &minijinja::Error) -> Error {
    let line = err.line().map(|l| format!(" line {l}")).unwrap_or_default();
    let detail = err.detail().map(|d| format!(": {d}")).unwrap_or_default();
    Error::invalid_config(format!(
        "the body_template {}{line}: {}{detail}",
        path.display(),
        err.kind()
    ))
    .with_backend(BACKEND)
}

/// What a body template sees for one delivery.
///
/// Every placeholder is there under its own name, dotted names as nested values
/// (`recipient.name`, `run.date`, `Region`), and also in the map `placeholders`
/// (`placeholders["Order Region"]`). `recipient.attributes` holds the recipient's attributes,
/// `report_html` the delivery's HTML document (safe to print as it is), `hub_links` the links
/// to the hub copies (each with `name` and `address`) when the documents were too large to
/// attach, `hub_link` the first of them, and `images.logo` the `cid:` URL of the logo.
pub(super) fn template_context(
    delivery: &Delivery,
    placeholders: &Placeholders,
    report_html: Option<&str>,
    hub_links: Option<&[HubLink]>,
) -> Value {
    let mut top: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut plain: BTreeMap<String, Value> = BTreeMap::new();
    for (name, value) in placeholders.iter() {
        match name.split_once('.') {
            Some((group, rest)) => {
                top.entry(group.to_string())
                    .or_default()
                    .insert(rest.to_string(), Value::from(value));
            }
            None => {
                plain.insert(name.to_string(), Value::from(value));
            }
        }
    }
    let attributes: BTreeMap<String, Value> = delivery
        .recipient
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    top.entry("recipient".to_string())
        .or_default()
        .insert("attributes".to_string(), Value::from(attributes));

    let mut context: BTreeMap<String, Value> = plain
        .into_iter()
        .filter(|(name, _)| !top.contains_key(name))
        .collect();
    context.extend(top.into_iter().map(|(k, v)| (k, Value::from(v))));
    context.insert(
        "placeholders".to_string(),
        Value::from_pairs(placeholders.iter()),
    );
    context.insert(
        "images".to_string(),
        Value::from_pairs([(LOGO_ID, format!("cid:{LOGO_ID}"))]),
    );
    if let Some(html) = report_html {
        context.insert(
            "report_html".to_string(),
            Value::from_safe_string(html.to_string()),
        );
    }
    if let Some(links) = hub_links {
        if let Some(first) = links.first() {
            context.insert("hub_link".to_string(), Value::from(first.address.as_str()));
        }
        let listed: Vec<Value> = links
            .iter()
            .map(|l| {
                Value::from_pairs([("name", l.name.as_str()), ("address", l.address.as_str())])
            })
            .collect();
        context.insert("hub_links".to_string(), Value::from(listed));
    }
    Value::from(context)
}

/// An image sent as an inline part of the message.
#[derive(Debug, Clone)]
pub(super) struct InlineImage {
    pub content_id: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl InlineImage {
    /// Reads an image file, naming the option that points to it.
    pub(super) fn load(path: &Path, option: &str, content_id: &str) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let media_type = match extension.as_deref() {
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            Some("svg") => "image/svg+xml",
            Some("webp") => "image/webp",
            _ => {
                return Err(Error::invalid_config(format!(
                    "{option} {} is not a PNG, JPEG, GIF, SVG or WebP file (by its extension)",
                    path.display()
                ))
                .with_backend(BACKEND));
            }
        };
        let bytes = std::fs::read(path).map_err(|e| {
            Error::io(format!("reading the {option} {}", path.display()), e).with_backend(BACKEND)
        })?;
        Ok(InlineImage {
            content_id: content_id.to_string(),
            media_type: media_type.to_string(),
            bytes,
        })
    }

    pub(super) fn part(&self) -> Result<SinglePart> {
        let content_type = ContentType::parse(&self.media_type).map_err(|e| {
            Error::invalid_input(format!("the image type {}: {e}", self.media_type))
                .with_backend(BACKEND)
        })?;
        Ok(Attachment::new_inline(self.content_id.clone()).body(self.bytes.clone(), content_type))
    }
}

/// Moves images the HTML embeds as base64 `data:` URLs (charts from the HTML renderer) into
/// inline parts, `src="data:image/png;base64,..."` becoming `src="cid:image-1"`: many mail
/// programs do not show `data:` images. Other `data:` URLs are left as they are.
pub(super) fn extract_data_images(html: &str) -> (String, Vec<InlineImage>) {
    let mut out = String::with_capacity(html.len());
    let mut images = Vec::new();
    let mut rest = html;
    while let Some(at) = find_ignore_case(rest, "src=") {
        let (head, tail) = rest.split_at(at + "src=".len());
        out.push_str(head);
        rest = tail;
        let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            continue;
        };
        let value = &rest[1..1 + end];
        match decode_data_image(value) {
            Some((media_type, bytes)) => {
                let content_id = format!("image-{}", images.len() + 1);
                out.push(quote);
                out.push_str("cid:");
                out.push_str(&content_id);
                out.push(quote);
                images.push(InlineImage {
                    content_id,
                    media_type,
                    bytes,
                });
            }
            None => out.push_str(&rest[..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    (out, images)
}

fn decode_data_image(url: &str) -> Option<(String, Vec<u8>)> {
    let url = url.trim();
    let (scheme, rest) = url.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case("data:") {
        return None;
    }
    let (meta, payload) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?.trim().to_ascii_lowercase();
    let is_image = media_type.starts_with("image/")
        && media_type[6..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_image {
        return None;
    }
    let payload: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    Some((media_type, bytes))
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether the HTML refers to the inline part `content_id`.
pub(super) fn refers_to(html: &str, content_id: &str) -> bool {
    find_ignore_case(html, &format!("cid:{content_id}")).is_some()
}

/// A link to the hub copy of one document: its file name and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HubLink {
    pub name: String,
    pub address: String,
}

/// The links to the hub copies of `delivery`'s documents: `base`, a `/`, and the id the hub
/// gives each document (as the hub's own `link` makes them), in the delivery's order.
pub(super) fn hub_links(base: &str, delivery: &Delivery) -> Vec<HubLink> {
    let base = base.trim_end_matches('/');
    crate::hub::document_ids(delivery)
        .into_iter()
        .map(|(name, id)| HubLink {
            name,
            address: format!("{base}/{id}"),
        })
        .collect()
}

fn shows_all(body: &str, links: &[HubLink]) -> bool {
    links
        .iter()
        .all(|l| body.contains(&l.address) || body.contains(&html_escape(&l.address)))
}

const HUB_NOTE: &str =
    "The documents were too large to send by e-mail. You can download them here:";

/// The text body with the hub note added, unless the body already shows every link.
pub(super) fn text_with_links(text: String, links: &[HubLink]) -> String {
    if shows_all(&text, links) {
        return text;
    }
    let mut out = format!("{}\n\n{HUB_NOTE}\n", text.trim_end());
    for link in links {
        out.push_str(&format!("{}: {}\n", link.name, link.address));
    }
    out
}

/// The HTML body with the hub note added before `</body>`, unless the body already shows
/// every link.
pub(super) fn html_with_links(html: String, links: &[HubLink]) -> String {
    if shows_all(&html, links) {
        return html;
    }
    let mut note = format!("<p>{}</p><ul>", html_escape(HUB_NOTE));
    for link in links {
        let href = html_escape(&link.address);
        note.push_str(&format!(
            "<li><a href=\"{href}\">{}</a></li>",
            html_escape(&link.name)
        ));
    }
    note.push_str("</ul>");
    match find_ignore_case(&html, "</body>") {
        Some(at) => format!("{}{note}{}", &html[..at], &html[at..]),
        None => format!("{html}{note}"),
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_images_become_inline_parts() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG chart");
        let html = format!(
            "<img alt=x SRC=\"data:image/png;base64,{png}\"><img src='logo.png'>\
             <img src=\"data:text/plain;base64,aGk=\">"
        );
        let (out, images) = extract_data_images(&html);
        assert_eq!(
            out,
            "<img alt=x SRC=\"cid:image-1\"><img src='logo.png'>\
             <img src=\"data:text/plain;base64,aGk=\">"
        );
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].media_type, "image/png");
        assert_eq!(images[0].bytes, b"\x89PNG chart");
        assert!(refers_to(&out, "image-1"));
        assert!(!refers_to(&out, LOGO_ID));
    }

    #[test]
    fn broken_markup_is_left_alone() {
        for html in [
            "<img src=",
            "<img src=\"data:image/png;base64,!!",
            "src=x",
            "ü src='é",
        ] {
            assert_eq!(extract_data_images(html).0, html);
        }
    }

    #[test]
    fn bodies_list_each_documents_link_once() {
        let links = [
            HubLink {
                name: "Sales <East>.pdf".into(),
                address: "https://hub.example.com/d/0a1b".into(),
            },
            HubLink {
                name: "Sales.xlsx".into(),
                address: "https://hub.example.com/d/2c3d".into(),
            },
        ];
        let html = html_with_links("<html><body><p>Hi</p></BODY></html>".into(), &links);
        assert!(
            html.ends_with(
                "<li><a href=\"https://hub.example.com/d/2c3d\">Sales.xlsx</a></li></ul></BODY></html>"
            ),
            "{html}"
        );
        assert!(html.contains(">Sales &lt;East&gt;.pdf</a>"), "{html}");
        assert_eq!(html_with_links(html.clone(), &links), html);
        let text = text_with_links("Hi\n".into(), &links);
        assert!(
            text.ends_with("\nSales <East>.pdf: https://hub.example.com/d/0a1b\nSales.xlsx: https://hub.example.com/d/2c3d\n"),
            "{text}"
        );
        assert_eq!(text_with_links(text.clone(), &links), text);
    }

    #[test]
    fn html_templates_escape_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.html");
        std::fs::write(&path, "<p>{{ recipient.name }} {{ report_html }}</p>").unwrap();
        let template = BodyTemplate::load(&path, BodyFormat::Html).unwrap();
        let context = Value::from_pairs([
            (
                "recipient",
                Value::from_pairs([("name", "<b>Ann</b> & Co")]),
            ),
            ("report_html", Value::from_safe_string("<i>ok</i>".into())),
        ]);
        assert_eq!(
            template.render(context).unwrap(),
            "<p>&lt;b&gt;Ann&lt;&#x2f;b&gt; &amp; Co <i>ok</i></p>"
        );
    }

    #[test]
    fn template_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.html");
        std::fs::write(&path, "line one\n{% if %}").unwrap();
        let err = BodyTemplate::load(&path, BodyFormat::Html).unwrap_err();
        assert_eq!(err.kind(), mad_core::ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("body.html line 2"), "{err}");

        std::fs::write(&path, "{{ recipent.name }}").unwrap();
        let template = BodyTemplate::load(&path, BodyFormat::Text).unwrap();
        let err = template
            .render(Value::from_pairs([("recipient", Value::from(1))]))
            .unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }
}
