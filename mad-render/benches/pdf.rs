//! Renders the Superstore orders as bursts of PDF reports and prints documents and pages per
//! second: one document per Region (few, long) and one per Customer Name (many, short), each
//! grouped by State with subtotals. Run with `cargo bench -p mad-render --bench pdf`.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnDef, Filter, FilterSet, Locale, Placeholders, RenderJob, Renderer, ReportDef,
    Table,
};
use mad_render::PdfRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);
const ROUNDS: usize = 3;

struct Recipient {
    name: String,
    filters: FilterSet,
    table: Table,
}

fn report() -> ReportDef {
    let mut report = ReportDef::new("orders", "Orders for {recipient.name}");
    report.group_by = vec!["State".into()];
    let money = |field: &str| {
        ColumnDef::new(field)
            .format("#,##0.00")
            .total(Aggregate::Sum)
    };
    report.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name"),
        ColumnDef::new("Product Name"),
        money("Sales"),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
        money("Profit"),
    ];
    report
}

/// One recipient per value of `field`, with the rows its filter selects.
fn burst(orders: &Table, field: &str) -> Vec<Recipient> {
    let col = orders
        .require_column(field)
        .expect("the burst field exists");
    orders
        .distinct(col)
        .into_iter()
        .map(|value| {
            let name = value.as_text().unwrap_or_default().to_string();
            let filters = FilterSet::from_filters([Filter::new(field, [name.clone()])]);
            let table = filters.apply(orders).expect("the filter applies");
            Recipient {
                name,
                filters,
                table,
            }
        })
        .collect()
}

/// The page count a document's page tree declares.
fn pages(pdf: &[u8]) -> usize {
    let at = pdf
        .windows(7)
        .rposition(|w| w == b"/Count ")
        .expect("a page tree");
    let digits = pdf[at + 7..].iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0, |n, d| n * 10 + usize::from(d - b'0'))
}

fn render_all(
    renderer: &PdfRenderer,
    report: &ReportDef,
    recipients: &[Recipient],
) -> (usize, usize) {
    let locale = Locale::new("en-US");
    let (mut bytes, mut page_count) = (0, 0);
    for r in recipients {
        let placeholders = Placeholders::new()
            .with("recipient.name", &r.name)
            .with("run.date", "2026-12-04");
        let job = RenderJob {
            report,
            table: &r.table,
            placeholders: &placeholders,
            locale: &locale,
            filters: &r.filters,
            deterministic: false,
            created_at: 0,
        };
        let pdf = renderer.render(&job).expect("the report renders");
        bytes += pdf.len();
        page_count += pages(&pdf);
    }
    (bytes, page_count)
}

/// The median time of a few rounds on `threads` threads, with the pages and bytes of one.
fn measure(
    renderer: &PdfRenderer,
    report: &ReportDef,
    recipients: &[Recipient],
    threads: usize,
) -> (Duration, usize, usize) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut totals = (0, 0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let share = recipients.len().div_ceil(threads);
        totals = std::thread::scope(|scope| {
            let handles: Vec<_> = recipients
                .chunks(share.max(1))
                .map(|part| scope.spawn(|| render_all(renderer, report, part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a render thread"))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        times.push(started.elapsed());
    }
    times.sort();
    (times[ROUNDS / 2], totals.0, totals.1)
}

fn main() {
    // `cargo bench -p mad-render --bench pdf -- Customer` runs only the matching bursts.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let started = Instant::now();
    let orders = read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore orders load");
    println!(
        "loaded {} orders in {:.2?}",
        orders.len(),
        started.elapsed()
    );
    let report = report();

    for level in [1, 6] {
        let renderer = PdfRenderer::new().with_compression(level);
        // The first document builds the font subsets; later ones reuse them.
        render_all(&renderer, &report, &burst(&orders, "Region")[..1]);
        for field in ["Region", "Customer Name"] {
            if only.as_deref().is_some_and(|o| !field.contains(o)) {
                continue;
            }
            let recipients = burst(&orders, field);
            for threads in [1, 2] {
                let (time, bytes, pages) = measure(&renderer, &report, &recipients, threads);
                let secs = time.as_secs_f64();
                println!(
                    "deflate {level}, by {field:<13} {threads} thread(s): {:>4} documents, {:>5} pages, \
                     {:>6.1} MB in {:>6.3} s = {:>7.1} documents/s, {:>7.1} pages/s",
                    recipients.len(),
                    pages,
                    bytes as f64 / 1e6,
                    secs,
                    recipients.len() as f64 / secs,
                    pages as f64 / secs,
                );
            }
        }
    }
}
