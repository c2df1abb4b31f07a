//! Big workbooks of the first 100,000 NYC flights of 2013: with a grand total, charts and a
//! conditional style (rust_xlsxwriter in constant-memory mode), and plain (the streaming
//! writer).
//!
//! Run with `cargo bench -p mad-render --bench big_xlsx`; prints per workbook the seconds,
//! rows/s, the workbook's size and the memory the render adds above the loaded table (from
//! /proc/self/status). The bound to keep: that growth stays under the workbook's size plus
//! 30 MB.
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

mod memory;

const FLIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/flights/flights.csv.gz"
);
const ROWS: usize = 100_000;

/// The report with charts and a conditional style, which rust_xlsxwriter writes.
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

/// The same columns and totals without charts or styles, which the streaming writer writes.
fn plain_report() -> ReportDef {
    let mut report = report();
    report.charts.clear();
    for column in &mut report.columns {
        column.style.clear();
    }
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
        memory::peak_mb()
    );
    render("big_xlsx", &report(), &table);
    render("big_xlsx_streaming", &plain_report(), &table);
}

/// Renders one workbook, prints its figures and checks its memory.
fn render(bench: &str, report: &ReportDef, table: &mad_core::Table) {
    let placeholders = Placeholders::new();
    let locale = Locale::default();
    let filters = FilterSet::all();
    let job = RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &locale,
        filters: &filters,
        deterministic: true,
        created_at: 0,
    };
    let renderer = XlsxRenderer::new();
    let baseline = memory::Baseline::now();
    let started = Instant::now();
    let bytes = renderer.render(&job).expect("the workbook renders");
    let seconds = started.elapsed().as_secs_f64();
    let growth = baseline.growth_mb();
    println!(
        "{bench}: rendered {} rows x {} columns in {seconds:.2} s, {:.0} rows/s, {:.1} MB; \
         peak memory of the process {:.0} MB",
        table.len(),
        report.columns.len(),
        table.len() as f64 / seconds,
        bytes.len() as f64 / 1e6,
        memory::peak_mb(),
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": bench, "rows": table.len(), "columns": report.columns.len(),
            "seconds": seconds, "size_mb": bytes.len() as f64 / 1e6, "peak_mb": memory::peak_mb(),
            "growth_mb": growth, "resident_before_mb": baseline.resident_mb,
        })
    );
    memory::check_growth(bench, &baseline, bytes.len());
}
