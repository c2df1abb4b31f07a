//! The XLSX renderer read back with calamine (cell types and values) and by unzipping the
//! workbook (sheet settings calamine does not expose), against sums taken from the source CSV
//! by the csv crate.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, ErrorKind, Field, FieldKind, Filter, FilterSet, Locale,
    NumberFormat, Placeholders, RenderJob, Renderer, ReportDef, Schema, SortKey, Table, Value,
};
use mad_render::XlsxRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn superstore() -> Table {
    read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore CSV loads")
}

fn render(
    renderer: &XlsxRenderer,
    report: &ReportDef,
    table: &Table,
    filters: &FilterSet,
) -> Vec<u8> {
    try_render(renderer, report, table, filters).expect("the workbook renders")
}

fn try_render(
    renderer: &XlsxRenderer,
    report: &ReportDef,
    table: &Table,
    filters: &FilterSet,
) -> mad_core::Result<Vec<u8>> {
    let placeholders = Placeholders::new().with("region", "West");
    let locale = Locale::default();
    renderer.render(&RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &locale,
        filters,
        deterministic: true,
        created_at: 0,
    })
}

/// The only sheet's name and cells.
fn read_sheet(bytes: &[u8]) -> (String, calamine::Range<Data>, calamine::Range<String>) {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let names = workbook.sheet_names();
    assert_eq!(names.len(), 1, "one sheet: {names:?}");
    let cells = workbook.worksheet_range(&names[0]).unwrap();
    let formulas = workbook.worksheet_formula(&names[0]).unwrap();
    (names[0].clone(), cells, formulas)
}

fn zip_entry(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Cell text at absolute (row, col), for strings.
fn string_at(cells: &calamine::Range<Data>, row: u32, col: u32) -> String {
    match cells.get_value((row, col)) {
        Some(Data::String(s)) => s.clone(),
        other => panic!("expected a string at ({row}, {col}), found {other:?}"),
    }
}

fn float_at(cells: &calamine::Range<Data>, row: u32, col: u32) -> f64 {
    match cells.get_value((row, col)) {
        Some(Data::Float(n)) => *n,
        other => panic!("expected a number at ({row}, {col}), found {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// The Superstore rows of one region, read with the csv crate: Row ID → the raw record.
fn source_rows(region: &str) -> BTreeMap<u64, csv::StringRecord> {
    let mut reader = csv::Reader::from_path(SUPERSTORE).unwrap();
    let headers = reader.headers().unwrap().clone();
    let region_col = headers.iter().position(|h| h == "Region").unwrap();
    reader
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[region_col] == region)
        .map(|r| (r[0].parse().unwrap(), r))
        .collect()
}

fn sales_report() -> ReportDef {
    let mut report = ReportDef::new("sales", "Sales {region}: orders [by segment]");
    report.subtitle = Some("Superstore <all> orders".into());
    report.columns = vec![
        ColumnDef::new("Row ID").label("Row"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name").label("Customer"),
        ColumnDef::new("City"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
        ColumnDef::new("Discount").format("0.0%"),
        ColumnDef::new("Profit")
            .format("$#,##0.00;($#,##0.00)")
            .total(Aggregate::Sum),
    ];
    report.group_by = vec!["Segment".into()];
    report.sort = vec![SortKey::asc("Row ID")];
    report
}

#[test]
fn superstore_cells_are_typed_and_totals_match_the_source() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let table = filters.apply(&superstore()).unwrap();
    let bytes = render(&XlsxRenderer::new(), &sales_report(), &table, &filters);
    let (name, cells, formulas) = read_sheet(&bytes);
    let source = source_rows("West");
    let header: Vec<String> = (0..8).map(|c| string_at(&cells, 4, c)).collect();

    assert_eq!(name, "Sales West orders by segment");
    assert_eq!(string_at(&cells, 0, 0), "Sales West: orders [by segment]");
    assert_eq!(string_at(&cells, 1, 0), "Superstore <all> orders");
    assert_eq!(string_at(&cells, 2, 0), "Filters: Region = West");
    assert_eq!(
        header,
        [
            "Row",
            "Order Date",
            "Customer",
            "City",
            "Sales",
            "Quantity",
            "Discount",
            "Profit"
        ]
    );

    let mut row = 5;
    let mut seen = 0;
    let mut segment_sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut grand = None;
    while let Some(first) = cells.get_value((row, 0)) {
        match first {
            Data::Float(id) => {
                let record = &source[&(*id as u64)];
                let Some(Data::DateTime(date)) = cells.get_value((row, 1)) else {
                    panic!("Order Date in row {row} is not a date cell");
                };
                assert!(date.is_datetime());
                let (y, m, d, ..) = date.to_ymd_hms_milli();
                assert_eq!(format!("{y:04}-{m:02}-{d:02}"), &record[2]);
                assert_eq!(string_at(&cells, row, 2), &record[6]);
                assert_eq!(string_at(&cells, row, 3), &record[9]);
                let sales: f64 = record[17].parse().unwrap();
                assert_eq!(float_at(&cells, row, 4), sales, "Sales of row {id}");
                assert_eq!(float_at(&cells, row, 5), record[18].parse::<f64>().unwrap());
                assert_eq!(float_at(&cells, row, 7), record[20].parse::<f64>().unwrap());
                *segment_sums.entry(record[7].to_string()).or_default() += sales;
                seen += 1;
            }
            Data::String(label) if label.starts_with("Segment: ") => {}
            Data::String(label) if label.starts_with("Total ") => {
                let segment = label.trim_start_matches("Total ");
                let expected = source
                    .values()
                    .filter(|r| &r[7] == segment)
                    .map(|r| r[17].parse::<f64>().unwrap())
                    .sum::<f64>();
                assert!(
                    close(float_at(&cells, row, 4), expected),
                    "{segment} subtotal"
                );
                let formula = formulas.get_value((row, 4)).unwrap();
                assert!(formula.starts_with("SUBTOTAL(9,E"), "{formula}");
            }
            Data::String(label) if label == "Grand total" => {
                grand = Some(row);
            }
            other => panic!("unexpected first cell {other:?} in row {row}"),
        }
        row += 1;
    }

    assert_eq!(seen, source.len());
    assert_eq!(segment_sums.len(), 3);
    let grand = grand.expect("a grand total row");
    let sales: f64 = source.values().map(|r| r[17].parse::<f64>().unwrap()).sum();
    let quantity: f64 = source.values().map(|r| r[18].parse::<f64>().unwrap()).sum();
    let profit: f64 = source.values().map(|r| r[20].parse::<f64>().unwrap()).sum();
    assert!(close(float_at(&cells, grand, 4), sales));
    assert_eq!(float_at(&cells, grand, 5), quantity);
    assert!(close(float_at(&cells, grand, 7), profit));
    assert_eq!(
        formulas.get_value((grand, 4)).unwrap(),
        &format!("SUBTOTAL(9,E6:E{grand})")
    );

    let sheet = zip_entry(&bytes, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(
            r#"<pane ySplit="5" topLeftCell="A6" activePane="bottomLeft" state="frozen"/>"#
        ),
        "{}",
        &sheet[..600]
    );
    assert!(sheet.contains(&format!(r#"<autoFilter ref="A5:H{grand}"/>"#)));
    let styles = zip_entry(&bytes, "xl/styles.xml");
    for code in ["#,##0.00", "0.0%", "$#,##0.00;($#,##0.00)", "yyyy-mm-dd"] {
        let xml_code = code.replace('"', "&quot;");
        assert!(
            styles.contains(&format!(r#"formatCode="{xml_code}""#)),
            "{code} in {styles}"
        );
    }
}

fn small_table(rows: &[(&str, &str, f64, f64)]) -> Table {
    let schema = Schema::new(vec![
        Field::new("City", FieldKind::Text),
        Field::new("Country", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
        Field::new("Day", FieldKind::Date).with_format(NumberFormat::new("DD.MM.YYYY")),
    ]);
    let mut columns: Vec<ColumnBuilder> = (0..4).map(|_| ColumnBuilder::default()).collect();
    for (city, country, amount, day) in rows {
        columns[0].push(Value::text(*city));
        columns[1].push(Value::text(*country));
        columns[2].push(Value::Number(*amount));
        columns[3].push(Value::Number(*day));
    }
    Table::new(
        schema,
        columns.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap()
}

#[test]
fn unicode_texts_round_trip() {
    let table = small_table(&[
        ("Zürich", "Schweiz", 1.5, 42682.0),
        ("Łódź", "Polska", -2.25, 42683.0),
        ("Αθήνα", "Ελλάδα", 3.0, 42684.0),
        ("東京", "日本", 0.0, 42685.0),
        ("tab\tbell\u{7}_x0041_", "<&>\"'", 0.0, 42685.0),
    ]);
    let report = ReportDef::new("u", "Städte – Ελλάδα");
    let bytes = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());
    let (name, cells, _) = read_sheet(&bytes);

    assert_eq!(name, "Städte – Ελλάδα");
    let cities: Vec<String> = (3..7).map(|r| string_at(&cells, r, 0)).collect();
    assert_eq!(cities, ["Zürich", "Łódź", "Αθήνα", "東京"]);
    assert_eq!(string_at(&cells, 5, 1), "Ελλάδα");
    assert_eq!(string_at(&cells, 7, 0), "tab\tbell\u{7}_x0041_");
    assert_eq!(string_at(&cells, 7, 1), "<&>\"'");
    assert_eq!(float_at(&cells, 4, 2), -2.25);
    let Some(Data::DateTime(day)) = cells.get_value((3, 3)) else {
        panic!("the Day column holds dates");
    };
    let (year, month, day, ..) = day.to_ymd_hms_milli();
    assert_eq!((year, month, day), (2016, 11, 8));
    assert!(zip_entry(&bytes, "xl/styles.xml").contains(r#"formatCode="dd.mm.yyyy""#));
}

#[test]
fn equal_input_gives_equal_bytes_in_deterministic_mode() {
    let table = small_table(&[("Zürich", "Schweiz", 1.5, 42682.0)]);
    let report = ReportDef::new("d", "Same");
    let first = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());
    let second = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());

    assert_eq!(first, second);
    assert!(zip_entry(&first, "docProps/core.xml").contains("2000-01-01T00:00:00Z"));
}

#[test]
fn every_writer_gives_the_same_cells() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let table = filters.apply(&superstore()).unwrap();
    let report = sales_report();
    let streaming = render(&XlsxRenderer::new(), &report, &table, &filters);
    let in_memory = render(
        &XlsxRenderer::new().with_streaming_writer(false),
        &report,
        &table,
        &filters,
    );
    let constant_memory = render(
        &XlsxRenderer::new()
            .with_streaming_writer(false)
            .with_constant_memory_above(0),
        &report,
        &table,
        &filters,
    );
    let (name, cells, formulas) = read_sheet(&streaming);
    assert!(zip_entry(&constant_memory, "xl/worksheets/sheet1.xml").contains("inlineStr"));
    for other in [&in_memory, &constant_memory] {
        let (other_name, other_cells, other_formulas) = read_sheet(other);
        assert_eq!(name, other_name);
        assert_eq!(cells, other_cells);
        assert_eq!(formulas, other_formulas);
    }
}

#[test]
fn styles_widths_and_views_read_back_with_openpyxl() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let table = filters.apply(&superstore()).unwrap();
    let bytes = render(&XlsxRenderer::new(), &sales_report(), &table, &filters);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("west.xlsx");
    std::fs::write(&path, &bytes).unwrap();

    let seen = common::openpyxl(
        &path,
        "sheet = book.worksheets[0]\n\
         last = sheet.max_row\n\
         print(json.dumps({\n\
           'title': sheet.title, 'freeze': sheet.freeze_panes,\n\
           'filter': sheet.auto_filter.ref,\n\
           'title_font': [sheet['A1'].font.b, sheet['A1'].font.sz],\n\
           'note_italic': sheet['A3'].font.i,\n\
           'header': [sheet['A5'].value, sheet['A5'].font.b, sheet['A5'].fill.fgColor.rgb,\n\
                      sheet['A5'].border.bottom.style, sheet['E5'].alignment.horizontal],\n\
           'group': [sheet['A6'].value, sheet['A6'].font.b, sheet['A6'].fill.fgColor.rgb],\n\
           'sales': [type(sheet['E7'].value).__name__, sheet['E7'].number_format],\n\
           'date': [type(sheet['B7'].value).__name__, sheet['B7'].number_format],\n\
           'grand': [sheet.cell(last, 5).value, sheet.cell(last, 5).border.top.style,\n\
                     sheet.cell(last, 5).font.b],\n\
           'widths': [sheet.column_dimensions[c].width for c in 'ABCDEFGH'],\n\
         }))",
    );
    let last = seen["grand"][0].as_str().unwrap();
    assert!(last.starts_with("=SUBTOTAL(9,E6:E"), "{seen}");
    assert_eq!(seen["title"], "Sales West orders by segment");
    assert_eq!(seen["freeze"], "A6");
    assert!(
        seen["filter"].as_str().unwrap().starts_with("A5:H"),
        "{seen}"
    );
    assert_eq!(seen["title_font"], serde_json::json!([true, 14.0]));
    assert_eq!(seen["note_italic"], true);
    assert_eq!(
        seen["header"],
        serde_json::json!(["Row", true, "FFD9E1F2", "thin", "right"])
    );
    assert_eq!(seen["group"][0], "Segment: Consumer");
    assert_eq!(seen["group"][2], "FFF2F2F2");
    assert_eq!(seen["sales"], serde_json::json!(["float", "#,##0.00"]));
    assert_eq!(seen["date"][0], "datetime");
    assert_eq!(seen["grand"][1], "double");
    assert_eq!(seen["grand"][2], true);
    for width in seen["widths"].as_array().unwrap() {
        let width = width.as_f64().unwrap();
        assert!((6.0..=62.0).contains(&width), "{seen}");
    }
}

#[test]
fn count_average_minimum_and_maximum_totals_carry_their_results() {
    let table = small_table(&[
        ("Bern", "Schweiz", 10.0, 42682.0),
        ("Zürich", "Schweiz", 20.0, 42683.0),
        ("Łódź", "Polska", 30.0, 42684.0),
    ]);
    let mut report = ReportDef::new("agg", "Aggregates");
    report.columns = vec![
        ColumnDef::new("City").total(Aggregate::Count),
        ColumnDef::new("Amount").total(Aggregate::Avg),
        ColumnDef::new("Day").total(Aggregate::Max),
        ColumnDef::new("Country"),
    ];
    report.group_by = vec!["Country".into()];
    let bytes = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());
    let (_, cells, formulas) = read_sheet(&bytes);

    // Rows (0-based): header 2; Polska 3 (group), 4, 5 (total); Schweiz 6 (group), 7, 8,
    // 9 (total); grand total 10. The group label avoids the count column A.
    assert_eq!(string_at(&cells, 3, 1), "Country: Polska");
    assert_eq!(string_at(&cells, 5, 3), "Total Polska");
    assert_eq!(float_at(&cells, 9, 0), 2.0);
    assert_eq!(formulas.get_value((9, 0)).unwrap(), "SUBTOTAL(3,A8:A9)");
    assert_eq!(float_at(&cells, 9, 1), 15.0);
    assert_eq!(formulas.get_value((9, 1)).unwrap(), "SUBTOTAL(1,B8:B9)");
    assert_eq!(string_at(&cells, 10, 3), "Grand total");
    assert_eq!(float_at(&cells, 10, 0), 3.0);
    assert_eq!(formulas.get_value((10, 0)).unwrap(), "SUBTOTAL(3,A4:A10)");
    assert_eq!(float_at(&cells, 10, 1), 20.0);
    let Some(Data::DateTime(latest)) = cells.get_value((10, 2)) else {
        panic!("the maximum of a date column is a date");
    };
    assert_eq!(latest.as_f64(), 42684.0);
    assert_eq!(formulas.get_value((10, 2)).unwrap(), "SUBTOTAL(4,C4:C10)");
}

#[test]
fn dates_excel_cannot_show_become_text() {
    let table = small_table(&[("Old", "X", 1.0, 10.0), ("Older", "X", 1.0, -5000.0)]);
    let report = ReportDef::new("old", "Old days");
    let bytes = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());
    let (_, cells, _) = read_sheet(&bytes);

    assert_eq!(string_at(&cells, 3, 3), "09.01.1900");
    assert_eq!(string_at(&cells, 4, 3), "22.04.1886");
}

#[test]
fn an_empty_table_says_so() {
    let table = small_table(&[]);
    let report = ReportDef::new("e", "Nothing");
    let bytes = render(&XlsxRenderer::new(), &report, &table, &FilterSet::all());
    let (_, cells, _) = read_sheet(&bytes);

    assert_eq!(string_at(&cells, 2, 0), "City");
    assert_eq!(string_at(&cells, 3, 0), "No data for these filters.");
}

#[test]
fn bad_input_gives_clear_errors() {
    let table = small_table(&[("x", "y", 1.0, 42682.0)]);
    let report = ReportDef::new("e", "Title {missing}");
    let err = try_render(&XlsxRenderer::new(), &report, &table, &FilterSet::all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("{missing}"), "{err}");

    let report = ReportDef::new("e", "Fine");
    let renderer = XlsxRenderer::new().with_compression_level(0);
    let err = try_render(&renderer, &report, &table, &FilterSet::all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.backend(), Some("xlsx"));

    let long = "x".repeat(40_000);
    let table = small_table(&[(&long, "y", 1.0, 42682.0)]);
    let err = try_render(&XlsxRenderer::new(), &report, &table, &FilterSet::all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("column 'City'"), "{err}");
}

/// A West report grouped by Segment (a new page each) and Category, landscape Letter with
/// 20 mm margins, a header and a footer.
fn printed_report() -> ReportDef {
    let mut report = sales_report();
    report.group_by.clear();
    report.groups = vec![
        mad_core::GroupDef::new("Segment").with_page_break(),
        mad_core::GroupDef::new("Category"),
    ];
    report.page.size = mad_core::report::PageSize::Letter;
    report.page.orientation = mad_core::report::Orientation::Landscape;
    report.page.margin_mm = 20.0;
    report.header = Some(mad_core::PageBand::left("{title}").with_right("R&D {region}"));
    report.footer = Some(
        mad_core::PageBand::left("{filters}")
            .with_center("Confidential")
            .with_right("Page {page} of {pages}"),
    );
    report
}

#[test]
fn page_setup_header_footer_and_section_breaks_print_as_the_report_says() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let table = filters.apply(&superstore()).unwrap();
    let report = printed_report();
    for renderer in [
        XlsxRenderer::new(),
        XlsxRenderer::new().with_streaming_writer(false),
        XlsxRenderer::new()
            .with_streaming_writer(false)
            .with_constant_memory_above(0),
    ] {
        let bytes = render(&renderer, &report, &table, &filters);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("west.xlsx");
        std::fs::write(&path, &bytes).unwrap();

        let seen = common::openpyxl(
            &path,
            "sheet = book.worksheets[0]\n\
             setup, margins = sheet.page_setup, sheet.page_margins\n\
             breaks = [b.id for b in sheet.row_breaks.brk]\n\
             print(json.dumps({\n\
               'paper': setup.paperSize, 'orientation': setup.orientation,\n\
               'margins': [margins.left, margins.right, margins.top, margins.bottom,\n\
                           margins.header, margins.footer],\n\
               'header': [sheet.oddHeader.left.text, sheet.oddHeader.right.text],\n\
               'footer': [sheet.oddFooter.left.text, sheet.oddFooter.center.text,\n\
                          sheet.oddFooter.right.text],\n\
               'breaks': breaks,\n\
               'starting': [sheet.cell(b + 1, 1).value for b in breaks],\n\
             }))",
        );
        assert_eq!(seen["paper"], 1, "Letter: {seen}");
        assert_eq!(seen["orientation"], "landscape", "{seen}");
        for margin in &seen["margins"].as_array().unwrap()[..4] {
            assert!(
                (margin.as_f64().unwrap() - 20.0 / 25.4).abs() < 1e-9,
                "{seen}"
            );
        }
        assert_eq!(seen["margins"][4], 0.3, "{seen}");
        assert_eq!(
            seen["header"],
            serde_json::json!(["Sales West: orders [by segment]", "R&&D West"])
        );
        assert_eq!(
            seen["footer"],
            serde_json::json!(["Region = West", "Confidential", "Page &P of &N"])
        );
        // Consumer starts on the first page; the next two segments each start a page, with
        // their group header and first category header.
        assert_eq!(seen["breaks"].as_array().unwrap().len(), 2, "{seen}");
        assert_eq!(
            seen["starting"],
            serde_json::json!(["Segment: Corporate", "Segment: Home Office"]),
            "{seen}"
        );
    }
}

#[test]
fn a_header_longer_than_excel_prints_is_refused() {
    let table = small_table(&[("Zürich", "Schweiz", 1.5, 42682.0)]);
    let mut report = ReportDef::new("long", "Long");
    report.header = Some(mad_core::PageBand::left("x".repeat(300)));
    let err = try_render(&XlsxRenderer::new(), &report, &table, &FilterSet::all()).unwrap_err();

    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("255 characters"), "{err}");
}

#[test]
fn texts_wider_than_the_widest_column_wrap_in_both_writers() {
    let long = "Hoover Commercial Lightweight Upright Vacuum with E-Z Empty Dirt Cup, Bagless";
    let table = small_table(&[(long, "USA", 1.0, 42682.0), ("Short", "USA", 2.0, 42683.0)]);
    let report = ReportDef::new("w", "Wrapping");
    let dir = tempfile::tempdir().unwrap();
    for (name, renderer) in [
        ("streaming", XlsxRenderer::new()),
        (
            "rust_xlsxwriter",
            XlsxRenderer::new().with_streaming_writer(false),
        ),
    ] {
        let path = dir.path().join(format!("{name}.xlsx"));
        std::fs::write(&path, render(&renderer, &report, &table, &FilterSet::all())).unwrap();
        let seen = common::openpyxl(
            &path,
            &format!(
                "sheet = book.worksheets[0]\n\
                 row = next(r for r in sheet.iter_rows() if r[0].value == {long:?})\n\
                 short = next(r for r in sheet.iter_rows() if r[0].value == 'Short')\n\
                 print(json.dumps({{\n\
                   'long': bool(row[0].alignment.wrap_text),\n\
                   'short': bool(short[0].alignment.wrap_text),\n\
                   'other_column': bool(row[1].alignment.wrap_text),\n\
                   'width': sheet.column_dimensions['A'].width,\n\
                 }}))"
            ),
        );
        assert_eq!(seen["long"], true, "{name}: {seen}");
        assert_eq!(
            seen["short"], true,
            "{name}: the whole column wraps: {seen}"
        );
        assert_eq!(seen["other_column"], false, "{name}: {seen}");
        let width = seen["width"].as_f64().unwrap();
        assert!((60.0..=62.0).contains(&width), "{name}: {seen}");
    }
}
