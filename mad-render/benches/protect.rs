//! What protection adds to a report: one customer's orders rendered as a PDF and an XLSX, then
//! protected with a password to open, a password to edit, both, and bundled in an encrypted zip.
//!
//! Run with `cargo bench -p mad-render --bench protect`; prints the time per document for each.
//! The passwords are made up by the run; password hashing (AES-256 key derivation for PDF,
//! Office's 100,000-round SHA-512 for XLSX) is most of the cost by design.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]

use std::time::{Duration, Instant};

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    ColumnDef, Document, FilterSet, Locale, OutputFormat, Passwords, Placeholders, Protector,
    RenderJob, Renderer, ReportDef, Secret, Table,
};
use mad_render::protect::DocumentProtector;
use mad_render::{PdfRenderer, XlsxRenderer};

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);
const ROUNDS: u32 = 20;

fn render(renderer: &dyn Renderer, table: &Table) -> Vec<u8> {
    let mut report = ReportDef::new("orders", "Orders of one customer");
    report.columns = ["Order ID", "Order Date", "City", "Product Name", "Sales"]
        .into_iter()
        .map(ColumnDef::new)
        .collect();
    let job = RenderJob {
        report: &report,
        table,
        placeholders: &Placeholders::new(),
        locale: &Locale::default(),
        filters: &FilterSet::all(),
        deterministic: true,
        created_at: 0,
    };
    renderer.render(&job).expect("the report renders").to_vec()
}

fn password(seed: u64) -> Secret {
    // Different on every run, never a fixed string in the repository.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Secret::new(format!("bench-{seed}-{nanos:x}"))
}

fn per_round(mut work: impl FnMut()) -> Duration {
    work(); // warm-up
    let started = Instant::now();
    for _ in 0..ROUNDS {
        work();
    }
    started.elapsed() / ROUNDS
}

fn main() {
    let table = read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore CSV loads");
    let customer = table.require_column("Customer Name").unwrap();
    let (_, orders) = table
        .sorted_by(&[(customer, false)])
        .runs_by(customer)
        .into_iter()
        .next()
        .expect("a customer");
    let pdf = Document::new(
        OutputFormat::Pdf,
        "orders.pdf",
        render(&PdfRenderer::new(), &orders).into(),
    );
    let xlsx = Document::new(
        OutputFormat::Xlsx,
        "orders.xlsx",
        render(&XlsxRenderer::new(), &orders).into(),
    );
    println!(
        "one customer's orders ({} rows): PDF {} B, XLSX {} B; {ROUNDS} rounds each",
        orders.len(),
        pdf.bytes.len(),
        xlsx.bytes.len()
    );

    let protector = DocumentProtector::default();
    let open = || Passwords {
        open: Some(password(1)),
        edit: None,
    };
    let edit = || Passwords {
        open: None,
        edit: Some(password(2)),
    };
    let both = || Passwords {
        open: Some(password(3)),
        edit: Some(password(4)),
    };
    let cases: [(&str, &Document, Passwords); 5] = [
        ("pdf, password to open", &pdf, open()),
        ("pdf, passwords to open and edit", &pdf, both()),
        ("xlsx, password to open", &xlsx, open()),
        ("xlsx, password to edit", &xlsx, edit()),
        ("xlsx, passwords to open and edit", &xlsx, both()),
    ];
    for (name, document, passwords) in &cases {
        let each = per_round(|| {
            protector.protect(document, passwords).expect("protected");
        });
        println!("{name:34} {:8.2} ms per document", each.as_secs_f64() * 1e3);
    }
    let documents = [pdf.clone(), xlsx.clone()];
    let passwords = open();
    let each = per_round(|| {
        protector.bundle(&documents, &passwords).expect("bundled");
    });
    println!(
        "{:34} {:8.2} ms per bundle",
        "zip bundle of both, password to open",
        each.as_secs_f64() * 1e3
    );
}
