//! The CSV renderer read back with the csv crate's reader, against the source CSV.

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, ErrorKind, Field, FieldKind, Filter, FilterSet, Locale,
    Placeholders, RenderJob, Renderer, ReportDef, Schema, SortKey, Table, Value,
};
use mad_render::CsvRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn try_render(
    renderer: &CsvRenderer,
    report: &ReportDef,
    table: &Table,
    locale: &Locale,
) -> mad_core::Result<Vec<u8>> {
    renderer.render(&RenderJob {
        report,
        table,
        placeholders: &Placeholders::new(),
        locale,
        filters: &FilterSet::all(),
        deterministic: true,
        created_at: 0,
    })
}

fn render(report: &ReportDef, table: &Table) -> Vec<u8> {
    try_render(&CsvRenderer::new(), report, table, &Locale::default()).expect("the CSV renders")
}

fn read(bytes: &[u8], delimiter: u8) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn mixed_table(rows: &[(&str, f64)]) -> Table {
    let schema = Schema::new(vec![
        Field::new("Note", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
    ]);
    let mut note = ColumnBuilder::default();
    let mut amount = ColumnBuilder::default();
    for (n, a) in rows {
        note.push(Value::text(*n));
        amount.push(Value::Number(*a));
    }
    Table::new(schema, vec![note.finish(), amount.finish()]).unwrap()
}

#[test]
fn superstore_rows_read_back_equal_to_the_source() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["South"])]);
    let table = filters
        .apply(&read_csv(&CsvOptions::new(SUPERSTORE)).unwrap())
        .unwrap();
    let mut report = ReportDef::new("south", "South");
    report.columns = vec![
        ColumnDef::new("Row ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("Customer Name"),
        ColumnDef::new("Product Name"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Discount").format("0%"),
        ColumnDef::new("Profit").total(Aggregate::Sum),
    ];
    report.group_by = vec!["Segment".into()];
    report.sort = vec![SortKey::asc("Row ID")];
    let bytes = render(&report, &table);
    let (header, rows) = read(&bytes, b',');

    let mut source = csv::Reader::from_path(SUPERSTORE).unwrap();
    let mut expected: Vec<csv::StringRecord> = source
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[12] == "South")
        .collect();
    // The report groups by segment (in name order), then sorts by row id.
    expected.sort_by_key(|r| (r[7].to_string(), r[0].parse::<u64>().unwrap()));

    assert_eq!(
        header,
        [
            "Row ID",
            "Order Date",
            "Customer Name",
            "Product Name",
            "Sales",
            "Discount",
            "Profit"
        ]
    );
    assert_eq!(
        rows.len(),
        expected.len(),
        "data rows only, no group or total rows"
    );
    for (row, record) in rows.iter().zip(&expected) {
        assert_eq!(row[0], &record[0]);
        assert_eq!(row[1], &record[2], "dates as their text");
        assert_eq!(row[2], &record[6]);
        assert_eq!(row[3], &record[16], "product names keep commas and quotes");
        for (ours, theirs) in [(4, 17), (5, 19), (6, 20)] {
            let ours: f64 = row[ours].parse().unwrap();
            assert_eq!(ours, record[theirs].parse::<f64>().unwrap());
        }
    }
    assert!(
        rows.iter().any(|r| r[6].starts_with('-')),
        "negative profits stay numbers"
    );
    assert!(
        !bytes.starts_with(b"\xEF\xBB\xBF"),
        "no byte-order mark by default"
    );
    assert!(bytes.windows(2).any(|w| w == b"\r\n"));
    assert!(expected.iter().any(|r| r[16].contains(',')));
}

#[test]
fn commas_quotes_and_line_breaks_are_quoted() {
    let table = mixed_table(&[
        ("a, b", 1.0),
        ("say \"hi\"", 2.0),
        ("two\nlines", 3.0),
        ("semi;colon", 4.0),
        ("Zürich – Łódź – Ελλάδα", 5.0),
    ]);
    let mut report = ReportDef::new("q", "Q");
    let bytes = render(&report, &table);
    let text = String::from_utf8(bytes.clone()).unwrap();

    assert!(text.starts_with("Note,Amount\r\n"));
    assert!(text.contains("\"a, b\",1\r\n"));
    assert!(text.contains("\"say \"\"hi\"\"\",2\r\n"));
    assert!(text.contains("\"two\nlines\",3\r\n"));
    assert!(text.contains("semi;colon,4\r\n"));
    let (_, rows) = read(&bytes, b',');
    let notes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        notes,
        [
            "a, b",
            "say \"hi\"",
            "two\nlines",
            "semi;colon",
            "Zürich – Łódź – Ελλάδα"
        ]
    );

    report.csv.delimiter = ';';
    let bytes = render(&report, &table);
    assert!(
        String::from_utf8(bytes.clone())
            .unwrap()
            .contains("\"semi;colon\";4\r\n")
    );
    let (header, rows) = read(&bytes, b';');
    assert_eq!(header, ["Note", "Amount"]);
    assert_eq!(rows[0], ["a, b", "1"]);
    assert_eq!(rows[3], ["semi;colon", "4"]);
}

#[test]
fn formulas_are_neutralised_unless_switched_off() {
    let table = mixed_table(&[
        ("=1+1", -12.5),
        ("+41 44 000", -0.0),
        ("@SUM(A1)", 0.1),
        ("\tcmd", 1e21),
        ("\r=x", -1234567.125),
        ("-2+3", 3.0),
        ("-7.5", 4.0),
        ("plain", 5.0),
    ]);
    let mut report = ReportDef::new("n", "N");
    report.columns = vec![ColumnDef::new("=Note"), ColumnDef::new("Amount")];
    let table = {
        let schema = Schema::new(vec![
            Field::new("=Note", FieldKind::Text),
            Field::new("Amount", FieldKind::Number),
        ]);
        Table::new(
            schema,
            vec![table.column(0).clone(), table.column(1).clone()],
        )
        .unwrap()
    };

    let (header, rows) = read(&render(&report, &table), b',');
    let notes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let amounts: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(header, ["'=Note", "Amount"]);
    assert_eq!(
        notes,
        [
            "'=1+1",
            "'+41 44 000",
            "'@SUM(A1)",
            "'\tcmd",
            "'\r=x",
            "'-2+3",
            "-7.5",
            "plain"
        ]
    );
    assert_eq!(
        amounts,
        [
            "-12.5",
            "0",
            "0.1",
            "1000000000000000000000",
            "-1234567.125",
            "3",
            "4",
            "5"
        ]
    );

    report.csv.neutralise_formulas = false;
    let (header, rows) = read(&render(&report, &table), b',');
    let notes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(header, ["=Note", "Amount"]);
    assert_eq!(
        notes,
        [
            "=1+1",
            "+41 44 000",
            "@SUM(A1)",
            "\tcmd",
            "\r=x",
            "-2+3",
            "-7.5",
            "plain"
        ]
    );
}

#[test]
fn formatted_numbers_follow_the_locale_and_the_byte_order_mark_is_optional() {
    let table = mixed_table(&[("x", 1234.5), ("y", -1234.5)]);
    let mut report = ReportDef::new("f", "F");
    report.columns = vec![
        ColumnDef::new("Note"),
        ColumnDef::new("Amount").format("#,##0.00"),
    ];
    report.csv.formatted_numbers = true;
    report.csv.delimiter = ';';
    let renderer = CsvRenderer::new().with_byte_order_mark(true);
    let bytes = try_render(&renderer, &report, &table, &Locale::new("de-DE")).unwrap();

    assert!(bytes.starts_with(b"\xEF\xBB\xBFNote;Amount\r\n"));
    let (_, rows) = read(&bytes[3..], b';');
    assert_eq!(rows, [["x", "1.234,50"], ["y", "-1.234,50"]]);
}

#[test]
fn an_empty_table_gives_the_header_only() {
    let bytes = render(&ReportDef::new("e", "E"), &mixed_table(&[]));
    assert_eq!(bytes, b"Note,Amount\r\n");
}

#[test]
fn delimiters_that_cannot_work_are_refused() {
    let table = mixed_table(&[("x", 1.0)]);
    let mut report = ReportDef::new("d", "D");
    report.csv.delimiter = '€';
    let err = try_render(&CsvRenderer::new(), &report, &table, &Locale::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.backend(), Some("csv"));

    report.csv.delimiter = '"';
    let err = try_render(&CsvRenderer::new(), &report, &table, &Locale::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}
