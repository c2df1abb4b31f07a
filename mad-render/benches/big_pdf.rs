//! Renders 100,000 rows of the flights table as one PDF and prints the time, the pages and
//! the memory the render adds above the loaded table (from /proc/self/status), which must stay
//! under the PDF's size plus 30 MB: pages are written as they are laid out, so memory holds
//! the data, the file and one page. Run with `cargo bench -p mad-render --bench big_pdf`.

#![allow(clippy::print_stdout)]

mod memory;

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
    let after_load = memory::peak_mb();

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
    let baseline = memory::Baseline::now();
    let started = Instant::now();
    let pdf = renderer.render(&job).expect("the report renders");
    let rendered = started.elapsed();
    let peak = memory::peak_mb();
    let growth = baseline.growth_mb();

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
         the process since loading {peak:.0} MB",
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
            "peak_mb": peak, "after_load_mb": after_load, "growth_mb": growth,
            "resident_before_mb": baseline.resident_mb,
        })
    );
    memory::check_growth("big_pdf", &baseline, pdf.len());
}
