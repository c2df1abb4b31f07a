//! The main example end to end, checked with independent readers: for every manager, every
//! row of their CSV and XLSX belongs to their region and nothing of their region is missing;
//! totals equal sums computed here from the source file; the PDF reads back with pdftotext;
//! the e-mail parses as MIME with the PDF attached intact.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calamine::{Data, DataType, Reader, Xlsx};
use mad::{Engine, RunInfo, RunSummary, Status, Workspace};
use support::{Order, cents, pdf_page_text, pdf_pages, superstore};

const MANAGERS: [(&str, &str, &str, &str); 4] = [
    ("east", "East", "Zoë Zürcher", "zoe.zuercher@example.com"),
    (
        "west",
        "West",
        "João São Paulo",
        "joao.sao.paulo@example.com",
    ),
    (
        "central",
        "Central",
        "Łukasz Łódź",
        "lukasz.lodz@example.com",
    ),
    (
        "south",
        "South",
        "Ελένη Παπαδοπούλου",
        "eleni.papadopoulou@example.com",
    ),
];
const RUN_DATE: &str = "2025-12-04";

async fn run_example(out: &Path) -> (RunSummary, RunSummary) {
    let definitions = support::repo().join("examples/regional_sales/workspace.toml");
    let runtime = Workspace::load(&definitions)
        .unwrap()
        .with_output_dir(out)
        .instantiate(&mad::registry())
        .unwrap();
    let engine = Engine::default();
    let run = |id: &str| RunInfo::at(id, 1_764_849_600.0); // 2025-12-04 12:00 UTC
    let regional = engine
        .run_as(
            &runtime.task("regional").await.unwrap(),
            run("regional-test"),
        )
        .await
        .unwrap();
    let states = engine
        .run_as(&runtime.task("states").await.unwrap(), run("states-test"))
        .await
        .unwrap();
    (regional, states)
}

/// Multiset key of an order line: order, product, sales in cents.
fn key(order: &str, product: &str, sales: f64) -> (String, String, i64) {
    (order.to_string(), product.to_string(), cents(sales))
}

fn expected(orders: &[Order], region: &str) -> BTreeMap<(String, String, i64), usize> {
    let mut keys = BTreeMap::new();
    for o in orders.iter().filter(|o| o.get("Region") == region) {
        *keys
            .entry(key(
                o.get("Order ID"),
                o.get("Product Name"),
                o.number("Sales"),
            ))
            .or_default() += 1;
    }
    keys
}

fn file(dir: &Path, region: &str, ext: &str) -> PathBuf {
    dir.join(format!("{region} sales {RUN_DATE}.{ext}"))
}

fn check_csv(path: &Path, region: &str, orders: &[Order]) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (order, product, sales) = (col("Order ID"), col("Product"), col("Sales"));
    let mut got = BTreeMap::new();
    let mut total = 0.0;
    for record in reader.records() {
        let r = record.unwrap();
        let s: f64 = r[sales].parse().unwrap();
        total += s;
        *got.entry(key(&r[order], &r[product], s)).or_default() += 1;
    }
    assert_eq!(
        got,
        expected(orders, region),
        "{region}: CSV rows differ from the source rows"
    );
    let want: f64 = orders
        .iter()
        .filter(|o| o.get("Region") == region)
        .map(|o| o.number("Sales"))
        .sum();
    assert_eq!(cents(total), cents(want));
}

fn is_order_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14 && b[2] == b'-' && b[7] == b'-' && b[8..].iter().all(u8::is_ascii_digit)
}

fn check_xlsx(path: &Path, region: &str, orders: &[Order]) {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
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
            .unwrap()
    };
    let (order, date, product, sales) = (
        col("Order ID"),
        col("Order Date"),
        col("Product"),
        col("Sales"),
    );
    let mut got = BTreeMap::new();
    let mut total = 0.0;
    for row in &rows[header + 1..] {
        let id = row[order].to_string();
        if !is_order_id(&id) {
            continue;
        }
        let Data::Float(s) = row[sales] else {
            panic!("{region}: Sales is not a number cell: {:?}", row[sales]);
        };
        assert!(
            row[date].is_datetime(),
            "{region}: Order Date is not a date cell: {:?}",
            row[date]
        );
        total += s;
        *got.entry(key(&id, &row[product].to_string(), s))
            .or_default() += 1;
    }
    assert_eq!(
        got,
        expected(orders, region),
        "{region}: XLSX rows differ from the source rows"
    );
    let want: f64 = orders
        .iter()
        .filter(|o| o.get("Region") == region)
        .map(|o| o.number("Sales"))
        .sum();
    assert_eq!(cents(total), cents(want));
    // The grand total is the last row with a Sales number that is not an order line (its
    // label is in the recipient's language).
    let grand = rows
        .iter()
        .rev()
        .find(|r| r[sales].as_f64().is_some())
        .filter(|r| !is_order_id(&r[order].to_string()))
        .expect("a totals row after the orders");
    let shown = grand[sales].as_f64().expect("the Sales total is a number");
    assert_eq!(cents(shown), cents(want), "{region}: grand total");
}

fn check_pdf(path: &Path, region: &str, name: &str) {
    let pages = pdf_pages(path);
    assert!(pages > 1, "{region}: a regional report spans pages");
    for page in 1..=pages {
        let text = pdf_page_text(path, page);
        assert!(
            text.contains(&format!("Page {page} of {pages}")),
            "{region} page {page}: no page number"
        );
        assert!(
            text.contains("Order ID"),
            "{region} page {page}: the header is not repeated"
        );
    }
    let first = pdf_page_text(path, 1);
    assert!(
        first.contains(&format!("Sales {region}")),
        "{region}: title missing in {first}"
    );
    assert!(first.contains(name), "{region}: recipient name missing");
}

fn check_mail(outbox: &Path, email: &str, region: &str, pdf: &Path) {
    let messages: Vec<Vec<u8>> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let parsed: Vec<_> = messages
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(m)
                .expect("MIME")
        })
        .filter(|m| m.to().and_then(|t| t.first()).and_then(|a| a.address()) == Some(email))
        .collect();
    assert_eq!(parsed.len(), 1, "exactly one e-mail to {email}");
    let mail = &parsed[0];
    assert!(mail.subject().unwrap().contains(region));
    let html = mail.body_html(0).expect("an HTML body");
    assert!(html.contains(&format!("Sales {region}")), "{region}: body");
    let attachment = mail.attachments().next().expect("the PDF attachment");
    assert_eq!(
        attachment.contents(),
        std::fs::read(pdf).unwrap(),
        "{region}: attached PDF differs"
    );
}

#[tokio::test]
async fn every_manager_gets_exactly_their_region() {
    let dir = tempfile::tempdir().unwrap();
    let (regional, states) = run_example(dir.path()).await;

    assert_eq!(regional.counts.delivered, 4, "{}", regional.human());
    assert_eq!(regional.counts.skipped, 1, "{}", regional.human());
    let north = regional.outcome("north").unwrap();
    assert_eq!(north.status, Status::Skipped);
    assert!(
        north.reason.as_deref().unwrap().contains("North"),
        "{north:?}"
    );

    let orders = superstore();
    let reports = dir.path().join("reports");
    for (_, region, name, email) in MANAGERS {
        check_csv(&file(&reports, region, "csv"), region, &orders);
        check_xlsx(&file(&reports, region, "xlsx"), region, &orders);
        check_pdf(&file(&reports, region, "pdf"), region, name);
        check_mail(
            &dir.path().join("outbox"),
            email,
            region,
            &file(&reports, region, "pdf"),
        );
    }
    assert!(!file(&reports, "North", "pdf").exists());

    assert_eq!(states.counts.recipients, 49, "{}", states.human());
    assert_eq!(states.counts.delivered, 49);
    let written = std::fs::read_dir(dir.path().join("states"))
        .unwrap()
        .count();
    assert_eq!(written, 98, "a PDF and an XLSX per State");
}
