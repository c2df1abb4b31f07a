//! The regional sales example read from a Qlik app instead of the CSV file: only the orders
//! source definition changes (to a `qlik` source on the engine double serving Superstore),
//! and every manager's XLSX has the same Sales, Quantity and Profit totals as the CSV run.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use calamine::{Data, DataType, Reader, Xlsx};
use mad::{Engine, RunInfo, RunSummary, Status, Workspace};
use mad_qlik_double::{App, Fault, QlikDouble};
use support::cents;

const REGIONS: [&str; 4] = ["East", "West", "Central", "South"];
const TOTALED: [&str; 3] = ["Sales", "Quantity", "Profit"];

fn example_dir() -> std::path::PathBuf {
    support::repo().join("examples/regional_sales")
}

/// The example's definitions with the `[sources.orders]` table replaced by `orders`.
fn with_orders_source(orders: &str) -> String {
    let text = std::fs::read_to_string(example_dir().join("workspace.toml")).unwrap();
    let start = text.find("[sources.orders]").expect("the orders source");
    let end = start
        + text[start..]
            .find("\n[")
            .expect("a table after the orders source")
        + 1;
    format!("{}{orders}\n{}", &text[..start], &text[end..])
}

fn qlik_orders(port: u16, ca: &Path) -> String {
    format!(
        "[sources.orders]\n\
         kind = \"qlik\"\n\
         url = \"wss://localhost:{port}\"\n\
         app = \"superstore\"\n\
         row_key = \"Row ID\"\n\
         ca_file = {ca:?}\n"
    )
}

async fn run_regional(definitions: &str, out: &Path) -> RunSummary {
    let runtime = Workspace::from_toml(definitions, example_dir())
        .unwrap()
        .with_output_dir(out)
        .instantiate(&mad::registry())
        .unwrap();
    let task = runtime.task("regional").await.unwrap();
    let run = RunInfo::at("regional-qlik-test", 1_764_849_600.0); // 2025-12-04 12:00 UTC
    Engine::default().run_as(&task, run).await.unwrap()
}

fn is_order_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14 && b[2] == b'-' && b[7] == b'-' && b[8..].iter().all(u8::is_ascii_digit)
}

/// The order lines and, per totaled column, the sum of the order lines (in cents) and the
/// grand total the sheet shows, read back with calamine.
fn xlsx_totals(path: &Path) -> (usize, BTreeMap<&'static str, (i64, i64)>) {
    let mut book: Xlsx<_> =
        calamine::open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    let header = rows
        .iter()
        .position(|r| r.iter().any(|c| c.get_string() == Some("Order ID")))
        .expect("a header row");
    let col = |name: &str| {
        rows[header]
            .iter()
            .position(|c| c.get_string() == Some(name))
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    let order = col("Order ID");
    let lines: Vec<&&[Data]> = rows[header + 1..]
        .iter()
        .filter(|r| is_order_id(&r[order].to_string()))
        .collect();
    let grand = rows
        .iter()
        .rev()
        .find(|r| r[col("Sales")].as_f64().is_some())
        .filter(|r| !is_order_id(&r[order].to_string()))
        .expect("a totals row after the orders");
    let totals = TOTALED
        .iter()
        .map(|&name| {
            let c = col(name);
            let summed: f64 = lines
                .iter()
                .map(|r| r[c].as_f64().expect("a number cell"))
                .sum();
            let shown = grand[c].as_f64().expect("a total");
            (name, (cents(summed), cents(shown)))
        })
        .collect();
    (lines.len(), totals)
}

#[tokio::test]
async fn the_example_reads_from_qlik_with_the_same_totals_per_recipient() {
    let app = App::from_file(
        "superstore",
        support::repo().join("examples/data/superstore/superstore.csv"),
    )
    .expect("the app loads");
    let double = QlikDouble::builder().app(app).tls().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();

    let csv_text = std::fs::read_to_string(example_dir().join("workspace.toml")).unwrap();
    let qlik_text = with_orders_source(&qlik_orders(double.port(), &ca));
    assert_ne!(csv_text, qlik_text);
    let (csv_out, qlik_out) = (dir.path().join("csv"), dir.path().join("qlik"));
    let by_csv = run_regional(&csv_text, &csv_out).await;
    let by_qlik = run_regional(&qlik_text, &qlik_out).await;

    for summary in [&by_csv, &by_qlik] {
        assert_eq!(summary.counts.delivered, 4, "{}", summary.human());
        assert_eq!(summary.counts.failed, 0, "{}", summary.human());
        let north = summary.outcome("north").unwrap();
        assert_eq!(north.status, Status::Skipped, "{}", summary.human());
        assert!(
            north.reason.as_deref().unwrap().contains("North"),
            "{north:?}"
        );
    }
    for region in REGIONS {
        let name = format!("reports/{region} sales 2025-12-04.xlsx");
        let (csv_lines, csv_totals) = xlsx_totals(&csv_out.join(&name));
        let (qlik_lines, qlik_totals) = xlsx_totals(&qlik_out.join(&name));
        assert!(csv_lines > 0, "{region}: no order lines");
        assert_eq!(qlik_lines, csv_lines, "{region}: order lines");
        assert_eq!(qlik_totals, csv_totals, "{region}: totals (lines, shown)");
        for (column, (summed, shown)) in &qlik_totals {
            assert_eq!(summed, shown, "{region}: {column} total row");
        }
    }
    assert!(
        !qlik_out
            .join("reports/North sales 2025-12-04.xlsx")
            .exists()
    );
    assert!(
        double.request_count("SelectValues") >= REGIONS.len(),
        "each manager's region is a selection in the app"
    );
    let violations = double.violations();
    assert!(
        violations.is_empty(),
        "protocol violations: {violations:#?}"
    );
}

#[tokio::test]
async fn a_fetch_cut_midway_for_one_recipient_delivers_nothing_to_it_and_all_to_the_others() {
    let app = App::from_file(
        "superstore",
        support::repo().join("examples/data/superstore/superstore.csv"),
    )
    .expect("the app loads");
    let double = QlikDouble::builder().app(app).tls().start().await.unwrap();
    double.inject(Fault::DropHyperCubeDataWhileSelected {
        field: "Region".into(),
        value: "West".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
    let orders = format!("{}retries = 1\n", qlik_orders(double.port(), &ca));
    let out = dir.path().join("out");

    let summary = run_regional(&with_orders_source(&orders), &out).await;

    let west = summary.outcome("west").unwrap();
    assert_eq!(west.status, Status::Failed, "{}", summary.human());
    assert!(
        west.errors
            .iter()
            .any(|e| format!("{e:?}").contains("1006")),
        "the error names the dropped socket: {west:?}"
    );
    assert!(west.receipts.is_empty(), "{west:?}");
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    assert!(
        double.request_count("GetHyperCubeData") > 3,
        "the cut fetch was tried again"
    );
    for region in ["East", "Central", "South"] {
        let report = out.join(format!("reports/{region} sales 2025-12-04.xlsx"));
        assert!(xlsx_totals(&report).0 > 0, "{region} was delivered whole");
    }
    let delivered: Vec<String> = walk(&out)
        .into_iter()
        .map(|p| p.strip_prefix(&out).unwrap().display().to_string())
        .collect();
    assert!(
        !delivered.iter().any(|p| p.contains("West")),
        "nothing of West was delivered, not even a part: {delivered:?}"
    );
    let outbox = std::fs::read_dir(out.join("outbox")).unwrap();
    for mail in outbox {
        let text = std::fs::read_to_string(mail.unwrap().path()).unwrap();
        assert!(
            !text.contains("joao.sao.paulo@example.com"),
            "no mail for West"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
