//! One big workbook: the first 100,000 NYC flights of 2013, with a grand total, a chart and a
//! conditional style, streamed in constant-memory mode.
//!
//! Run with `cargo bench -p mad-render --bench big_xlsx`; prints the seconds, rows/s, the
//! workbook's size and the process's peak memory (VmHWM from /proc/self/status) after loading
//! and after rendering. The bound to keep is a peak under 300 MB.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]

use std::time::Instant;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ChartDef, ChartKind, ColumnDef, ConditionalStyle, FilterSet, Locale, Placeholders,
    RenderJob, Renderer, ReportDef,
};
use mad_render::XlsxRenderer;

const FLIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/flights/flights.csv.gz"
);
const ROWS: usize = 100_000;
const LIMIT_MB: f64 = 300.0;

/// The peak resident memory of this process so far, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn report() -> ReportDef {
    let mut report = ReportDef::new("flights", "NYC flights 2013");
    report.columns = [
        "year", "month", "day", "carrier", "flight", "tailnum", "origin", "dest",
    ]
    .into_iter()
    .map(ColumnDef::new)
    .collect();
    report.columns.push(
        ColumnDef::new("dep_delay")
            .total(Aggregate::Avg)
            .style(ConditionalStyle::new("> 60").with_color("#C00000")),
    );
    report
        .columns
        .push(ColumnDef::new("arr_delay").total(Aggregate::Avg));
    report.columns.push(ColumnDef::new("air_time"));
    report.columns.push(
        ColumnDef::new("distance")
            .format("#,##0")
            .total(Aggregate::Sum),
    );
    report.charts = vec![
        ChartDef::new(ChartKind::Bar, "carrier", "distance"),
        ChartDef::new(ChartKind::Line, "month", "dep_delay").with_aggregate(Aggregate::Avg),
    ];
    report
}

fn main() {
    let started = Instant::now();
    let mut options = CsvOptions::new(FLIGHTS);
    options.null_values = vec!["NA".to_string()];
    let all = read_csv(&options).expect("the flights CSV loads");
    let rows: Vec<usize> = (0..all.len().min(ROWS)).collect();
    let table = all.select(&rows);
    println!(
        "loaded {} of {} flights in {:.2} s; peak memory {:.0} MB",
        table.len(),
        all.len(),
        started.elapsed().as_secs_f64(),
        peak_mb()
    );

    let report = report();
    let placeholders = Placeholders::new();
    let locale = Locale::default();
    let filters = FilterSet::all();
    let job = RenderJob {
        report: &report,
        table: &table,
        placeholders: &placeholders,
        locale: &locale,
        filters: &filters,
        deterministic: true,
        created_at: 0,
    };
    let renderer = XlsxRenderer::new();
    let started = Instant::now();
    let bytes = renderer.render(&job).expect("the workbook renders");
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_mb();
    println!(
        "rendered {} rows x {} columns in {seconds:.2} s, {:.0} rows/s, {:.1} MB; peak memory \
         {peak:.0} MB (bound {LIMIT_MB:.0} MB: {})",
        table.len(),
        report.columns.len(),
        table.len() as f64 / seconds,
        bytes.len() as f64 / 1e6,
        if peak < LIMIT_MB { "kept" } else { "EXCEEDED" }
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "big_xlsx", "rows": table.len(), "columns": report.columns.len(),
            "seconds": seconds, "size_mb": bytes.len() as f64 / 1e6, "peak_mb": peak,
        })
    );
    assert!(
        peak < LIMIT_MB,
        "peak memory {peak:.0} MB exceeds {LIMIT_MB} MB"
    );
}
