//! Fetch speed of the `qlik` source: 100,000 rows of 6 columns from the engine double over
//! TLS on localhost, paged within the 10,000-cell limit.
//!
//! Run with `cargo bench -p mad-qlik --bench qlik_fetch`; it prints rows per second and the
//! process's peak memory (VmHWM). The double runs in the same process, so the peak includes
//! its copy of the data and its answers.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use mad_core::{
    ColumnBuilder, DataSource, FetchRequest, Field, FieldKind, FilterSet, Query, Schema, Table,
    Value,
};
use mad_qlik::engine::{QlikOptions, QlikSource};
use mad_qlik_double::{App, QlikDouble};

const ROWS: usize = 100_000;

fn table() -> Table {
    let fields = vec![
        Field::new("Row ID", FieldKind::Integer),
        Field::new("Region", FieldKind::Text),
        Field::new("Customer", FieldKind::Text),
        Field::new("Sales", FieldKind::Number),
        Field::new("Quantity", FieldKind::Integer),
        Field::new("Order Date", FieldKind::Date),
    ];
    let mut columns: Vec<ColumnBuilder> = (0..fields.len())
        .map(|_| ColumnBuilder::with_capacity(ROWS))
        .collect();
    let regions = ["Central", "East", "South", "West"];
    for r in 0..ROWS {
        columns[0].push(Value::Number(r as f64));
        columns[1].push(Value::text(regions[r % 4]));
        columns[2].push(Value::text(format!("Customer {}", r % 800)));
        columns[3].push(Value::Number((r % 997) as f64 * 1.25));
        columns[4].push(Value::Number((r % 9 + 1) as f64));
        let day = 45_000 + (r % 1_000) as i64;
        columns[5].push(Value::dual(day as f64, format!("day {day}")));
    }
    let columns = columns.into_iter().map(ColumnBuilder::finish).collect();
    Table::new(Schema::new(fields), columns).expect("the table builds")
}

fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let double = QlikDouble::builder()
            .app(App::new("bench", table()))
            .tls()
            .start()
            .await
            .expect("the double starts");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, double.ca_pem().unwrap_or_default()).expect("the CA is written");
        let mut options = QlikOptions::new(format!("wss://localhost:{}", double.port()), "bench");
        options.ca_file = Some(ca);
        let source = QlikSource::new(options).expect("the source builds");
        let query = Query::default();
        let all = FilterSet::all();

        let before = peak_memory_kb().unwrap_or(0);
        let mut runs = 0u32;
        let start = Instant::now();
        while runs < 3 || start.elapsed() < Duration::from_secs(5) {
            let table = source
                .fetch(FetchRequest::new(&query, &all))
                .await
                .expect("the fetch succeeds");
            assert_eq!(table.len(), ROWS);
            runs += 1;
        }
        let per_run = start.elapsed() / runs;
        let rows_per_second = ROWS as f64 / per_run.as_secs_f64();
        let pages = double.request_count("GetHyperCubeData") / runs as usize;
        let peak = peak_memory_kb().unwrap_or(0);
        println!(
            "qlik fetch: {ROWS} rows x 6 columns, {per_run:.2?} per fetch, {rows_per_second:.0} \
             rows/s, {pages} data pages per fetch ({runs} runs)"
        );
        println!(
            "peak memory (VmHWM): {:.1} MB (before fetching: {:.1} MB)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        );
        // The same as one JSON line, for `benches/run`.
        println!(
            "{{\"bench\":\"qlik_fetch\",\"rows\":{ROWS},\"columns\":6,\"pages\":{pages},\
             \"rows_per_s\":{rows_per_second:.0},\"peak_mb\":{:.1},\"before_mb\":{:.1}}}",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        );
        assert!(double.violations().is_empty());
    });
}
