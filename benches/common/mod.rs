//! What the benchmarks share: the report the Python reference also writes, a folder channel,
//! peak memory, and one JSON line of results per measurement.

#![allow(dead_code)]

use std::path::Path;

/// The benchmarks run on mimalloc, as an application rendering many reports at once should:
/// with glibc's allocator, allocating and freeing the many small buffers of a burst across
/// threads takes about a tenth of the Customer Name burst's time (measured with `perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mad::{Aggregate, ColumnDef, ExpressionDef, OutputFormat, ReportDef, SortKey, TaskChannel};

/// The content `python_burst.py` writes per recipient: a title, the totals, an 8-column order
/// table with a repeated header and page numbers (PDF), typed cells with a totals row (XLSX).
pub fn superstore_report(title: &str) -> ReportDef {
    let mut r = ReportDef::new("burst", title);
    r.subtitle = Some("Orders: {orders}   Sales: {sales}   Profit: {profit}".into());
    for (name, expr, format) in [
        ("orders", "Count(DISTINCT [Order ID])", "#,##0"),
        ("sales", "Sum([Sales])", "#,##0.00"),
        ("profit", "Sum([Profit])", "#,##0.00"),
    ] {
        r.expressions.insert(
            name.into(),
            ExpressionDef::Formatted {
                expr: expr.into(),
                format: Some(format.into()),
            },
        );
    }
    r.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name"),
        ColumnDef::new("Category"),
        ColumnDef::new("Product Name"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    r.sort = vec![SortKey::asc("Order Date")];
    r.formats = vec![OutputFormat::Pdf, OutputFormat::Xlsx];
    r.file_name = "{recipient.id}".into();
    r
}

/// A folder channel writing into `dir`, replacing what is there.
pub fn folder(dir: &Path) -> TaskChannel {
    let options = serde_json::json!({ "path": dir, "if_exists": "overwrite", "create": true });
    let channel = mad::registry()
        .build_channel("folder", &options, &mad::BuildContext::new(dir))
        .expect("the folder channel builds");
    TaskChannel::new(channel)
}

/// The process's peak resident memory so far, in MB (VmHWM).
pub fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Prints one result as a JSON line, for `benches/run` to collect.
pub fn report(fields: serde_json::Value) {
    #[allow(clippy::print_stdout)]
    {
        println!("{fields}");
    }
}

/// The median of some figures.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// True when `cargo test` runs the benchmark as a smoke test (cargo passes `--bench` only
/// under `cargo bench`): the benchmark then does the least work that still checks it.
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// A fresh output folder under `MAD_BENCH_OUT`, else in memory (`/dev/shm`) where there is
/// one: on this kind of virtual disk creating a file costs most of a millisecond, which would
/// measure the disk rather than the engine. `benches/run` gives the reference the same place.
pub fn out_dir() -> tempfile::TempDir {
    let root = std::env::var_os("MAD_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(Path::new("/dev/shm").to_path_buf()).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(root).expect("a temporary output folder")
}

/// The pages of every PDF in `dir`, as their page trees declare them.
pub fn pdf_pages_in(dir: &Path) -> usize {
    let mut pages = 0;
    for entry in std::fs::read_dir(dir).expect("the output folder") {
        let path = entry.expect("an output file").path();
        if path.extension().is_some_and(|e| e == "pdf") {
            pages += pdf_pages(&std::fs::read(&path).expect("a PDF"));
        }
    }
    pages
}

/// The page count a PDF's page tree declares: the largest `/Count` (the root's).
fn pdf_pages(pdf: &[u8]) -> usize {
    pdf.windows(7)
        .enumerate()
        .filter(|(_, w)| *w == b"/Count ")
        .map(|(at, _)| {
            pdf[at + 7..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0, |n, d| n * 10 + usize::from(d - b'0'))
        })
        .max()
        .expect("a page tree")
}
