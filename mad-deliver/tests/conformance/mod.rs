//! The behaviour every channel shows, checked the same way for each.
//!
//! A channel's test file implements [`Harness`] (how to build the channel and how to read what
//! arrived at the far end, independently of the channel) and calls [`run`]. Checks that need a
//! capability the channel does not publish are skipped for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mad_core::{Channel, Delivery, Document, ErrorKind, OutputFormat, Recipient, Result};

use crate::support::{delivery, document, pdf_bytes};

/// A document as it arrived: its file name and bytes, read back by the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What the suite needs from a channel's test.
pub trait Harness {
    /// The channel under test, built with the options the harness chose.
    fn channel(&self) -> Arc<dyn Channel>;

    /// Every document that has arrived so far, read without the channel's help.
    fn arrived(&self) -> Vec<Arrived>;

    /// Strings (passwords, tokens) that must never show in `Debug` output or errors.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Runs every check that applies to the harness's channel.
pub async fn run(harness: &dyn Harness) {
    let suite = Suite {
        harness,
        channel: harness.channel(),
        errors: std::sync::Mutex::new(Vec::new()),
    };
    let capabilities = suite.channel.capabilities();

    suite.receipt_names_the_channel().await;
    suite.document_arrives_intact().await;
    suite.hostile_names_arrive_safe().await;
    suite.repeating_a_delivery_is_safe().await;
    suite.empty_document_arrives().await;
    if capabilities.attachments {
        suite.several_documents_arrive().await;
    }
    if capabilities.inline_html {
        suite.html_document_is_accepted().await;
    }
    if let Some(limit) = capabilities.max_bytes {
        suite.oversized_delivery_fails_cleanly(limit).await;
    }
    suite.secrets_stay_hidden();
}

struct Suite<'a> {
    harness: &'a dyn Harness,
    channel: Arc<dyn Channel>,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Suite<'_> {
    /// Each delivery goes to a new recipient, so checks never collide with each other.
    fn recipient(&self) -> Recipient {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        crate::support::recipient(&format!("conformance{n}"))
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<mad_core::Receipt> {
        let result = self.channel.deliver(delivery).await;
        if let Err(err) = &result {
            self.errors.lock().unwrap().push(format!("{err} {err:?}"));
        }
        result
    }

    fn new_arrivals(&self, before: usize) -> Vec<Arrived> {
        self.harness.arrived().into_iter().skip(before).collect()
    }

    async fn receipt_names_the_channel(&self) {
        let d = delivery(self.recipient(), vec![pdf("receipt.pdf")]);
        let receipt = self
            .deliver(&d)
            .await
            .expect("conformance: a plain delivery");
        assert_eq!(
            receipt.channel,
            self.channel.name(),
            "conformance: receipt channel"
        );
        assert!(
            !receipt.locations.is_empty(),
            "conformance: receipt lists where documents went"
        );
        assert!(
            receipt.bytes >= d.bytes(),
            "conformance: receipt counts at least the document bytes"
        );
    }

    async fn document_arrives_intact(&self) {
        let before = self.harness.arrived().len();
        let name = "Umsatz Zürich – Łódź 2026.pdf";
        let d = delivery(self.recipient(), vec![pdf(name)]);
        self.deliver(&d)
            .await
            .expect("conformance: a UTF-8 file name");
        let arrived = self.new_arrivals(before);
        assert_eq!(
            arrived,
            vec![Arrived {
                name: name.to_string(),
                bytes: pdf_bytes()
            }],
            "conformance: the document arrives once, with its name and bytes unchanged"
        );
    }

    async fn hostile_names_arrive_safe(&self) {
        let long = format!("{}.pdf", "x".repeat(300));
        let hostile = [
            "../../etc/passwd",
            "/abs/path.pdf",
            "CON.pdf",
            "a\\b.pdf",
            "tab\tnew\nline\u{7}.pdf",
            long.as_str(),
            "",
            "..",
            "trailing. . ",
        ];
        for name in hostile {
            let before = self.harness.arrived().len();
            let d = delivery(self.recipient(), vec![pdf(name)]);
            self.deliver(&d).await.unwrap_or_else(|e| {
                panic!("conformance: the name {name:?} is made safe, not refused: {e}")
            });
            let arrived = self.new_arrivals(before);
            assert_eq!(arrived.len(), 1, "conformance: {name:?} arrives once");
            assert_safe_name(&arrived[0].name, name);
            assert_eq!(
                arrived[0].bytes,
                pdf_bytes(),
                "conformance: bytes of {name:?}"
            );
        }
    }

    async fn repeating_a_delivery_is_safe(&self) {
        let before = self.harness.arrived().len();
        let d = delivery(self.recipient(), vec![pdf("again.pdf")]);
        self.deliver(&d).await.expect("conformance: first delivery");
        match self.deliver(&d).await {
            Ok(_) => {}
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::AlreadyExists,
                "conformance: a repeated delivery succeeds or says AlreadyExists: {e}"
            ),
        }
        let arrived = self.new_arrivals(before);
        assert!(
            !arrived.is_empty(),
            "conformance: the first delivery is still there"
        );
        for a in arrived {
            assert_eq!(
                a.bytes,
                pdf_bytes(),
                "conformance: repeating never damages {}",
                a.name
            );
        }
    }

    async fn empty_document_arrives(&self) {
        let before = self.harness.arrived().len();
        let d = delivery(
            self.recipient(),
            vec![document(OutputFormat::Csv, "empty.csv", Vec::new())],
        );
        self.deliver(&d)
            .await
            .expect("conformance: an empty document");
        let arrived = self.new_arrivals(before);
        assert_eq!(arrived.len(), 1, "conformance: the empty document arrives");
        assert!(arrived[0].bytes.is_empty());
    }

    async fn several_documents_arrive(&self) {
        let before = self.harness.arrived().len();
        let csv = "Region,Sales\nWest,1\n".as_bytes().to_vec();
        let xlsx = b"PK\x03\x04 not really a workbook".to_vec();
        let d = delivery(
            self.recipient(),
            vec![
                pdf("several.pdf"),
                document(OutputFormat::Csv, "several.csv", csv.clone()),
                document(OutputFormat::Xlsx, "several.xlsx", xlsx.clone()),
            ],
        );
        self.deliver(&d)
            .await
            .expect("conformance: several documents");
        let mut arrived = self.new_arrivals(before);
        arrived.sort_by(|a, b| a.name.cmp(&b.name));
        let expected = vec![
            Arrived {
                name: "several.csv".into(),
                bytes: csv,
            },
            Arrived {
                name: "several.pdf".into(),
                bytes: pdf_bytes(),
            },
            Arrived {
                name: "several.xlsx".into(),
                bytes: xlsx,
            },
        ];
        assert_eq!(
            arrived, expected,
            "conformance: every document of a delivery arrives"
        );
    }

    async fn html_document_is_accepted(&self) {
        let d = delivery(
            self.recipient(),
            vec![
                document(OutputFormat::Html, "inline.html", "<p>Grüße</p>"),
                pdf("inline.pdf"),
            ],
        );
        self.deliver(&d)
            .await
            .expect("conformance: a delivery with an HTML document");
    }

    async fn oversized_delivery_fails_cleanly(&self, limit: u64) {
        let before = self.harness.arrived().len();
        let big = vec![b'x'; usize::try_from(limit).unwrap() + 1];
        let d = delivery(
            self.recipient(),
            vec![document(OutputFormat::Csv, "big.csv", big)],
        );
        let err = self
            .deliver(&d)
            .await
            .expect_err("conformance: over max_bytes");
        assert_ne!(err.kind(), ErrorKind::Internal, "conformance: {err}");
        assert_eq!(
            self.harness.arrived().len(),
            before,
            "conformance: nothing arrives"
        );
    }

    fn secrets_stay_hidden(&self) {
        let debug = format!("{:?}", self.channel);
        let errors = self.errors.lock().unwrap().join("\n");
        for secret in self.harness.secrets() {
            assert!(
                !debug.contains(&secret),
                "conformance: Debug shows a secret: {debug}"
            );
            assert!(
                !errors.contains(&secret),
                "conformance: an error shows a secret"
            );
        }
    }
}

fn pdf(name: &str) -> Document {
    document(OutputFormat::Pdf, name, pdf_bytes())
}

/// The rules of `mad_deliver::common::sanitize_file_name`, checked from outside.
pub fn assert_safe_name(name: &str, from: &str) {
    let reserved = ["CON", "PRN", "AUX", "NUL"];
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    assert!(!name.is_empty(), "conformance: {from:?} gave an empty name");
    assert!(
        name.len() <= 255,
        "conformance: {from:?} gave {} bytes",
        name.len()
    );
    assert!(
        !name.contains(['/', '\\']),
        "conformance: {from:?} gave {name:?}"
    );
    assert!(!name.contains(".."), "conformance: {from:?} gave {name:?}");
    assert!(
        !name.chars().any(char::is_control),
        "conformance: {from:?} gave {name:?}"
    );
    assert!(
        !name.ends_with(['.', ' ']),
        "conformance: {from:?} gave {name:?}"
    );
    assert!(
        !reserved.contains(&stem.as_str()),
        "conformance: {from:?} gave {name:?}"
    );
    let is_port = |p: &str| {
        stem.len() == 4
            && stem.starts_with(p)
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0'
    };
    assert!(
        !is_port("COM") && !is_port("LPT"),
        "conformance: {from:?} gave {name:?}"
    );
}

/// Keeps arrivals in the order they were first seen, for harnesses whose far end lists
/// things in another order (a folder listing, file names with random parts).
#[derive(Default)]
pub struct ArrivalLog {
    seen: std::sync::Mutex<Vec<(String, Arrived)>>,
}

impl ArrivalLog {
    /// Records the far end's current content, each item under a unique key, and returns
    /// every arrival in order of first sight.
    pub fn update(&self, current: Vec<(String, Arrived)>) -> Vec<Arrived> {
        let mut seen = self.seen.lock().unwrap();
        let mut fresh: Vec<(String, Arrived)> = current
            .into_iter()
            .filter(|(key, _)| !seen.iter().any(|(k, _)| k == key))
            .collect();
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        seen.extend(fresh);
        seen.iter().map(|(_, a)| a.clone()).collect()
    }
}
