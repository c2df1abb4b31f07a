//! The PDF renderer, read back with independent tools: poppler's `pdftotext`, `pdfinfo` and
//! `pdffonts`, and `qpdf --check`. Expected totals are computed here from the CSV file with the
//! `csv` crate, not through mad-core.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mad_core::report::{Orientation, PageSize};
use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, ErrorKind, Field, FieldKind, Filter, FilterSet, Locale,
    Placeholders, RenderJob, Renderer, ReportDef, Schema, Table, Value,
};
use mad_render::PdfRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);
const RECIPIENT: &str = "Zoë Łukasiewicz-Σπύρου";

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("-v").output().is_ok();
    assert!(
        found,
        "`{name}` is missing: run scripts/setup-test-env to install poppler-utils and qpdf"
    );
    Command::new(name)
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the tool starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the tool prints UTF-8")
}

fn pdftotext(pdf: &Path, page: Option<usize>) -> String {
    let mut command = tool("pdftotext");
    command.arg("-layout").arg("-enc").arg("UTF-8");
    if let Some(page) = page {
        command.args(["-f", &page.to_string(), "-l", &page.to_string()]);
    }
    run(command.arg(pdf).arg("-"))
}

fn pdfinfo(pdf: &Path) -> BTreeMap<String, String> {
    run(tool("pdfinfo").arg(pdf))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn page_count(pdf: &Path) -> usize {
    pdfinfo(pdf)["Pages"].parse().expect("a page count")
}

fn qpdf_check(pdf: &Path) {
    let out = run(tool("qpdf").arg("--check").arg(pdf));
    assert!(out.contains("No syntax or stream encoding errors"), "{out}");
}

fn superstore() -> Table {
    read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore orders load")
}

fn orders_report() -> ReportDef {
    let mut report = ReportDef::new("orders", "Orders for {recipient.name}");
    report.subtitle = Some("Superstore, by state".into());
    report.group_by = vec!["State".into()];
    report.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name"),
        ColumnDef::new("Product Name"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    report
}

fn placeholders() -> Placeholders {
    Placeholders::new()
        .with("recipient.name", RECIPIENT)
        .with("run.date", "2026-12-04")
}

struct Rendered {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

fn render_with(
    renderer: &PdfRenderer,
    report: &ReportDef,
    table: &Table,
    filters: &FilterSet,
    deterministic: bool,
) -> mad_core::Result<Rendered> {
    let placeholders = placeholders();
    let locale = Locale::new("en-US");
    let job = RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &locale,
        filters,
        deterministic,
    };
    let bytes = renderer.render(&job)?;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &bytes).expect("the PDF is written");
    Ok(Rendered {
        _dir: dir,
        path,
        bytes,
    })
}

fn render(report: &ReportDef, table: &Table, filters: &FilterSet) -> Rendered {
    render_with(&PdfRenderer::new(), report, table, filters, false).expect("the report renders")
}

/// Sums of Sales, Quantity and Profit per State for one Region, read straight from the CSV.
fn sums_by_state(region: &str) -> BTreeMap<String, [f64; 3]> {
    let mut reader = csv::Reader::from_path(SUPERSTORE).expect("the CSV opens");
    let headers = reader.headers().expect("a header row").clone();
    let at = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (r, s, sales, qty, profit) = (
        at("Region"),
        at("State"),
        at("Sales"),
        at("Quantity"),
        at("Profit"),
    );
    let mut sums: BTreeMap<String, [f64; 3]> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("a CSV record");
        if &record[r] != region {
            continue;
        }
        let entry = sums.entry(record[s].to_string()).or_default();
        for (slot, col) in entry.iter_mut().zip([sales, qty, profit]) {
            *slot += record[col].parse::<f64>().expect("a number");
        }
    }
    sums
}

/// Reads `#,##0.00` as written for en-US: `-1,234.50`.
fn parse_money(text: &str) -> f64 {
    let digits = text.replace(',', "");
    let (int, frac) = digits
        .split_once('.')
        .unwrap_or_else(|| panic!("not #,##0.00: {text}"));
    assert_eq!(frac.len(), 2, "two decimals in {text}");
    let (negative, int) = match int.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, int),
    };
    assert!(int.bytes().all(|b| b.is_ascii_digit()), "{text}");
    let value: f64 = format!("{int}.{frac}")
        .parse()
        .unwrap_or_else(|_| panic!("{text}"));
    if negative { -value } else { value }
}

/// The last three numbers of a totals line equal `expected` to the cent (the sums are added
/// in a different order here, so the last cent may round the other way).
fn assert_last_numbers(line: &str, expected: &[f64; 3]) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let shown = &words[words.len() - 3..];
    for (text, want) in shown.iter().zip(expected) {
        let got = parse_money(text);
        assert!(
            (got - want).abs() < 0.011,
            "want {want:.4}, got {text} in {line}"
        );
    }
}

fn south() -> (Table, FilterSet) {
    let filters = FilterSet::from_filters([Filter::new("Region", ["South"])]);
    let table = filters.apply(&superstore()).expect("the filter applies");
    (table, filters)
}

#[test]
fn every_page_has_its_number_the_header_and_the_footer_date() {
    let (table, filters) = south();
    let pdf = render(&orders_report(), &table, &filters);

    let pages = page_count(&pdf.path);
    assert!(pages > 5, "{pages} pages");
    for page in 1..=pages {
        let text = pdftotext(&pdf.path, Some(page));
        assert!(
            text.contains(&format!("Page {page} of {pages}")),
            "page {page}: {text}"
        );
        let header = text
            .lines()
            .find(|l| l.contains("Order ID"))
            .unwrap_or_else(|| panic!("page {page} has no header row: {text}"));
        for column in [
            "Order Date",
            "Customer Name",
            "Product Name",
            "Sales",
            "Quantity",
            "Profit",
        ] {
            assert!(header.contains(column), "page {page} header: {header}");
        }
        assert!(text.contains("Run date: 2026-12-04"), "page {page}");
    }
    qpdf_check(&pdf.path);
    assert_nothing_overlaps_the_footer(&pdf.path);
}

#[test]
fn title_filters_subtotals_and_grand_total_match_the_csv() {
    let (table, filters) = south();
    let pdf = render(&orders_report(), &table, &filters);
    let text = pdftotext(&pdf.path, None);

    assert!(
        text.contains(&format!("Orders for {RECIPIENT}")),
        "{text:.600}"
    );
    assert!(text.contains("Superstore, by state"));
    assert!(text.contains("Filters: Region = South"));

    let sums = sums_by_state("South");
    for (state, expected) in &sums {
        let line = text
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("Total State: {state} ("))
            })
            .unwrap_or_else(|| panic!("no subtotal for {state}"));
        assert_last_numbers(line, expected);
    }

    let grand: [f64; 3] = sums
        .values()
        .fold([0.0; 3], |a, s| [a[0] + s[0], a[1] + s[1], a[2] + s[2]]);
    let rows = table.len();
    let line = text
        .lines()
        .find(|l| l.contains("Grand total ("))
        .expect("a grand total row");
    assert!(
        line.contains(&format!("{},{:03} rows", rows / 1000, rows % 1000)),
        "{line}"
    );
    assert_last_numbers(line, &grand);
    let totals = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Totals: Sales: "))
        .expect("a totals line");
    let sales = totals.split_whitespace().next().unwrap_or_default();
    assert!(
        (parse_money(sales) - grand[0]).abs() < 0.011,
        "{sales} vs {}",
        grand[0]
    );
}

#[test]
fn the_font_is_embedded_as_a_unicode_subset() {
    let (table, filters) = south();
    let pdf = render(&orders_report(), &table.select(&[0, 1, 2]), &filters);
    let fonts = run(tool("pdffonts").arg(&pdf.path));
    let rows: Vec<&str> = fonts.lines().filter(|l| l.contains("DejaVuSans")).collect();
    assert_eq!(rows.len(), 2, "{fonts}");
    for row in rows {
        let name = row.split_whitespace().next().unwrap_or_default();
        let (tag, _) = name.split_once('+').expect("a subset tag");
        assert!(
            tag.len() == 6 && tag.chars().all(|c| c.is_ascii_uppercase()),
            "{row}"
        );
        assert!(row.contains("CID TrueType"), "{row}");
        assert!(row.contains("Identity-H"), "{row}");
        let flags: Vec<&str> = row.split_whitespace().rev().skip(2).take(3).collect();
        assert_eq!(flags, ["yes", "yes", "yes"], "uni, sub, emb in {row}");
    }
    assert!(pdf.bytes.len() < 120_000, "{} bytes", pdf.bytes.len());
}

fn cities_table(cities: &[&str]) -> Table {
    let schema = Schema::new(vec![
        Field::new("City", FieldKind::Text),
        Field::new("Sales", FieldKind::Number),
    ]);
    let mut city = ColumnBuilder::default();
    let mut sales = ColumnBuilder::default();
    for (i, c) in cities.iter().enumerate() {
        city.push(Value::text(*c));
        sales.push(Value::Number(i as f64 * 1000.5));
    }
    Table::new(schema, vec![city.finish(), sales.finish()]).expect("a table")
}

#[test]
fn unicode_text_extracts_exactly() {
    let cities = [
        "Zürich",
        "São Paulo",
        "Łódź",
        "Ελλάδα",
        "Кириллица",
        "Straße – naïve café",
    ];
    let mut report = ReportDef::new("cities", "Städte für {recipient.name}");
    report.columns = vec![
        ColumnDef::new("City"),
        ColumnDef::new("Sales").format("#,##0.00"),
    ];
    let pdf = render(&report, &cities_table(&cities), &FilterSet::all());

    let text = pdftotext(&pdf.path, None);
    assert!(text.contains(&format!("Städte für {RECIPIENT}")), "{text}");
    for city in cities {
        assert!(text.contains(city), "{city} in {text}");
    }
    assert!(text.contains("5,002.50"), "{text}");
}

#[test]
fn characters_the_font_lacks_still_extract() {
    let cities = ["東京 Tokyo", "北京"];
    let mut report = ReportDef::new("cities", "Cities");
    report.columns = vec![ColumnDef::new("City")];
    let pdf = render(&report, &cities_table(&cities), &FilterSet::all());

    let text = pdftotext(&pdf.path, None);
    for city in cities {
        assert!(text.contains(city), "{city} in {text}");
    }
    qpdf_check(&pdf.path);
}

fn page_size(pdf: &Path) -> (f32, f32) {
    let info = pdfinfo(pdf);
    let size = &info["Page size"];
    let mut numbers = size
        .split_whitespace()
        .filter_map(|w| w.parse::<f32>().ok());
    let width = numbers.next().expect("a width");
    let height = numbers.next().expect("a height");
    (width, height)
}

#[test]
fn page_size_and_orientation_follow_the_report() {
    let table = cities_table(&["Zürich", "Łódź"]);
    let cases = [
        (PageSize::A4, Orientation::Portrait, (595.28, 841.89)),
        (PageSize::A4, Orientation::Landscape, (841.89, 595.28)),
        (PageSize::Letter, Orientation::Portrait, (612.0, 792.0)),
        (PageSize::Letter, Orientation::Landscape, (792.0, 612.0)),
        (PageSize::A3, Orientation::Portrait, (841.89, 1190.55)),
        (PageSize::Legal, Orientation::Portrait, (612.0, 1008.0)),
    ];
    for (size, orientation, (w, h)) in cases {
        let mut report = ReportDef::new("sizes", "Sizes");
        report.page.size = size;
        report.page.orientation = orientation;
        report.page.margin_mm = 10.0;
        let pdf = render(&report, &table, &FilterSet::all());
        let (width, height) = page_size(&pdf.path);
        assert!(
            (width - w).abs() < 0.02 && (height - h).abs() < 0.02,
            "{size:?} {orientation:?}: {width} x {height}"
        );
    }
}

#[test]
fn landscape_needs_fewer_pages_than_portrait_for_wide_rows() {
    let (table, filters) = south();
    let table = table.select(&(0..400).collect::<Vec<_>>());
    let portrait = render(&orders_report(), &table, &filters);
    let mut report = orders_report();
    report.page.orientation = Orientation::Landscape;
    let landscape = render(&report, &table, &filters);
    assert!(page_count(&landscape.path) > 0);
    assert_ne!(page_count(&portrait.path), page_count(&landscape.path));
}

#[test]
fn an_empty_table_says_there_is_no_data() {
    let (table, _) = south();
    let filters = FilterSet::from_filters([Filter::new("Region", ["Nowhere"])]);
    let empty = table.filter_rows(|_| false);
    let pdf = render(&orders_report(), &empty, &filters);

    let text = pdftotext(&pdf.path, None);
    assert!(text.contains("No data for these filters."), "{text}");
    assert!(text.contains("Filters: Region = Nowhere"), "{text}");
    assert!(text.contains("Page 1 of 1"), "{text}");
    assert!(!text.contains("Grand total"), "{text}");
    qpdf_check(&pdf.path);
}

#[test]
fn deterministic_renders_are_byte_identical() {
    let (table, filters) = south();
    let renderer = PdfRenderer::new();
    let report = orders_report();
    let first = render_with(&renderer, &report, &table, &filters, true).unwrap();
    let second = render_with(&renderer, &report, &table, &filters, true).unwrap();
    assert!(
        first.bytes == second.bytes,
        "two deterministic renders differ"
    );
    let info = pdfinfo(&first.path);
    assert!(info["CreationDate"].contains("2000"), "{info:?}");
    assert_eq!(info["Title"], format!("Orders for {RECIPIENT}"));
    assert!(info["Producer"].starts_with("mad-render "), "{info:?}");

    let third = render_with(&renderer, &report, &table, &filters, false).unwrap();
    let fourth = render_with(&renderer, &report, &table, &filters, false).unwrap();
    assert!(
        third.bytes != fourth.bytes,
        "ordinary renders get their own file id"
    );
}

#[test]
fn compression_levels_all_give_valid_files() {
    let (table, filters) = south();
    let table = table.select(&(0..200).collect::<Vec<_>>());
    let mut sizes = Vec::new();
    for level in [0, 1, 6, 9] {
        let renderer = PdfRenderer::new().with_compression(level).build().unwrap();
        let pdf = render_with(&renderer, &orders_report(), &table, &filters, true).unwrap();
        qpdf_check(&pdf.path);
        assert!(pdftotext(&pdf.path, None).contains("Grand total"));
        sizes.push(pdf.bytes.len());
    }
    assert!(sizes[0] > sizes[1] && sizes[1] >= sizes[3], "{sizes:?}");
}

#[test]
fn nested_groups_get_headers_and_subtotals_per_level() {
    let mut report = orders_report();
    report.group_by = vec!["Region".into(), "State".into()];
    let table = superstore();
    let table = table.select(&(0..300).collect::<Vec<_>>());
    let pdf = render(&report, &table, &FilterSet::all());
    let text = pdftotext(&pdf.path, None);
    assert!(text.contains("Region: South"), "{text:.2000}");
    assert!(text.contains("State: Kentucky"));
    assert!(text.contains("Total Region: South ("));
    assert!(text.contains("Total State: Kentucky ("));
    qpdf_check(&pdf.path);
}

#[test]
fn long_and_odd_cells_neither_crash_nor_break_the_file() {
    let huge = "Lorem ipsum dolor sit amet ".repeat(2_000);
    let unbroken = "X".repeat(5_000);
    let cities = [
        huge.as_str(),
        unbroken.as_str(),
        "tab\there\r\nnew line",
        "",
        "😀 emoji",
    ];
    let mut report = ReportDef::new("odd", "Odd cells");
    report.columns = vec![ColumnDef::new("City"), ColumnDef::new("Sales")];
    let pdf = render(&report, &cities_table(&cities), &FilterSet::all());
    qpdf_check(&pdf.path);
    let text = pdftotext(&pdf.path, None);
    assert!(text.contains('…'), "long cells are cut with an ellipsis");
    assert!(text.contains("😀 emoji"), "{text:.300}");
    assert_nothing_overlaps_the_footer(&pdf.path);
}

/// Every word but the footer's ends above the footer (A4, 15 mm margins, 9 pt text).
fn assert_nothing_overlaps_the_footer(pdf: &Path) {
    let html = run(tool("pdftotext").arg("-bbox").arg(pdf).arg("-"));
    let footer_top = 841.89 - 15.0 * 72.0 / 25.4 - 15.0;
    let mut words = 0;
    for line in html.lines().filter(|l| l.trim_start().starts_with("<word")) {
        let attr = |name: &str| -> f32 {
            let start = line.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
            let end = start + line[start..].find('"').expect("a closing quote");
            line[start..end].parse().expect("a number")
        };
        let word = line.split('>').nth(1).unwrap_or_default();
        if attr("yMin") > footer_top {
            assert!(
                ["Page", "of", "Run", "date:"].contains(&word.trim_end_matches("</word"))
                    || word.starts_with(|c: char| c.is_ascii_digit()),
                "{line}"
            );
            continue;
        }
        assert!(
            attr("yMax") <= footer_top + 1.0,
            "overlaps the footer: {line}"
        );
        words += 1;
    }
    assert!(words > 100, "{words} words above the footer");
}

#[test]
fn bad_settings_are_clear_errors() {
    let table = cities_table(&["Zürich"]);
    let report = ReportDef::new("r", "Title");
    let all = FilterSet::all();

    let err = PdfRenderer::new().with_compression(12).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.backend(), Some("pdf"));
    assert!(err.to_string().contains("compression level"), "{err}");

    let err = PdfRenderer::new()
        .with_font_size(f32::NAN)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("font size"), "{err}");
    let err = render_with(
        &PdfRenderer::new().with_font_size(100.0),
        &report,
        &table,
        &all,
        true,
    )
    .err()
    .expect("an oversized font is refused");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);

    let mut narrow = report.clone();
    narrow.page.margin_mm = 120.0;
    let err = render_with(&PdfRenderer::new(), &narrow, &table, &all, true)
        .err()
        .unwrap();
    assert!(err.to_string().contains("margins"), "{err}");

    let typo = ReportDef::new("r", "For {recipent.name}");
    let err = render_with(&PdfRenderer::new(), &typo, &table, &all, true)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("recipent.name"), "{err}");

    let mut missing = report.clone();
    missing.columns = vec![ColumnDef::new("Revenue")];
    let err = render_with(&PdfRenderer::new(), &missing, &table, &all, true)
        .err()
        .unwrap();
    assert!(err.to_string().contains("'Revenue'"), "{err}");

    let mut hint = report;
    hint.columns = vec![ColumnDef::new("City")];
    hint.columns[0].width = Some(-1.0);
    let err = render_with(&PdfRenderer::new(), &hint, &table, &all, true)
        .err()
        .unwrap();
    assert!(err.to_string().contains("width hint"), "{err}");
}
