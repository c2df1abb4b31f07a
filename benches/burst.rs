//! Burst benchmark: the Superstore orders burst by State (49 recipients) and by Customer Name
//! (793 recipients), a PDF and an XLSX per recipient, written to a folder. Prints reports per
//! second (a PDF and an XLSX count as two reports), like `python_burst.py` does.
//!
//!     cargo bench --bench burst [-- ROUNDS]

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mad::source::{CsvOptions, CsvSource, FieldOverride};
use mad::{Aggregate, ColumnDef, Engine, FieldKind, OutputFormat, ReportDef, SortKey, Task};

fn report() -> ReportDef {
    let mut r = ReportDef::new("burst", "Sales report: {burst}");
    r.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name"),
        ColumnDef::new("Category"),
        ColumnDef::new("Product Name"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    r.sort = vec![SortKey::asc("Order Date")];
    r.formats = vec![OutputFormat::Pdf, OutputFormat::Xlsx];
    r.file_name = "{burst}".into();
    r
}

async fn burst(field: &str, source: Arc<CsvSource>, out: &Path) -> (usize, usize, f64) {
    let registry = mad::registry();
    let folder = serde_json::json!({ "path": out, "if_exists": "overwrite" });
    let channel = registry
        .build_channel("folder", &folder, &mad::BuildContext::new(out))
        .expect("folder channel");
    let task = Task::new(format!("burst by {field}"), source)
        .with_report(report())
        .with_burst(field)
        .with_channel(channel)
        .with_registry(&registry);
    let started = Instant::now();
    let summary = Engine::default().run(&task).await.expect("run");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.counts.failed, 0, "{}", summary.human());
    (summary.counts.recipients, summary.counts.documents, seconds)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/superstore/superstore.csv");
    let mut options = CsvOptions::new(data);
    options
        .fields
        .insert("Postal Code".into(), FieldOverride::Kind(FieldKind::Text));
    let source = Arc::new(CsvSource::new(options));
    source.table().await.expect("superstore loads");

    for field in ["State", "Customer Name"] {
        let mut rates = Vec::new();
        let mut recipients = 0;
        for _ in 0..rounds {
            let dir = tempfile::tempdir().expect("temp dir");
            let (r, documents, seconds) = burst(field, source.clone(), dir.path()).await;
            recipients = r;
            rates.push(documents as f64 / seconds);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "burst={field:?} recipients={recipients} rounds={rounds} reports_per_s(median)={:.1} min={:.1} max={:.1}",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    }
}
