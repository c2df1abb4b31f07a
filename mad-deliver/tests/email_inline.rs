//! An HTML body's inline parts (chart images referred to by `cid:`) travel beside it in a
//! `multipart/related` part; read back with an independent MIME parser from a pickup file.

use std::sync::Arc;

use mad_core::{
    Channel, Delivery, Document, InlinePart, OutputFormat, Placeholders, Recipient, ReportDef,
};
use mad_deliver::email::{BodyFormat, EmailChannel, EmailOptions};
use mail_parser::{MessageParser, MimeHeaders, PartType};

const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n not really a picture, but bytes to compare";

fn delivery(body_text: bool) -> (Delivery, EmailChannel, tempfile::TempDir) {
    let html = "<html><body><h1>Sales</h1><img src=\"cid:chart1.abc@mad-render\"></body></html>";
    let page = Document::new(
        OutputFormat::Html,
        "sales.html",
        html.as_bytes().to_vec().into(),
    )
    .with_inline(vec![InlinePart {
        content_id: "chart1.abc@mad-render".into(),
        media_type: "image/png".into(),
        bytes: IMAGE.to_vec().into(),
    }]);
    let pdf = Document::new(OutputFormat::Pdf, "sales.pdf", b"%PDF-1.7".to_vec().into());
    let recipient = Recipient::new("ann", "Ann").with_email("ann@example.com");
    let report = ReportDef::new("sales", "Sales");
    let placeholders = Placeholders::new()
        .with("recipient.name", "Ann")
        .with("report.name", "sales");
    let delivery = Delivery {
        run_id: "run-1".into(),
        task: "monthly".into(),
        recipient: Arc::new(recipient),
        report: Arc::new(report),
        documents: vec![Arc::new(page), Arc::new(pdf)],
        placeholders: Arc::new(placeholders),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut options = EmailOptions::new("Reports <reports@example.com>")
        .with_body_format(BodyFormat::Html)
        .with_pickup(dir.path());
    if body_text {
        options.body = Some("Your sales report for {recipient.name}.".into());
    }
    (delivery, EmailChannel::new(options).unwrap(), dir)
}

async fn sent(body_text: bool) -> Vec<u8> {
    let (delivery, channel, dir) = delivery(body_text);
    channel.deliver(&delivery).await.unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "eml"))
        .expect("a pickup file");
    std::fs::read(file).unwrap()
}

fn assert_related(raw: &[u8], alternative: bool) {
    let message = MessageParser::default().parse(raw).expect("a MIME message");
    let types: Vec<String> = message
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
        .collect();
    assert!(types.contains(&"multipart/related".into()), "{types:?}");
    assert_eq!(
        types.contains(&"multipart/alternative".into()),
        alternative,
        "{types:?}"
    );
    let image = message
        .parts
        .iter()
        .find(|p| p.content_id() == Some("chart1.abc@mad-render"))
        .expect("the image part, by its content id");
    assert!(matches!(
        image.body,
        PartType::Binary(_) | PartType::InlineBinary(_)
    ));
    assert_eq!(image.contents(), IMAGE);
    assert_eq!(
        image
            .content_type()
            .map(|t| t.subtype().unwrap_or_default().to_string()),
        Some("png".into())
    );
    let html = message.body_html(0).expect("an HTML body");
    assert!(html.contains("cid:chart1.abc@mad-render"), "{html}");
    let attached: Vec<&str> = message
        .attachments()
        .filter_map(|a| a.attachment_name())
        .collect();
    assert_eq!(
        attached,
        ["sales.pdf"],
        "the image is inline, not an attachment"
    );
}

#[tokio::test]
async fn inline_parts_travel_beside_the_html_body() {
    assert_related(&sent(false).await, false);
}

#[tokio::test]
async fn a_text_body_makes_it_an_alternative_to_the_related_html() {
    assert_related(&sent(true).await, true);
}
