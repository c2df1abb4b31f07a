//! The QVD reader and the `qvd` source, on the sample files, on files written by an independent
//! writer (PyQvd), on hand-built edge cases and on damaged copies.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use mad_core::format::date_to_serial;
use mad_core::{
    BuildContext, DataSource, ErrorKind, FetchRequest, FieldKind, Filter, FilterSet, Query,
    Registry, Table, Value,
};
use mad_qlik::qvd::{QvdOptions, QvdSource, parse_qvd, read_qvd};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/qvd");

fn data(file: &str) -> PathBuf {
    Path::new(DATA).join(file)
}

fn read(file: &str) -> Table {
    read_qvd(data(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn column(table: &Table, name: &str) -> usize {
    table.require_column(name).unwrap()
}

fn row(table: &Table, r: usize) -> Vec<Value> {
    (0..table.fields().len())
        .map(|c| table.value(r, c).clone())
        .collect()
}

fn kinds(table: &Table) -> Vec<FieldKind> {
    table.fields().iter().map(|f| f.kind).collect()
}

fn dual(n: f64, s: &str) -> Value {
    Value::dual(n, s)
}

fn text(s: &str) -> Value {
    Value::text(s)
}

// ---------------------------------------------------------------------------------------------
// The sample files

#[test]
fn stockholm_matches_its_csv_cell_by_cell() {
    let table = read("stockholm_temp/stockholm_temp.qvd");
    let mut csv = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(data("stockholm_temp/stockholm_temp.csv.gz")).unwrap(),
    )
    .read_to_string(&mut csv)
    .unwrap();
    let csv = csv
        .strip_prefix('\u{feff}')
        .expect("the CSV starts with a BOM");
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(lines.next(), Some("date,raw,homo,adjust,site"));
    let names: Vec<&str> = table.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["date", "raw", "homo", "adjust", "site"]);
    assert_eq!(
        kinds(&table),
        [
            FieldKind::Date,
            FieldKind::Number,
            FieldKind::Number,
            FieldKind::Number,
            FieldKind::Integer
        ]
    );

    let mut rows = 0;
    for (r, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 5, "CSV line {}", r + 2);
        let (y, m, d) = (&cells[0][0..4], &cells[0][5..7], &cells[0][8..10]);
        let serial = date_to_serial(y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap());
        assert_eq!(table.value(r, 0), &dual(serial, cells[0]), "row {r} date");
        for (c, cell) in cells.iter().enumerate().skip(1) {
            let value = table.value(r, c);
            let expected: f64 = cell.parse().unwrap();
            assert_eq!(value.as_number(), Some(expected), "row {r} field {c}");
            assert_eq!(value.as_text(), Some(*cell), "row {r} field {c} text");
        }
        rows += 1;
    }
    assert_eq!(rows, 98_543);
    assert_eq!(table.len(), 98_543);
}

#[test]
fn lego_files_have_their_rows_and_first_values() {
    let colors = read("lego/colors.qvd");
    assert_eq!(colors.len(), 135);
    assert_eq!(
        row(&colors, 0),
        [dual(-1.0, "-1"), text("Unknown"), text("0033B2"), text("f")]
    );
    assert_eq!(
        kinds(&colors),
        [
            FieldKind::Integer,
            FieldKind::Text,
            FieldKind::Mixed,
            FieldKind::Text
        ]
    );
    // Qlik reads the colour code 237841 as a number; it stays a dual with its text.
    let rgb = column(&colors, "rgb");
    assert!(
        colors
            .column_values(rgb)
            .any(|v| v == &dual(237_841.0, "237841"))
    );

    let categories = read("lego/part_categories.qvd");
    assert_eq!(categories.len(), 57);
    assert_eq!(row(&categories, 0), [dual(1.0, "1"), text("Baseplates")]);
    assert_eq!(kinds(&categories), [FieldKind::Integer, FieldKind::Text]);

    let themes = read("lego/themes.qvd");
    assert_eq!(themes.len(), 614);
    assert_eq!(row(&themes, 0), [dual(1.0, "1"), text("Technic"), text("")]);
    assert_eq!(row(&themes, 1)[2], dual(1.0, "1"));
    // Empty cells of the source file are empty texts in the QVD, not nulls.
    assert_eq!(
        kinds(&themes),
        [FieldKind::Integer, FieldKind::Text, FieldKind::Integer]
    );
    let parent = column(&themes, "parent_id");
    assert!(themes.column_values(parent).all(|v| !v.is_null()));

    let inventory_sets = read("lego/inventory_sets.qvd");
    assert_eq!(inventory_sets.len(), 2_846);
    assert_eq!(
        row(&inventory_sets, 0),
        [dual(35.0, "35"), text("75911-1"), dual(1.0, "1")]
    );

    let sets = read("lego/sets.qvd");
    assert_eq!(sets.len(), 11_673);
    assert_eq!(
        row(&sets, 0),
        [
            text("00-1"),
            text("Weetabix Castle"),
            dual(1970.0, "1970"),
            dual(414.0, "414"),
            dual(471.0, "471")
        ]
    );
    assert_eq!(kinds(&sets)[2..], [FieldKind::Integer; 3]);

    assert_eq!(read("lego/inventories.qvd").len(), 11_681);
    assert_eq!(read("lego/parts.qvd").len(), 25_993);
}

#[test]
fn empty_file_gives_its_fields_and_no_rows() {
    let table = read("misc/empty_qvd.qvd");
    assert!(table.is_empty());
    let names: Vec<&str> = table.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["Country", "Year", "Sales"]);
}

#[test]
fn damaged_file_is_invalid_input_naming_the_file() {
    let err = read_qvd(data("misc/damaged.qvd")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.backend(), Some("qvd"));
    let message = err.to_string();
    assert!(message.contains("damaged.qvd"), "{message}");
    assert!(message.contains("XML header"), "{message}");
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_qvd(dir.path().join("nothing.qvd")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nothing.qvd"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// An independent reader and writer: PyQvd

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("MAD_TEST_PYTHON") {
        return path.into();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        path.exists(),
        "no Python test environment at {}: run scripts/setup-test-env",
        path.display()
    );
    path
}

fn reference(command: &str, file: &Path) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testing/tools/qvd_reference.py");
    let output = Command::new(python())
        .arg(script)
        .arg(command)
        .arg(file)
        .output()
        .expect("Python starts; run scripts/setup-test-env");
    assert!(
        output.status.success(),
        "the PyQvd reference failed on {} (run scripts/setup-test-env if PyQvd is missing): {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Compares every cell of `table` with PyQvd's reading of the same file.
fn assert_matches_reference(table: &Table, file: &Path) {
    let dump: serde_json::Value = serde_json::from_slice(&reference("dump", file)).unwrap();
    let columns: Vec<&str> = dump["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let names: Vec<&str> = table.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, columns, "{}", file.display());
    let rows = dump["rows"].as_array().unwrap();
    assert_eq!(table.len(), rows.len(), "{}", file.display());

    for (r, cells) in rows.iter().enumerate() {
        for (c, cell) in cells.as_array().unwrap().iter().enumerate() {
            let expected = reference_value(cell);
            assert_eq!(
                table.value(r, c),
                &expected,
                "{} row {r} field {}",
                file.display(),
                names[c]
            );
        }
    }
}

fn reference_value(cell: &serde_json::Value) -> Value {
    let Some(parts) = cell.as_array() else {
        return Value::Null;
    };
    let number = |i: usize| f64::from_bits(parts[i].as_u64().unwrap());
    match parts[0].as_str().unwrap() {
        "n" => Value::Number(number(1)),
        "s" => Value::text(parts[1].as_str().unwrap()),
        "d" => Value::dual(number(1), parts[2].as_str().unwrap()),
        other => panic!("unknown reference cell type {other}"),
    }
}

#[test]
fn lego_files_match_an_independent_reader() {
    for file in [
        "lego/colors.qvd",
        "lego/part_categories.qvd",
        "lego/themes.qvd",
        "lego/inventory_sets.qvd",
        "lego/inventories.qvd",
        "lego/sets.qvd",
        "lego/parts.qvd",
    ] {
        assert_matches_reference(&read(file), &data(file));
    }
}

#[test]
fn files_of_an_independent_writer_read_back_with_nulls_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("written.qvd");
    reference("write", &file);
    let table = read_qvd(&file).unwrap();
    assert_eq!(table.len(), 300);
    assert_matches_reference(&table, &file);

    let field = |name: &str| table.schema().field(name).unwrap().clone();
    assert_eq!(field("id").kind, FieldKind::Integer);
    assert_eq!(field("amount").kind, FieldKind::Number);
    assert_eq!(field("label").kind, FieldKind::Text);
    assert_eq!(field("mixed").kind, FieldKind::Mixed);
    assert_eq!(field("day").kind, FieldKind::Date);
    assert_eq!(field("day").format.unwrap().code, "YYYY-MM-DD");
    assert_eq!(field("moment").kind, FieldKind::Timestamp);
    assert!(
        field("moment")
            .format
            .unwrap()
            .code
            .starts_with("YYYY-MM-DD hh:mm:ss")
    );
    assert_eq!(field("clock").kind, FieldKind::Timestamp);
    assert_eq!(field("clock").format.unwrap().code, "hh:mm:ss");
    assert_eq!(field("duration").kind, FieldKind::Number);
    let price = field("price");
    assert_eq!(price.kind, FieldKind::Number);
    let format = price.format.unwrap();
    assert_eq!((format.decimal, format.thousands), (Some('.'), Some(',')));

    let amount = column(&table, "amount");
    assert!(table.value(0, amount).is_null());
    assert_eq!(table.value(1, amount), &Value::Number(-3.25));
    let day = column(&table, "day");
    assert!(table.value(0, day).is_null());
    assert_eq!(table.value(1, day), &dual(40_037.0, "2009-08-12"));
    let nothing = column(&table, "nothing");
    assert!(table.column_values(nothing).all(Value::is_null));
    // Nulls share one symbol appended to the field's own.
    let symbols = table.column(amount).symbols();
    assert_eq!(symbols.iter().filter(|v| v.is_null()).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Hand-built files

/// A field of a hand-built QVD: its symbols (encoded) and where its index sits in a record.
struct TestField {
    name: &'static str,
    symbols: Vec<Vec<u8>>,
    offset: u32,
    width: u32,
    bias: i32,
    tags: &'static [&'static str],
    format: [&'static str; 4],
}

impl TestField {
    fn new(name: &'static str, symbols: Vec<Vec<u8>>, offset: u32, width: u32) -> Self {
        TestField {
            name,
            symbols,
            offset,
            width,
            bias: 0,
            tags: &[],
            format: ["UNKNOWN", "", "", ""],
        }
    }
}

fn int(n: i32) -> Vec<u8> {
    [&[1u8][..], &n.to_le_bytes()].concat()
}

fn float(n: f64) -> Vec<u8> {
    [&[2u8][..], &n.to_le_bytes()].concat()
}

fn string(s: &str) -> Vec<u8> {
    [&[4u8][..], s.as_bytes(), &[0]].concat()
}

fn dual_int(n: i32, s: &str) -> Vec<u8> {
    [&[5u8][..], &n.to_le_bytes(), s.as_bytes(), &[0]].concat()
}

fn dual_float(n: f64, s: &str) -> Vec<u8> {
    [&[6u8][..], &n.to_le_bytes(), s.as_bytes(), &[0]].concat()
}

fn element(name: &str, value: impl std::fmt::Display) -> String {
    format!("<{name}>{value}</{name}>")
}

/// Builds a QVD file; `rows` holds, per record, each field's stored (unbiased) value.
fn build(
    fields: &[TestField],
    record_size: usize,
    rows: &[Vec<u64>],
    after_header: &str,
) -> Vec<u8> {
    let mut symbol_block = Vec::new();
    let mut field_headers = String::new();
    for f in fields {
        let table: Vec<u8> = f.symbols.concat();
        let tags: String = f.tags.iter().map(|t| element("String", t)).collect();
        let [kind, fmt, dec, thou] = f.format;
        let number_format = [
            element("Type", kind),
            element("nDec", 0),
            element("UseThou", 0),
            element("Fmt", fmt),
            element("Dec", dec),
            element("Thou", thou),
        ];
        let field_header = [
            element("FieldName", f.name),
            element("BitOffset", f.offset),
            element("BitWidth", f.width),
            element("Bias", f.bias),
            element("NumberFormat", number_format.concat()),
            element("NoOfSymbols", f.symbols.len()),
            element("Offset", symbol_block.len()),
            element("Length", table.len()),
            element("Comment", ""),
            element("Tags", tags),
        ];
        field_headers += &format!(
            "\r\n    {}",
            element("QvdFieldHeader", field_header.concat())
        );
        symbol_block.extend(table);
    }

    let mut row_block = Vec::new();
    for row in rows {
        let mut record = 0u128;
        for (f, stored) in fields.iter().zip(row) {
            record |= u128::from(*stored) << f.offset;
        }
        row_block.extend(&record.to_le_bytes()[..record_size]);
    }

    let table_header = [
        element("TableName", "t"),
        element("Fields", field_headers + "\r\n  "),
        element("Compression", ""),
        element("RecordByteSize", record_size),
        element("NoOfRecords", rows.len()),
        element("Offset", symbol_block.len()),
        element("Length", row_block.len()),
    ];
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n {}",
        element(
            "QvdTableHeader",
            format!("\r\n  {}\r\n ", table_header.join("\r\n  "))
        )
    );
    [
        xml.as_bytes(),
        after_header.as_bytes(),
        &symbol_block,
        &row_block,
    ]
    .concat()
}

#[test]
fn bit_order_is_not_header_order_and_records_can_be_wide() {
    // 13-byte records: "c" in the low 20 bits, "a" crossing the 64-bit boundary, "b" on top.
    let fields = [
        TestField::new("a", vec![int(10), int(20), int(30)], 60, 2),
        TestField::new("b", vec![string("x"), string("y")], 100, 1),
        TestField::new(
            "c",
            (0..1_000).map(|n| float(f64::from(n))).collect(),
            0,
            20,
        ),
    ];
    let rows = vec![vec![2, 1, 999], vec![0, 0, 0], vec![1, 1, 500]];
    let table = parse_qvd(&build(&fields, 13, &rows, "\r\n\0")).unwrap();
    assert_eq!(
        row(&table, 0),
        [Value::Number(30.0), text("y"), Value::Number(999.0)]
    );
    assert_eq!(
        row(&table, 1),
        [Value::Number(10.0), text("x"), Value::Number(0.0)]
    );
    assert_eq!(
        row(&table, 2),
        [Value::Number(20.0), text("y"), Value::Number(500.0)]
    );
    assert_eq!(
        kinds(&table),
        [FieldKind::Integer, FieldKind::Text, FieldKind::Integer]
    );
}

#[test]
fn zero_width_fields_and_bias_nulls() {
    let mut constant = TestField::new("constant", vec![dual_int(7, "seven")], 0, 0);
    constant.tags = &["$numeric", "$integer"];
    let mut all_null = TestField::new("all_null", vec![], 0, 0);
    all_null.bias = -2;
    let mut some_null = TestField::new("some_null", vec![dual_float(1.5, "1,5")], 0, 2);
    some_null.bias = -2;
    let fields = [constant, all_null, some_null];
    // Stored 0 and 1 are the nulls (index -2 and -1), 2 is the first symbol.
    let rows = vec![vec![0, 0, 2], vec![0, 0, 0], vec![0, 0, 1]];
    // A header ending with a bare LF and no zero byte is accepted too.
    let table = parse_qvd(&build(&fields, 1, &rows, "\n")).unwrap();
    assert_eq!(table.len(), 3);
    for r in 0..3 {
        assert_eq!(table.value(r, 0), &dual(7.0, "seven"));
        assert!(table.value(r, 1).is_null());
    }
    assert_eq!(table.value(0, 2), &dual(1.5, "1,5"));
    assert!(table.value(1, 2).is_null());
    assert!(table.value(2, 2).is_null());
    assert_eq!(table.column(2).symbols().len(), 2);
}

#[test]
fn format_metadata_becomes_kind_and_format() {
    let mut date = TestField::new("d", vec![dual_int(45_000, "15.03.2023")], 0, 1);
    date.tags = &["$numeric", "$integer", "$timestamp", "$date"];
    date.format = ["DATE", "DD.MM.YYYY", ",", "."];
    let mut money = TestField::new("m", vec![dual_float(1234.5, "1.234,50 €")], 1, 1);
    money.tags = &["$numeric"];
    money.format = ["MONEY", "#.##0,00 €", ",", "."];
    let mut fixed = TestField::new("f", vec![float(0.5)], 2, 1);
    fixed.format = ["FIX", "0.0%", ".", ""];
    let table = parse_qvd(&build(&[date, money, fixed], 1, &[vec![0, 0, 0]], "\r\n\0")).unwrap();

    let fields = table.fields();
    assert_eq!(fields[0].kind, FieldKind::Date);
    let format = fields[0].format.clone().unwrap();
    assert_eq!(format.code, "DD.MM.YYYY");
    assert_eq!((format.decimal, format.thousands), (Some(','), Some('.')));
    assert_eq!(fields[1].kind, FieldKind::Number);
    assert_eq!(fields[1].format.clone().unwrap().code, "#.##0,00 €");
    assert_eq!(fields[2].kind, FieldKind::Number);
    assert_eq!(fields[2].format.clone().unwrap().thousands, None);
}

fn small_file() -> (Vec<TestField>, Vec<Vec<u64>>) {
    let fields = vec![
        TestField::new("name", vec![string("a"), string("b")], 0, 1),
        TestField::new("n", vec![int(1), int(2), int(3)], 1, 2),
    ];
    (fields, vec![vec![0, 2], vec![1, 0]])
}

fn invalid(bytes: &[u8]) -> String {
    let err = parse_qvd(bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.backend(), Some("qvd"));
    err.to_string()
}

#[test]
fn inconsistencies_are_named() {
    let (fields, rows) = small_file();
    let good = build(&fields, 1, &rows, "\r\n\0");
    assert!(parse_qvd(&good).is_ok());

    let header_end = find(&good, b"</QvdTableHeader>");
    let message = invalid(&good[..header_end + 5]);
    assert!(message.contains("truncated"), "{message}");
    let message = invalid(&good[..header_end]);
    assert!(message.contains("</QvdTableHeader>"), "{message}");

    // An index past the symbols: stored 3 for "n", which has three symbols.
    let message = invalid(&build(&fields, 1, &[vec![0, 3]], "\r\n\0"));
    assert!(
        message.contains("field 'n'") && message.contains("symbol 4"),
        "{message}"
    );

    let mut unknown_type = good.clone();
    let first_symbol = header_end + "</QvdTableHeader>\r\n\0".len();
    unknown_type[first_symbol] = 0x03;
    let message = invalid(&unknown_type);
    assert!(
        message.contains("0x03") && message.contains("'name'"),
        "{message}"
    );

    let message = invalid(&good[..good.len() - 1]);
    assert!(
        message.contains("row block") && message.contains("truncated"),
        "{message}"
    );

    let short = replace(
        &good,
        "<Length>2</Length>\r\n </QvdTableHeader>",
        "<Length>1</Length>\r\n </QvdTableHeader>",
    );
    let message = invalid(&short);
    assert!(message.contains("row block is 1 bytes"), "{message}");

    let outside = replace(
        &good,
        "<Offset>0</Offset><Length>6</Length>",
        "<Offset>0</Offset><Length>400</Length>",
    );
    let message = invalid(&outside);
    assert!(
        message.contains("symbol table of field 'name'"),
        "{message}"
    );

    let too_many = replace(
        &good,
        "<NoOfSymbols>2</NoOfSymbols>",
        "<NoOfSymbols>3</NoOfSymbols>",
    );
    let message = invalid(&too_many);
    assert!(message.contains("'name'"), "{message}");

    let wide = replace(
        &good,
        "<BitOffset>1</BitOffset>",
        "<BitOffset>7</BitOffset>",
    );
    let message = invalid(&wide);
    assert!(message.contains("bits 7..9"), "{message}");

    let twice = replace(
        &good,
        "<FieldName>n</FieldName>",
        "<FieldName>name</FieldName>",
    );
    let message = invalid(&twice);
    assert!(message.contains("twice"), "{message}");

    let compressed = replace(
        &good,
        "<Compression></Compression>",
        "<Compression>zip</Compression>",
    );
    let err = parse_qvd(&compressed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = find(bytes, from.as_bytes());
    [&bytes[..at], to.as_bytes(), &bytes[at + from.len()..]].concat()
}

// ---------------------------------------------------------------------------------------------
// Damaged copies of real files

/// The declared record count, read from the header without the reader under test.
fn declared_records(bytes: &[u8]) -> usize {
    let end = find(bytes, b"</QvdTableHeader>");
    let header = std::str::from_utf8(&bytes[..end]).unwrap();
    let tail = &header[header.rfind("<NoOfRecords>").unwrap() + "<NoOfRecords>".len()..];
    tail[..tail.find('<').unwrap()].parse().unwrap()
}

/// Parses a damaged copy: it must give a table of at most the declared rows or an error of a
/// kind that names bad input, and never panic.
fn parse_damaged(bytes: &[u8], declared: usize, what: &str) {
    let result = catch_unwind(AssertUnwindSafe(|| parse_qvd(bytes)))
        .unwrap_or_else(|_| panic!("the reader panicked on {what}"));
    match result {
        Ok(table) => assert!(table.len() <= declared, "{what}: {} rows", table.len()),
        Err(err) => assert!(
            matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported),
            "{what}: {err:?}"
        ),
    }
}

const SMALL_FILES: [&str; 5] = [
    "lego/part_categories.qvd",
    "lego/colors.qvd",
    "lego/themes.qvd",
    "lego/inventory_sets.qvd",
    "misc/empty_qvd.qvd",
];

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for file in SMALL_FILES {
        let bytes = std::fs::read(data(file)).unwrap();
        let declared = declared_records(&bytes);
        // Every length for files up to 20 kB, every 7th (and the last 64) beyond.
        let step = if bytes.len() > 20_000 { 7 } else { 1 };
        let lengths = (0..bytes.len())
            .step_by(step)
            .chain(bytes.len().saturating_sub(64)..bytes.len());
        for len in lengths {
            let what = format!("{file} cut to {len} bytes");
            parse_damaged(&bytes[..len], declared, &what);
            if file != "misc/empty_qvd.qvd" {
                assert!(parse_qvd(&bytes[..len]).is_err(), "{what} was accepted");
            }
        }
    }
}

/// A small deterministic generator, so a failure names a damage that can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_damage_is_ok_or_an_error_never_a_panic() {
    let mut random = XorShift(0x5eed_0f9d_2025);
    for file in SMALL_FILES {
        let bytes = std::fs::read(data(file)).unwrap();
        let declared = declared_records(&bytes);
        let binary_start = find(&bytes, b"</QvdTableHeader>") + "</QvdTableHeader>".len();
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3_000 {
            let at = binary_start + random.below(bytes.len() - binary_start);
            let byte = random.next() as u8;
            let mut damaged = bytes.clone();
            damaged[at] = byte;
            parse_damaged(
                &damaged,
                declared,
                &format!("{file} with byte {at} set to {byte:#04x}"),
            );
            match parse_qvd(&damaged) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        // Damage in the binary part must be caught often; a changed text or index that stays
        // within its symbol table is indistinguishable from real data.
        if file != "misc/empty_qvd.qvd" {
            assert!(
                refused > 100,
                "{file}: {refused} refused, {accepted} accepted"
            );
        }
        for _ in 0..300 {
            let at = random.below(binary_start);
            let mut damaged = bytes.clone();
            damaged[at] = random.next() as u8;
            let what = format!("{file} with header byte {at} set to {:#04x}", damaged[at]);
            let result = catch_unwind(AssertUnwindSafe(|| parse_qvd(&damaged)));
            assert!(result.is_ok(), "the reader panicked on {what}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The data source

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn source_filters_and_projects_through_fetch() {
    runtime().block_on(async {
        let source = QvdSource::new(QvdOptions::new(data("lego/colors.qvd")));
        assert!(source.name().ends_with("colors.qvd"));
        let names: Vec<String> = source
            .fields()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["id", "name", "rgb", "is_trans"]);

        let all = read("lego/colors.qvd");
        let is_trans = column(&all, "is_trans");
        let expected = all
            .column_values(is_trans)
            .filter(|v| v == &&text("t"))
            .count();
        assert!(expected > 0);

        let filters = FilterSet::from_filters([Filter::new("is_trans", ["t"])]);
        let query = Query::fields(["name", "is_trans"]);
        let table = source
            .fetch(FetchRequest::new(&query, &filters))
            .await
            .unwrap();
        assert_eq!(table.len(), expected);
        assert_eq!(table.fields().len(), 2);
        let debug = format!("{source:?}");
        assert!(
            debug.contains("colors.qvd") && debug.contains("Some(135)"),
            "{debug}"
        );
        assert!(
            !debug.contains("Unknown"),
            "the rows stay out of Debug: {debug}"
        );
        assert!(table.column_values(1).all(|v| v == &text("t")));

        let excluded = FilterSet::from_filters([Filter::new("is_trans", ["t"]).excluding()]);
        let everything = Query::default();
        let rest = source
            .fetch(FetchRequest::new(&everything, &excluded))
            .await
            .unwrap();
        assert_eq!(rest.len(), 135 - expected);

        // A dual matches by its text and by its number.
        let by_id = FilterSet::from_filters([Filter::new("id", ["-1", "0"])]);
        let two = source
            .fetch(FetchRequest::new(&everything, &by_id))
            .await
            .unwrap();
        assert_eq!(two.len(), 2);
    });
}

#[test]
fn source_names_missing_fields_and_files() {
    runtime().block_on(async {
        let source = QvdSource::new(QvdOptions::new(data("lego/colors.qvd")));
        let filters = FilterSet::from_filters([Filter::new("country", ["SE"])]);
        let query = Query::default();
        let err = source
            .fetch(FetchRequest::new(&query, &filters))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
        assert!(err.to_string().contains("'country'"), "{err}");
        assert_eq!(err.backend(), Some("qvd"));

        let unknown_value = FilterSet::from_filters([Filter::new("is_trans", ["maybe"])]);
        let err = source
            .fetch(FetchRequest::new(&query, &unknown_value))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EmptyFilter, "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = QvdSource::new(QvdOptions::new(dir.path().join("gone.qvd")));
        let all = FilterSet::all();
        let err = missing
            .fetch(FetchRequest::new(&query, &all))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("gone.qvd"), "{err}");
    });
}

#[test]
fn registry_builds_the_qvd_kind_with_relative_paths() {
    let mut registry = Registry::new();
    mad_qlik::register(&mut registry);
    let ctx = BuildContext::new(DATA);

    let options = serde_json::json!({ "path": "lego/themes.qvd" });
    let source = registry.build_source("qvd", &options, &ctx).unwrap();
    let filters = FilterSet::from_filters([Filter::new("parent_id", ["1"])]);
    let query = Query::fields(["name"]);
    let table = runtime()
        .block_on(source.fetch(FetchRequest::new(&query, &filters)))
        .unwrap();
    assert!(table.len() > 1);
    assert!(table.column_values(0).any(|v| v == &text("Arctic Technic")));

    let typo = serde_json::json!({ "path": "lego/themes.qvd", "delimiter": ";" });
    let err = registry.build_source("qvd", &typo, &ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("delimiter"), "{err}");

    let err = registry
        .build_source("qvd", &serde_json::json!({}), &ctx)
        .unwrap_err();
    assert!(err.to_string().contains("path"), "{err}");
}
