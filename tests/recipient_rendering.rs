//! What each recipient's documents look like when they go through the engine with the real
//! renderers and a folder channel: filters that select no rows give a note in every format
//! (or a skipped recipient), and recipients who share a fetch keep their own locale.

mod support;

use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx};
use mad::{RunSummary, Status, Workspace};
use support::pdf_page_text;

const ORDERS: &str = "\
Region,Category,Product,Order Date,Sales
East,Technology,Phone,2024-03-08,1234.5
East,Technology,Printer,2024-05-17,20000.25
West,Furniture,Chair,2024-03-09,99.75
";

/// A definitions file with one report in every format, written to a folder, for `recipients`.
fn definitions(recipients: &str, on_empty: &str) -> String {
    format!(
        r##"
[sources.orders]
kind = "csv"
path = "orders.csv"

[reports.sales]
title = "Sales of {{recipient.name}}"
formats = ["pdf", "xlsx", "html", "csv"]
file_name = "{{recipient.id}}"
columns = [
  {{ field = "Product" }},
  {{ field = "Order Date", format = "DD MMMM YYYY" }},
  {{ field = "Sales", format = "#,##0.00", total = "sum" }},
]

[channels.folder]
kind = "folder"
path = "reports"
create = true

[[tasks]]
name = "t"
source = "orders"
reports = ["sales"]
channels = ["folder"]
on_empty = "{on_empty}"
{recipients}
"##
    )
}

async fn run(dir: &Path, recipients: &str, on_empty: &str) -> RunSummary {
    std::fs::write(dir.join("orders.csv"), ORDERS).unwrap();
    let text = definitions(recipients, on_empty);
    let ws = Workspace::from_toml(&text, dir)
        .unwrap()
        .with_output_dir(dir.join("out"));
    let runtime = ws.instantiate(&mad::registry()).unwrap();
    let task = runtime.task("t").await.unwrap();
    mad::Engine::default().run(&task).await.unwrap()
}

fn report(dir: &Path, id: &str, ext: &str) -> PathBuf {
    dir.join("out/reports").join(format!("{id}.{ext}"))
}

/// Every cell of the first sheet as text, row by row.
fn xlsx_cells(path: &Path) -> Vec<Vec<String>> {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|row| row.iter().map(Data::to_string).collect())
        .collect()
}

fn xlsx_text(path: &Path) -> String {
    xlsx_cells(path)
        .iter()
        .map(|row| row.join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// East has no furniture: both values exist, so the source returns an empty table rather
/// than refusing the filter.
const NO_ROWS: &str = r#"recipients = [
  { id = "empty", name = "Nobody", filters = [
      { field = "Region", values = ["East"] }, { field = "Category", values = ["Furniture"] } ] },
]"#;

#[tokio::test]
async fn filters_without_rows_render_a_note_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(dir.path(), NO_ROWS, "render").await;
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    let note = "No data for these filters.";

    let pdf = pdf_page_text(&report(dir.path(), "empty", "pdf"), 1);
    assert!(pdf.contains(note), "{pdf}");
    assert!(pdf.contains("Sales of Nobody"), "{pdf}");
    for product in ["Phone", "Printer", "Chair"] {
        assert!(!pdf.contains(product), "{pdf}");
    }

    let cells = xlsx_cells(&report(dir.path(), "empty", "xlsx"));
    let text = xlsx_text(&report(dir.path(), "empty", "xlsx"));
    assert!(text.contains(note), "{text}");
    for product in ["Phone", "Printer", "Chair"] {
        assert!(!text.contains(product), "{text}");
    }
    assert!(
        cells.iter().flatten().all(|c| c.parse::<f64>().is_err()),
        "no number cells: {cells:?}"
    );

    let html = std::fs::read_to_string(report(dir.path(), "empty", "html")).unwrap();
    assert!(html.contains(note), "{html}");
    assert!(!html.contains("<tbody"), "no table rows: {html}");
    for product in ["Phone", "Printer", "Chair"] {
        assert!(!html.contains(product), "{html}");
    }

    let csv = std::fs::read_to_string(report(dir.path(), "empty", "csv")).unwrap();
    assert_eq!(csv, "Product,Order Date,Sales\r\n", "a header and no rows");
}

#[tokio::test]
async fn filters_without_rows_skip_the_recipient_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(dir.path(), NO_ROWS, "skip").await;
    assert_eq!(summary.counts.skipped, 1, "{}", summary.human());
    let outcome = &summary.recipients[0];
    assert_eq!(outcome.status, Status::Skipped);
    let reason = outcome.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("no rows match the filters"), "{reason}");
    assert!(reason.contains("Furniture"), "{reason}");
    assert!(!dir.path().join("out/reports").join("empty.pdf").exists());
}

/// Two recipients with the same filters share one fetch; each still gets their own locale.
const SAME_FILTERS: &str = r#"recipients = [
  { id = "berlin", name = "Berlin", locale = "de-DE", filters = [{ field = "Region", values = ["East"] }] },
  { id = "boston", name = "Boston", locale = "en-US", filters = [{ field = "Region", values = ["East"] }] },
]"#;

/// What one locale's documents must show, and what they must not.
struct Expected {
    id: &'static str,
    shows: [&'static str; 8],
    never: [&'static str; 4],
}

const GERMAN: Expected = Expected {
    id: "berlin",
    shows: [
        "1.234,50",
        "21.234,75",
        "08 März 2024",
        "Gesamtsumme",
        "Filter: ",
        "Summen: ",
        "Seite 1 von 1",
        "Stand: ",
    ],
    never: ["1,234.50", "March", "Grand total", "Page 1"],
};

const ENGLISH: Expected = Expected {
    id: "boston",
    shows: [
        "1,234.50",
        "21,234.75",
        "08 March 2024",
        "Grand total",
        "Filters: ",
        "Totals: ",
        "Page 1 of 1",
        "Run date: ",
    ],
    never: ["1.234,50", "März", "Gesamtsumme", "Seite"],
};

#[tokio::test]
async fn recipients_sharing_a_fetch_keep_their_own_locale() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(dir.path(), SAME_FILTERS, "skip").await;
    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());

    for want in [GERMAN, ENGLISH] {
        let pdf = pdf_page_text(&report(dir.path(), want.id, "pdf"), 1);
        for text in want.shows {
            assert!(
                pdf.contains(text),
                "{}: PDF lacks {text:?}:\n{pdf}",
                want.id
            );
        }
        for text in want.never {
            assert!(!pdf.contains(text), "{}: PDF has {text:?}:\n{pdf}", want.id);
        }

        // The page's own texts: everything but the page number bands, which HTML lacks.
        let html = std::fs::read_to_string(report(dir.path(), want.id, "html")).unwrap();
        for text in &want.shows[..4] {
            assert!(html.contains(text), "{}: HTML lacks {text:?}", want.id);
        }
        assert!(html.contains(want.shows[4].trim_end()), "{}: HTML", want.id);
        for text in want.never {
            assert!(!html.contains(text), "{}: HTML has {text:?}", want.id);
        }

        // Numbers stay number cells with locale-neutral codes; the workbook's own words and
        // the date texts of CSV follow the locale.
        let path = report(dir.path(), want.id, "xlsx");
        let text = xlsx_text(&path);
        assert!(text.contains(want.shows[3]), "{}: XLSX:\n{text}", want.id);
        assert!(text.contains(want.shows[4]), "{}: XLSX:\n{text}", want.id);
        assert!(!text.contains(want.never[2]), "{}: XLSX:\n{text}", want.id);
        assert!(
            xlsx_cells(&path).iter().flatten().any(|c| c == "1234.5"),
            "{}: Sales is a number cell:\n{text}",
            want.id
        );

        let csv = std::fs::read_to_string(report(dir.path(), want.id, "csv")).unwrap();
        assert!(csv.contains(want.shows[2]), "{}: CSV:\n{csv}", want.id);
        assert!(
            csv.contains(",1234.5\r\n"),
            "{}: raw numbers:\n{csv}",
            want.id
        );
    }
}
