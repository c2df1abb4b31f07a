//! Renders 100,000 rows of the flights table as one PDF and prints the time, the pages and the
//! process's peak memory (VmHWM from /proc/self/status), which must stay under 300 MB: pages
//! are written as they are laid out, so memory holds the data, the file and one page.
//! Run with `cargo bench -p mad-render --bench big_pdf`.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnDef, ConditionalStyle, FilterSet, GroupDef, Locale, PageBand, Placeholders,
    RenderJob, Renderer, ReportDef,
};
use mad_render::PdfRenderer;

const FLIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/flights/flights.csv.gz"
);
const ROWS: usize = 100_000;
const MEMORY_LIMIT_MB: f64 = 300.0;

/// The process's peak resident memory in MB.
fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kb / 1024.0
}

fn report() -> ReportDef {
    let mut report = ReportDef::new("flights", "Flights from New York, 2013");
    report.subtitle = Some("Prepared for {recipient.name}".into());
    report.groups = vec![GroupDef::new("carrier"), GroupDef::new("origin")];
    report.footer = Some(
        PageBand::left("{title}")
            .with_center("{recipient.name}")
            .with_right("Page {page} of {pages}"),
    );
    let late = ConditionalStyle::new("> 60").with_color("#c00000");
    report.columns = vec![
        ColumnDef::new("year"),
        ColumnDef::new("month"),
        ColumnDef::new("day"),
        ColumnDef::new("flight"),
        ColumnDef::new("tailnum"),
        ColumnDef::new("dest"),
        ColumnDef::new("dep_delay")
            .total(Aggregate::Avg)
            .format("#,##0.0"),
        ColumnDef::new("arr_delay")
            .total(Aggregate::Avg)
            .format("#,##0.0")
            .style(late),
        ColumnDef::new("air_time")
            .total(Aggregate::Sum)
            .format("#,##0"),
        ColumnDef::new("distance")
            .total(Aggregate::Sum)
            .format("#,##0"),
    ];
    report
}

fn main() {
    let started = Instant::now();
    let mut options = CsvOptions::new(FLIGHTS);
    options.null_values = vec!["NA".into()];
    let flights = read_csv(&options).expect("the flights load");
    let rows: Vec<usize> = (0..ROWS.min(flights.len())).collect();
    let table = flights.select(&rows);
    let loaded = started.elapsed();
    let after_load = peak_memory_mb();

    let report = report();
    let placeholders = Placeholders::new()
        .with("recipient.name", "Operations")
        .with("run.date", "2026-12-04");
    let locale = Locale::new("en-US");
    let filters = FilterSet::all();
    let job = RenderJob {
        report: &report,
        table: &table,
        placeholders: &placeholders,
        locale: &locale,
        filters: &filters,
        deterministic: false,
        created_at: 0,
    };
    let renderer = PdfRenderer::new();
    let started = Instant::now();
    let pdf = renderer.render(&job).expect("the report renders");
    let rendered = started.elapsed();
    let peak = peak_memory_mb();

    let pages = pdf
        .windows(7)
        .rposition(|w| w == b"/Count ")
        .map(|at| {
            pdf[at + 7..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'))
        })
        .unwrap_or(0);
    println!(
        "loaded {} of {} flights in {:.2} s (peak {after_load:.0} MB)",
        table.len(),
        flights.len(),
        loaded.as_secs_f64()
    );
    println!(
        "rendered {} rows: {pages} pages, {:.1} MB in {:.2} s = {:.0} pages/s; peak memory of \
         the process {peak:.0} MB (limit {MEMORY_LIMIT_MB:.0} MB)",
        table.len(),
        pdf.len() as f64 / 1e6,
        rendered.as_secs_f64(),
        pages as f64 / rendered.as_secs_f64(),
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "big_pdf", "rows": table.len(), "pages": pages,
            "seconds": rendered.as_secs_f64(), "size_mb": pdf.len() as f64 / 1e6,
            "peak_mb": peak, "after_load_mb": after_load,
        })
    );
    assert!(
        peak < MEMORY_LIMIT_MB,
        "peak memory {peak:.0} MB is over {MEMORY_LIMIT_MB:.0} MB"
    );
}
