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
        created_at: 0,
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

#[test]
fn codes_that_look_like_string_delimiters_extract() {
    // Some four hundred letters: their two-byte codes take every value in the low byte,
    // among them the bytes of "(", ")", "\\" and line ends.
    let letters: Vec<char> = ('\u{a1}'..='\u{24f}')
        .filter(|c| c.is_alphanumeric())
        .collect();
    let chunks: Vec<String> = letters.chunks(12).map(|c| c.iter().collect()).collect();
    let cities: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let mut report = ReportDef::new("letters", "Letters");
    report.columns = vec![ColumnDef::new("City")];
    let pdf = render(&report, &cities_table(&cities), &FilterSet::all());

    qpdf_check(&pdf.path);
    let text: String = pdftotext(&pdf.path, None)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for chunk in &chunks {
        assert!(text.contains(chunk.as_str()), "{chunk} in {text}");
    }
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

    // Ordinary renders carry the run's start as their date, so renders of one run are equal
    // too (a resumed run recognises what it wrote), and differ from the fixed-date ones.
    let third = render_with(&renderer, &report, &table, &filters, false).unwrap();
    let fourth = render_with(&renderer, &report, &table, &filters, false).unwrap();
    assert!(third.bytes == fourth.bytes, "renders of one run differ");
    assert!(third.bytes != first.bytes, "the run's date is not written");
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

/// Renders with `locale` instead of en-US.
fn render_in(report: &ReportDef, table: &Table, filters: &FilterSet, locale: &str) -> Rendered {
    let placeholders = placeholders();
    let locale = Locale::new(locale);
    let job = RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &locale,
        filters,
        deterministic: true,
        created_at: 0,
    };
    let bytes = PdfRenderer::new().render(&job).expect("the report renders");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &bytes).expect("the PDF is written");
    Rendered {
        _dir: dir,
        path,
        bytes,
    }
}

/// The words `pdftotext -bbox` finds: text, x min, y min, x max, y max (y grows down).
fn words(pdf: &Path, page: usize) -> Vec<(String, f32, f32, f32, f32)> {
    let page = page.to_string();
    let html = run(tool("pdftotext")
        .args(["-bbox", "-f", &page, "-l", &page])
        .arg(pdf)
        .arg("-"));
    html.lines()
        .filter(|l| l.trim_start().starts_with("<word"))
        .map(|line| {
            let attr = |name: &str| -> f32 {
                let start = line.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
                let end = start + line[start..].find('"').expect("a closing quote");
                line[start..end].parse().expect("a number")
            };
            let text = line
                .split('>')
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches("</word")
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">");
            (text, attr("xMin"), attr("yMin"), attr("xMax"), attr("yMax"))
        })
        .collect()
}

/// The page rendered by `pdftoppm` at `dpi` as RGB pixels, with its width and height.
fn page_pixels(pdf: &Path, page: usize, dpi: u32) -> (Vec<u8>, u32, u32) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let prefix = dir.path().join("page");
    let page = page.to_string();
    run(tool("pdftoppm")
        .args([
            "-png",
            "-r",
            &dpi.to_string(),
            "-f",
            &page,
            "-l",
            &page,
            "-singlefile",
        ])
        .arg(pdf)
        .arg(&prefix));
    let file = std::fs::File::open(prefix.with_extension("png")).expect("the page image");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let channels = info.color_type.samples();
    let rgb = pixels[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| match channels {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    (rgb, info.width, info.height)
}

#[test]
fn cjk_greek_and_cyrillic_extract_exactly_with_a_fallback_font() {
    let cities = [
        "東京",
        "北京市",
        "서울",
        "Ελλάδα",
        "Кириллица",
        "Zürich – 大阪 mixed",
    ];
    let mut report = ReportDef::new("cities", "売上 für {recipient.name}");
    report.columns = vec![
        ColumnDef::new("City"),
        ColumnDef::new("Sales").format("#,##0.00"),
    ];
    report.group_by = vec!["City".into()];
    let pdf = render(&report, &cities_table(&cities), &FilterSet::all());

    let text = pdftotext(&pdf.path, None);
    assert!(text.contains(&format!("売上 für {RECIPIENT}")), "{text}");
    for city in cities {
        assert!(text.contains(city), "{city} in {text}");
        assert!(
            text.contains(&format!("City: {city}")),
            "bold {city} in {text}"
        );
    }
    let fonts = run(tool("pdffonts").arg(&pdf.path));
    let fallback = fonts
        .lines()
        .find(|l| l.contains("DroidSansFallback"))
        .unwrap_or_else(|| panic!("no fallback font: {fonts}"));
    assert!(fallback.contains("CID TrueType"), "{fallback}");
    let flags: Vec<&str> = fallback.split_whitespace().rev().skip(2).take(3).collect();
    assert_eq!(flags, ["yes", "yes", "yes"], "uni, sub, emb in {fallback}");
    assert!(pdf.bytes.len() < 150_000, "{} bytes", pdf.bytes.len());
    qpdf_check(&pdf.path);

    let latin = render(
        &orders_report(),
        &south().0.select(&[0, 1]),
        &FilterSet::all(),
    );
    let fonts = run(tool("pdffonts").arg(&latin.path));
    assert!(
        !fonts.contains("DroidSansFallback"),
        "only when needed: {fonts}"
    );
}

#[test]
fn sections_break_pages_and_every_page_has_its_header_and_footer() {
    let orders = superstore();
    let table = orders.select(&(0..600).collect::<Vec<_>>());
    let mut report = orders_report();
    report.group_by.clear();
    report.groups = vec![
        mad_core::GroupDef::new("Region").with_page_break(),
        mad_core::GroupDef::new("State"),
    ];
    report.header = Some(mad_core::PageBand::left("{title}").with_right("For {recipient.name}"));
    report.footer = Some(
        mad_core::PageBand::left("{filters}")
            .with_center("Confidential")
            .with_right("Page {page} of {pages}"),
    );
    let filters = FilterSet::from_filters([Filter::new(
        "Segment",
        ["Consumer", "Corporate", "Home Office"],
    )]);
    let pdf = render(&report, &table, &filters);

    let pages = page_count(&pdf.path);
    let mut regions_seen = Vec::new();
    for page in 1..=pages {
        let text = pdftotext(&pdf.path, Some(page));
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines[0].contains(&format!("Orders for {RECIPIENT}")),
            "page {page}: {text}"
        );
        assert!(
            lines[0].contains(&format!("For {RECIPIENT}")),
            "page {page}: {text}"
        );
        let last = lines.last().expect("a footer");
        assert!(
            last.contains("Segment = Consumer, Corporate, Home Office"),
            "{last}"
        );
        assert!(last.contains("Confidential"), "{last}");
        assert!(last.contains(&format!("Page {page} of {pages}")), "{last}");
        assert!(
            !text.contains("Run date"),
            "a footer replaces the default one"
        );
        if let Some(at) = lines
            .iter()
            .position(|l| l.trim_start().starts_with("Region: ") && !l.contains("(continued)"))
        {
            let region = lines[at].trim().to_string();
            assert!(!regions_seen.contains(&region), "{region} twice");
            regions_seen.push(region);
            let before = &lines[..at];
            assert!(
                before.iter().all(|l| !l.contains("Total State")),
                "page {page}: a region starts its own page: {text}"
            );
            assert!(
                !text.contains("Total Region") || text.find("Total Region") > text.find(lines[at]),
                "page {page}: {text}"
            );
        }
    }
    assert_eq!(regions_seen.len(), 4, "{regions_seen:?}");
    let all = pdftotext(&pdf.path, None);
    assert!(all.contains("Total Region: "), "subtotals per section");
    assert!(all.contains("Grand total (600 rows)"));
    assert!(all.contains("Filters: Segment = Consumer, Corporate, Home Office"));
    qpdf_check(&pdf.path);
}

#[test]
fn numbers_stand_right_aligned_in_their_columns() {
    let (table, filters) = south();
    let table = table.select(&(0..60).collect::<Vec<_>>());
    let pdf = render(&orders_report(), &table, &filters);
    // Every number of the table in the columns' format (#,##0.00): its left and right edges.
    let is_number = |w: &str| {
        let digits = w.trim_start_matches('-').replace(',', "");
        let decimals = w.rsplit_once('.').map(|(_, d)| d.len());
        decimals == Some(2) && digits.parse::<f64>().is_ok()
    };
    let page = words(&pdf.path, 1);
    let header = page
        .iter()
        .find(|(w, ..)| w == "Profit")
        .map(|(_, _, _, _, y_max)| *y_max)
        .expect("the table header");
    let numbers: Vec<(f32, f32)> = page
        .into_iter()
        .filter(|(w, _, y_min, ..)| *y_min > header && is_number(w))
        .map(|(_, x_min, _, x_max, _)| (x_min, x_max))
        .collect();
    assert!(numbers.len() > 30, "{numbers:?}");
    // Three number columns (Sales, Quantity, Profit): the right edges fall on three lines,
    // while the left edges vary with the numbers' widths.
    let mut rights: Vec<i32> = numbers
        .iter()
        .map(|(_, r)| (r * 2.0).round() as i32)
        .collect();
    rights.sort_unstable();
    rights.dedup_by(|a, b| (*a - *b).abs() <= 1);
    assert_eq!(rights.len(), 3, "right edges (half points): {rights:?}");
    let mut lefts: Vec<i32> = numbers
        .iter()
        .map(|(l, _)| (l * 2.0).round() as i32)
        .collect();
    lefts.sort_unstable();
    lefts.dedup();
    assert!(
        lefts.len() > 6,
        "numbers of different widths start apart: {lefts:?}"
    );
}

#[test]
fn margins_hold_every_word() {
    let (table, filters) = south();
    let table = table.select(&(0..150).collect::<Vec<_>>());
    let mut report = orders_report();
    report.page.margin_mm = 25.0;
    report.header = Some(mad_core::PageBand::left("Header {title}").with_right("right"));
    let pdf = render(&report, &table, &filters);
    let margin = 25.0 * 72.0 / 25.4;
    let info = pdfinfo(&pdf.path);
    assert!(info["Page size"].starts_with("595.2"), "{info:?}");
    for page in 1..=page_count(&pdf.path) {
        for (word, x_min, y_min, x_max, y_max) in words(&pdf.path, page) {
            assert!(
                x_min >= margin - 0.5 && x_max <= 595.28 - margin + 0.5,
                "{word} {x_min} {x_max}"
            );
            assert!(
                y_min >= margin - 1.0 && y_max <= 841.89 - margin + 1.0,
                "{word} {y_min} {y_max}"
            );
        }
    }
}

#[test]
fn numbers_follow_the_recipient_locale() {
    let table = cities_table(&["Zürich", "Łódź", "Köln"]);
    let mut report = ReportDef::new("cities", "Städte");
    report.columns = vec![
        ColumnDef::new("City"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    let pdf = render_in(&report, &table, &FilterSet::all(), "de-DE");
    let text = pdftotext(&pdf.path, None);
    assert!(text.contains("1.000,50"), "{text}");
    assert!(text.contains("2.001,00"), "{text}");
    assert!(text.contains("3.001,50"), "grand total: {text}");
    let info = run(tool("pdfinfo").arg("-meta").arg(&pdf.path));
    assert!(info.contains("Städte"), "XMP title: {info}");
}

#[test]
fn conditional_styles_colour_negative_values_red() {
    let schema = Schema::new(vec![
        Field::new("Item", FieldKind::Text),
        Field::new("Profit", FieldKind::Number),
    ]);
    let (mut item, mut profit) = (ColumnBuilder::default(), ColumnBuilder::default());
    for (i, p) in [("Alpha", 1500.0), ("Beta", -2750.25), ("Gamma", 320.0)] {
        item.push(Value::text(i));
        profit.push(Value::Number(p));
    }
    let table = Table::new(schema, vec![item.finish(), profit.finish()]).unwrap();
    let mut report = ReportDef::new("styles", "Profit");
    report.columns = vec![
        ColumnDef::new("Item"),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum)
            .style(mad_core::ConditionalStyle::new("< 0").with_color("#c00000")),
    ];
    let pdf = render(&report, &table, &FilterSet::all());

    let dpi = 144;
    let (pixels, width, _) = page_pixels(&pdf.path, 1, dpi);
    let scale = dpi as f32 / 72.0;
    let redness = |word: &str| -> (usize, usize) {
        // The last one: a total also shows in the plain totals line under the title.
        let (_, x0, y0, x1, y1) = words(&pdf.path, 1)
            .into_iter()
            .rfind(|w| w.0 == word)
            .unwrap_or_else(|| panic!("{word} is on the page"));
        let (mut red, mut dark) = (0, 0);
        for y in (y0 * scale) as u32..(y1 * scale) as u32 {
            for x in (x0 * scale) as u32..(x1 * scale) as u32 {
                let at = ((y * width + x) * 3) as usize;
                let (r, g, b) = (pixels[at], pixels[at + 1], pixels[at + 2]);
                if r > 120 && g < 80 && b < 80 {
                    red += 1;
                } else if r < 100 && g < 100 && b < 100 {
                    dark += 1;
                }
            }
        }
        (red, dark)
    };
    let (red, dark) = redness("-2,750.25");
    assert!(
        red > 20 && dark < red / 4,
        "the negative value is red: {red} red, {dark} dark"
    );
    let (red, dark) = redness("1,500.00");
    assert!(
        red == 0 && dark > 20,
        "a positive value is not: {red} red, {dark} dark"
    );
    let (red, _) = redness("-930.25");
    assert!(red > 20, "a negative total is red too");
}

fn chart_report(kind: mad_core::ChartKind) -> ReportDef {
    let mut report = ReportDef::new("charts", "Charts for {recipient.name}");
    report.columns = vec![
        ColumnDef::new("Category"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    report.charts =
        vec![mad_core::ChartDef::new(kind, "Category", "Sales").with_title("Sales by category")];
    report
}

#[test]
fn bar_line_and_pie_charts_are_vector_drawings_with_extractable_text() {
    let (table, filters) = south();
    let sums: BTreeMap<String, f64> = (0..table.len()).fold(BTreeMap::new(), |mut acc, row| {
        let category = table.value(row, table.require_column("Category").unwrap());
        let sales = table.value(row, table.require_column("Sales").unwrap());
        *acc.entry(category.as_text().unwrap().to_string())
            .or_default() += sales.as_number().unwrap();
        acc
    });
    for kind in [
        mad_core::ChartKind::Bar,
        mad_core::ChartKind::Line,
        mad_core::ChartKind::Pie,
    ] {
        let pdf = render(&chart_report(kind), &table, &filters);
        let text = pdftotext(&pdf.path, Some(1));
        assert!(text.contains("Sales by category"), "{kind:?}: {text}");
        for (category, sum) in &sums {
            assert!(
                text.contains(category.as_str()),
                "{kind:?} {category}: {text}"
            );
            let shown = format!("{sum:.2}");
            let (int, frac) = shown.split_once('.').unwrap();
            let grouped = int
                .as_bytes()
                .rchunks(3)
                .rev()
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(",");
            assert!(
                text.contains(&format!("{grouped}.{frac}")),
                "{kind:?} {sum}: {text}"
            );
        }
        if kind != mad_core::ChartKind::Pie {
            assert!(text.contains("Sum of Sales"), "a legend: {text}");
        } else {
            assert!(text.contains('%'), "shares: {text}");
        }
        qpdf_check(&pdf.path);
        let (pixels, _, _) = page_pixels(&pdf.path, 1, 50);
        let blue = pixels
            .chunks(3)
            .filter(|p| p[0] < 110 && p[1] > 100 && p[1] < 140 && p[2] > 150)
            .count();
        assert!(
            blue > 100,
            "{kind:?}: the chart is drawn ({blue} blue pixels)"
        );
    }
}

#[test]
fn a_chart_after_the_table_follows_the_grand_total() {
    let (table, filters) = south();
    let table = table.select(&(0..40).collect::<Vec<_>>());
    let mut report = chart_report(mad_core::ChartKind::Bar);
    report.charts[0].placement = mad_core::ChartPlacement::After;
    let pdf = render(&report, &table, &filters);
    let text = pdftotext(&pdf.path, None);
    let total = text.find("Grand total").expect("a grand total");
    let chart = text.find("Sales by category").expect("the chart title");
    assert!(chart > total, "{text}");
}

#[test]
fn many_rows_stream_into_a_valid_file() {
    let mut options = CsvOptions::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/flights/flights.csv.gz"
    ));
    options.null_values = vec!["NA".into()];
    let flights = read_csv(&options).expect("the flights load");
    let table = flights.select(&(0..12_000).collect::<Vec<_>>());
    let mut report = ReportDef::new("flights", "Flights");
    report.group_by = vec!["origin".into()];
    report.columns = vec![
        ColumnDef::new("month"),
        ColumnDef::new("day"),
        ColumnDef::new("carrier"),
        ColumnDef::new("flight"),
        ColumnDef::new("dest"),
        ColumnDef::new("distance")
            .total(Aggregate::Sum)
            .format("#,##0"),
    ];
    let pdf = render(&report, &table, &FilterSet::all());
    qpdf_check(&pdf.path);
    let pages = page_count(&pdf.path);
    assert!(pages > 150, "{pages} pages");
    let last = pdftotext(&pdf.path, Some(pages));
    assert!(last.contains("Grand total (12,000 rows)"), "{last}");
    assert!(last.contains(&format!("Page {pages} of {pages}")), "{last}");
    let distance: f64 = (0..table.len())
        .filter_map(|r| {
            table
                .value(r, table.require_column("distance").unwrap())
                .as_number()
        })
        .sum();
    let shown = format!("{distance:.0}");
    assert!(last.replace(',', "").contains(&shown), "{shown} in {last}");
}

/// The document catalog's `/Lang`, read by qpdf from the catalog object itself.
fn catalog_language(pdf: &Path) -> Option<String> {
    let json = run(tool("qpdf").args(["--json=2", "--json-key=qpdf"]).arg(pdf));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("qpdf prints JSON");
    let objects = &doc["qpdf"][1];
    let trailer = &objects["trailer"]["value"];
    let root = trailer["/Root"].as_str()?.replace(" R", "");
    let catalog = &objects[format!("obj:{root} R")]["value"];
    let lang = catalog["/Lang"].as_str()?;
    Some(lang.trim_start_matches("u:").to_string())
}

#[test]
fn the_catalog_names_the_recipients_language() {
    let (table, filters) = south();
    let report = orders_report();
    for tag in ["de-DE", "en-US", "pl-PL"] {
        let pdf = render_in(&report, &table, &filters, tag);
        assert_eq!(catalog_language(&pdf.path).as_deref(), Some(tag));
    }
}

#[test]
fn labels_follow_the_recipients_language() {
    let (table, filters) = south();
    let report = orders_report();
    let german = pdftotext(&render_in(&report, &table, &filters, "de-DE").path, None);
    for label in [
        "Filter: ",
        "Summen: ",
        "Gesamtsumme (",
        " Zeilen)",
        "Seite 1 von ",
    ] {
        assert!(german.contains(label), "{label:?} missing:\n{german}");
    }
    for english in ["Filters:", "Totals:", "Grand total", "Page 1 of"] {
        assert!(!german.contains(english), "{english:?} left in:\n{german}");
    }
    let polish = pdftotext(&render_in(&report, &table, &filters, "pl-PL").path, None);
    for label in ["Filtry: ", "Suma całkowita (", "Strona 1 z "] {
        assert!(polish.contains(label), "{label:?} missing:\n{polish}");
    }
}
