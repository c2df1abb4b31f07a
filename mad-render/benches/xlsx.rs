//! A burst of small workbooks: the Superstore orders rendered once per customer.
//!
//! Run with `cargo bench -p mad-render --bench xlsx`; prints workbooks/s and rows/s for a few
//! renderer settings.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]

use std::time::Instant;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnDef, FilterSet, Locale, Placeholders, RenderJob, Renderer, ReportDef, SortKey,
    Table,
};
use mad_render::XlsxRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn report() -> ReportDef {
    let mut report = ReportDef::new("orders", "Orders of {customer}");
    report.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Ship Mode"),
        ColumnDef::new("City"),
        ColumnDef::new("Product Name"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
        ColumnDef::new("Profit")
            .format("$#,##0.00;($#,##0.00)")
            .total(Aggregate::Sum),
    ];
    report.sort = vec![SortKey::asc("Order Date")];
    report
}

/// Renders every slice once; returns (seconds, bytes written).
fn burst(renderer: &XlsxRenderer, report: &ReportDef, slices: &[(String, Table)]) -> (f64, usize) {
    let locale = Locale::default();
    let filters = FilterSet::all();
    let started = Instant::now();
    let mut bytes = 0;
    for (customer, table) in slices {
        let placeholders = Placeholders::new().with("customer", customer.as_str());
        let job = RenderJob {
            report,
            table,
            placeholders: &placeholders,
            locale: &locale,
            filters: &filters,
            deterministic: true,
            created_at: 0,
        };
        bytes += renderer.render(&job).expect("the workbook renders").len();
    }
    (started.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let table = read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore CSV loads");
    let customer = table.require_column("Customer Name").unwrap();
    let slices: Vec<(String, Table)> = table
        .sorted_by(&[(customer, false)])
        .runs_by(customer)
        .into_iter()
        .map(|(name, rows)| (name.as_text().unwrap_or_default().to_string(), rows))
        .collect();
    let rows: usize = slices.iter().map(|(_, t)| t.len()).sum();
    let report = report();
    println!(
        "{} workbooks (one per customer), {rows} rows in all",
        slices.len()
    );

    let full = || XlsxRenderer::new().with_streaming_writer(false);
    let settings = [
        ("streaming writer (default), level 1", XlsxRenderer::new()),
        (
            "streaming writer, level 6",
            XlsxRenderer::new().with_compression_level(6),
        ),
        ("rust_xlsxwriter, level 1", full()),
        ("rust_xlsxwriter, level 6", full().with_compression_level(6)),
        (
            "rust_xlsxwriter constant memory, 6",
            full()
                .with_constant_memory_above(0)
                .with_compression_level(6),
        ),
    ];
    for (name, renderer) in &settings {
        burst(renderer, &report, &slices[..50]); // warm-up
        let (seconds, bytes) = burst(renderer, &report, &slices);
        println!(
            "{name:36} {:8.0} workbooks/s {:9.0} rows/s {:6.3} ms/workbook {:7.0} B/workbook",
            slices.len() as f64 / seconds,
            rows as f64 / seconds,
            seconds * 1000.0 / slices.len() as f64,
            bytes as f64 / slices.len() as f64,
        );
    }

    // The fixed cost of a rust_xlsxwriter workbook: one cell, saved.
    let started = Instant::now();
    for _ in 0..slices.len() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        workbook.add_worksheet().write(0, 0, 1).unwrap();
        workbook.save_to_buffer().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{:32} {:8.0} workbooks/s {:>9} {:6.3} ms/workbook",
        "rust_xlsxwriter one-cell workbook",
        slices.len() as f64 / seconds,
        "",
        seconds * 1000.0 / slices.len() as f64,
    );

    let whole = Instant::now();
    let (seconds, bytes) = burst(
        &XlsxRenderer::new(),
        &report,
        &[(String::from("all"), table)],
    );
    println!(
        "{:32} {:8.3} s for one workbook of {} rows ({bytes} B), {:.0} rows/s (wall {:.3} s)",
        "whole table",
        seconds,
        rows,
        rows as f64 / seconds,
        whole.elapsed().as_secs_f64()
    );
}
