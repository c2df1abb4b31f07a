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

/// What an XLSX report holds, read back cell by cell: its order lines (as multiset keys) and
/// its totals rows (label; Sales, Quantity and Profit in cents), in order.
struct Workbook {
    lines: BTreeMap<(String, String, i64), usize>,
    totals: Vec<(String, [i64; 3])>,
}

fn read_xlsx(path: &Path, what: &str) -> Workbook {
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
    let (order, date, product) = (col("Order ID"), col("Order Date"), col("Product"));
    let measures = [col("Sales"), col("Quantity"), col("Profit")];
    let mut book = Workbook {
        lines: BTreeMap::new(),
        totals: Vec::new(),
    };
    for row in &rows[header + 1..] {
        let id = row[order].to_string();
        let numbers = measures.map(|m| row[m].as_f64());
        if !is_order_id(&id) {
            if let [Some(sales), Some(quantity), Some(profit)] = numbers {
                book.totals
                    .push((id, [cents(sales), cents(quantity), cents(profit)]));
            }
            continue;
        }
        let Data::Float(s) = row[measures[0]] else {
            panic!("{what}: Sales is not a number cell: {:?}", row[measures[0]]);
        };
        assert!(
            row[date].is_datetime(),
            "{what}: Order Date is not a date cell: {:?}",
            row[date]
        );
        *book
            .lines
            .entry(key(&id, &row[product].to_string(), s))
            .or_default() += 1;
    }
    book
}

/// Sales, Quantity and Profit summed from the source rows, in cents.
fn sums<'a>(orders: impl Iterator<Item = &'a Order>) -> [i64; 3] {
    let mut sums = [0.0; 3];
    for o in orders {
        for (sum, field) in sums.iter_mut().zip(["Sales", "Quantity", "Profit"]) {
            *sum += o.number(field);
        }
    }
    sums.map(cents)
}

fn check_xlsx(path: &Path, region: &str, orders: &[Order]) {
    let book = read_xlsx(path, region);
    assert_eq!(
        book.lines,
        expected(orders, region),
        "{region}: XLSX rows differ from the source rows"
    );
    // A subtotal per State, in the report's order (by State), then the grand total; their
    // labels are in the recipient's language, so only the State names are compared.
    let mine: Vec<&Order> = orders
        .iter()
        .filter(|o| o.get("Region") == region)
        .collect();
    let mut states: Vec<&str> = mine.iter().map(|o| o.get("State")).collect();
    states.sort_unstable();
    states.dedup();
    assert_eq!(
        book.totals.len(),
        states.len() + 1,
        "{region}: {:?}",
        book.totals
    );
    for ((label, shown), state) in book.totals.iter().zip(&states) {
        assert!(
            label.ends_with(state),
            "{region}: {label} is not {state}'s subtotal"
        );
        let want = sums(mine.iter().copied().filter(|o| o.get("State") == *state));
        assert_eq!(*shown, want, "{region}: subtotal of {state}");
    }
    let (_, grand) = book.totals.last().unwrap();
    assert_eq!(*grand, sums(mine.iter().copied()), "{region}: grand total");
}

/// One State's report of the burst: exactly that State's order lines, and its totals.
fn check_state_xlsx(path: &Path, state: &str, orders: &[Order]) {
    let book = read_xlsx(path, state);
    let mine: Vec<&Order> = orders.iter().filter(|o| o.get("State") == state).collect();
    let mut want = BTreeMap::new();
    for o in &mine {
        *want
            .entry(key(
                o.get("Order ID"),
                o.get("Product Name"),
                o.number("Sales"),
            ))
            .or_default() += 1;
    }
    assert_eq!(
        book.lines, want,
        "{state}: XLSX rows differ from the source rows"
    );
    let (_, grand) = book.totals.last().expect("a grand total");
    assert_eq!(*grand, sums(mine.iter().copied()), "{state}: grand total");
}

/// "Page X of Y" in the language of the region's manager (`managers.csv`).
fn page_number(region: &str, page: usize, pages: usize) -> String {
    match region {
        "East" => format!("Seite {page} von {pages}"),
        "West" => format!("Página {page} de {pages}"),
        "Central" => format!("Strona {page} z {pages}"),
        _ => format!("Page {page} of {pages}"),
    }
}

fn check_pdf(path: &Path, region: &str, name: &str) {
    let pages = pdf_pages(path);
    assert!(pages > 1, "{region}: a regional report spans pages");
    for page in 1..=pages {
        let text = pdf_page_text(path, page);
        assert!(
            text.contains(&page_number(region, page, pages)),
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
    let mut states: Vec<&str> = orders.iter().map(|o| o.get("State")).collect();
    states.sort_unstable();
    states.dedup();
    assert_eq!(states.len(), 49);
    for state in states {
        check_state_xlsx(
            &dir.path().join("states").join(format!("{state}.xlsx")),
            state,
            &orders,
        );
    }
}

/// The example program itself, as the README runs it, as `cargo test --all-targets` (the
/// test command of the README and CI) builds it beside this test: `examples/regional_sales`
/// after `cargo build --example`, else `examples/regional_sales-<hash>`; the newest.
fn example_program() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples");
    let name = format!("regional_sales{}", std::env::consts::EXE_SUFFIX);
    let built = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let hashed = file
                .strip_prefix("regional_sales-")
                .and_then(|rest| rest.strip_suffix(std::env::consts::EXE_SUFFIX))
                .is_some_and(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()));
            file == name || hashed
        })
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max();
    match built {
        Some((_, program)) => program,
        None => panic!(
            "no regional_sales example in {}: build the examples first (cargo test \
             --all-targets does)",
            dir.display()
        ),
    }
}

#[test]
fn the_example_program_prints_its_summary_writes_json_and_fails_when_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = std::process::Command::new(example_program())
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("regional: 5 recipients: 4 delivered, 1 skipped, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("states: 49 recipients: 49 delivered, 0 skipped, 0 failed"),
        "{stdout}"
    );
    for (task, delivered) in [("regional", 4), ("states", 49)] {
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("summary-{task}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json["counts"]["delivered"], delivered, "{task}: {json}");
        assert_eq!(json["counts"]["failed"], 0, "{task}: {json}");
    }

    // An output folder that cannot be made: a clear message and a failing exit status.
    let blocked = dir.path().join("a file");
    std::fs::write(&blocked, "not a folder").unwrap();
    let run = std::process::Command::new(example_program())
        .arg(blocked.join("out"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with("regional_sales: ") && stderr.contains("a file"),
        "{stderr}"
    );
}
