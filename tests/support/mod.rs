//! Helpers shared by the facade's integration tests: the example's data read independently
//! of mad (with the `csv` crate), and the external readers (poppler's pdftotext).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One Superstore order line, read without mad.
#[derive(Debug, Clone)]
pub struct Order {
    pub fields: BTreeMap<String, String>,
}

impl Order {
    pub fn get(&self, field: &str) -> &str {
        &self.fields[field]
    }

    pub fn number(&self, field: &str) -> f64 {
        self.get(field).parse().expect("a number")
    }
}

pub fn superstore() -> Vec<Order> {
    let path = repo().join("examples/data/superstore/superstore.csv");
    let mut reader = csv::Reader::from_path(path).expect("superstore.csv");
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Order {
                fields: headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect(),
            }
        })
        .collect()
}

/// The text of one page of a PDF, extracted by poppler's `pdftotext` (an independent reader).
pub fn pdf_page_text(pdf: &Path, page: usize) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout", "-f", &page.to_string(), "-l", &page.to_string()])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext is missing: run scripts/setup-test-env");
    assert!(
        out.status.success(),
        "pdftotext failed on {}",
        pdf.display()
    );
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

/// The number of pages, from poppler's `pdfinfo`.
pub fn pdf_pages(pdf: &Path) -> usize {
    let out = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo is missing: run scripts/setup-test-env");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo reports the page count")
}

/// Cents, to compare money without floating-point noise.
pub fn cents(x: f64) -> i64 {
    (x * 100.0).round() as i64
}
