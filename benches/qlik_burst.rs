//! The Superstore burst by State through Qlik: the engine double (in this process, over TLS on
//! localhost) serves the orders as an app, the `qlik` source applies each State as a selection
//! and pages the hypercube. Prints one JSON line with reports per second, the fetches made (one
//! per distinct filter set), the requests the engine served and rows per second fetched (per
//! fetch, summed over the fetches' own durations, and over the whole run).
//!
//!     cargo bench --bench qlik_burst

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mad::qlik::engine::{QlikOptions, QlikSource};
use mad::{Engine, Task};
use mad_qlik_double::{App, QlikDouble};

#[tokio::main]
async fn main() {
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/superstore/superstore.csv");
    let double = QlikDouble::builder()
        .app(App::from_file("superstore", &data).expect("the app loads"))
        .tls()
        .start()
        .await
        .expect("the double starts");
    let dir = common::out_dir();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, double.ca_pem().unwrap_or_default()).expect("the CA is written");
    let mut options = QlikOptions::new(format!("wss://localhost:{}", double.port()), "superstore");
    options.ca_file = Some(ca);
    options.row_key = Some("Row ID".into());
    let source = Arc::new(QlikSource::new(options).expect("the source builds"));

    let out = dir.path().join("out");
    let task = Task::new("qlik burst by State", source)
        .with_report(common::superstore_report("Sales report: {burst}"))
        .with_burst("State")
        .with_channel(common::folder(&out))
        .with_registry(&mad::registry());
    let started = Instant::now();
    let summary = Engine::default().run(&task).await.expect("the run");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.counts.failed, 0, "{}", summary.human());
    let rows: usize = summary.recipients.iter().map(|r| r.rows).sum();
    let fetch_s = summary.durations.fetch_ms as f64 / 1000.0;
    common::report(serde_json::json!({
        "bench": "qlik_burst",
        "recipients": summary.counts.recipients,
        "fetches": summary.counts.fetches,
        "layouts": double.request_count("GetLayout"),
        "hypercube_pages": double.request_count("GetHyperCubeData"),
        "selections": double.request_count("SelectValues"),
        "documents": summary.counts.documents,
        "seconds": seconds,
        "reports_per_s": summary.counts.documents as f64 / seconds,
        "rows_fetched": rows,
        "rows_per_s_fetching": rows as f64 / fetch_s.max(1e-9),
        "rows_per_s": rows as f64 / seconds,
        "peak_mb": common::peak_mb(),
    }));
}
