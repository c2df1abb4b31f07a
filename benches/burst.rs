//! Burst benchmark: the Superstore orders burst by a field (State: 49 recipients; Customer
//! Name: 793), a PDF and an XLSX per recipient, written to a folder. Prints one JSON line with
//! reports per second (a PDF and an XLSX count as two reports, as `python_burst.py` counts).
//!
//!     cargo bench --bench burst -- [FIELD] [ROUNDS] [pdf|xlsx]
//!
//! With a format, only that format is made, and the line also gives pages per second (PDF)
//! or order rows per second (XLSX), as `benches/python_render.py` measures the reference.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mad::source::{CsvOptions, CsvSource, FieldOverride};
use mad::{Engine, FieldKind, OutputFormat, Task};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let field = args.first().cloned().unwrap_or_else(|| "State".into());
    let rounds: usize = args
        .get(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(if common::smoke() { 1 } else { 3 });
    let only: Option<OutputFormat> = args.get(2).map(|f| match f.as_str() {
        "pdf" => OutputFormat::Pdf,
        "xlsx" => OutputFormat::Xlsx,
        other => panic!("the format is pdf or xlsx, not {other}"),
    });
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/superstore/superstore.csv");
    let mut options = CsvOptions::new(data);
    options
        .fields
        .insert("Postal Code".into(), FieldOverride::Kind(FieldKind::Text));
    let source = Arc::new(CsvSource::new(options));
    source.table().await.expect("superstore loads");
    let registry = mad::registry();

    let mut rates = Vec::new();
    let (mut row_rates, mut page_rates) = (Vec::new(), Vec::new());
    let mut recipients = 0;
    let (mut rows, mut pages) = (0, 0);
    for _ in 0..rounds {
        let dir = common::out_dir();
        let mut report = common::superstore_report("Sales report: {burst}");
        if let Some(format) = only {
            report.formats = vec![format];
        }
        let task = Task::new(format!("burst by {field}"), source.clone())
            .with_report(report)
            .with_burst(field.as_str())
            .with_channel(common::folder(dir.path()))
            .with_registry(&registry);
        let started = Instant::now();
        let summary = Engine::default().run(&task).await.expect("the run");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(summary.counts.failed, 0, "{}", summary.human());
        recipients = summary.counts.recipients;
        rates.push(summary.counts.documents as f64 / seconds);
        // Counted after the clock stopped: the order rows, and the pages of the PDFs written.
        rows = summary.recipients.iter().map(|r| r.rows).sum();
        row_rates.push(rows as f64 / seconds);
        if only == Some(OutputFormat::Pdf) {
            pages = common::pdf_pages_in(dir.path());
            page_rates.push(pages as f64 / seconds);
        }
    }
    let mut line = serde_json::json!({
        "bench": if only.is_some() { "render" } else { "burst" },
        "field": field,
        "recipients": recipients,
        "rounds": rounds,
        "reports_per_s": common::median(rates.clone()),
        "min": rates.iter().copied().fold(f64::MAX, f64::min),
        "max": rates.iter().copied().fold(0.0, f64::max),
        "peak_mb": common::peak_mb(),
    });
    if let Some(format) = only {
        line["format"] = format.to_string().into();
        line["rows"] = rows.into();
        line["rows_per_s"] = common::median(row_rates).into();
    }
    if only == Some(OutputFormat::Pdf) {
        line["pages"] = pages.into();
        line["pages_per_s"] = common::median(page_rates).into();
    }
    common::report(line);
}
