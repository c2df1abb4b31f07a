//! XLSX templates: a workbook built here with rust_xlsxwriter (styled header, a marker row, a
//! `SUM` formula below it, a chart over the marker row, a second sheet) is filled by the
//! renderer and read back with calamine (values and types) and openpyxl (styles, formulas,
//! charts and sheets kept).

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, ErrorKind, Field, FieldKind, FilterSet, Locale,
    NumberFormat, OutputFormat, Placeholders, RenderJob, Renderer, ReportDef, Schema, Table, Value,
    Workspace,
};
use mad_render::XlsxRenderer;
use rust_xlsxwriter::{Chart, ChartType, Color, Format, FormatPattern, Formula, Workbook};

/// The template: sheet "Sales" with a title, a styled header in row 4, the marker in A5 (its
/// row styled per column), a total formula in B6, a note in A8 and a chart over the marker
/// row; sheet "Notes" with a reference to B6 and a placeholder.
fn write_template(dir: &Path, marker: &str) -> PathBuf {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet().set_name("Sales").unwrap();
    let bold = Format::new().set_bold().set_font_size(16);
    sheet
        .write_string_with_format(0, 0, "Sales for {recipient.name}", &bold)
        .unwrap();
    sheet
        .write_string(1, 0, "As of {run.date}, region {Region}")
        .unwrap();
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDEEFF))
        .set_pattern(FormatPattern::Solid);
    for (col, name) in ["City", "Amount", "Day"].into_iter().enumerate() {
        sheet
            .write_string_with_format(3, col as u16, name, &header)
            .unwrap();
    }
    let italic = Format::new().set_italic();
    sheet
        .write_string_with_format(4, 0, marker, &italic)
        .unwrap();
    let money = Format::new()
        .set_num_format("#,##0.00")
        .set_font_color(Color::RGB(0x1F4E79));
    sheet.write_blank(4, 1, &money).unwrap();
    sheet.write_string(5, 0, "Sum").unwrap();
    sheet
        .write_formula(5, 1, Formula::new("=SUM(B5:B5)"))
        .unwrap();
    sheet.write_string(7, 0, "Footer note").unwrap();
    let mut chart = Chart::new(ChartType::Column);
    chart
        .add_series()
        .set_categories("Sales!$A$5:$A$5")
        .set_values("Sales!$B$5:$B$5");
    sheet.insert_chart(1, 5, &chart).unwrap();

    let notes = book.add_worksheet().set_name("Notes").unwrap();
    notes.write_string(0, 0, "Keep me").unwrap();
    notes
        .write_formula(1, 0, Formula::new("=Sales!B6*2"))
        .unwrap();
    notes
        .write_string(2, 0, "Prepared for {recipient.name}")
        .unwrap();

    let path = dir.join("sales.xlsx");
    book.save(&path).unwrap();
    path
}

fn table(rows: &[(&str, f64, f64)]) -> Table {
    let schema = Schema::new(vec![
        Field::new("City", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
        Field::new("Day", FieldKind::Date).with_format(NumberFormat::new("DD.MM.YYYY")),
    ]);
    let mut columns: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
    for (city, amount, day) in rows {
        columns[0].push(Value::text(*city));
        columns[1].push(Value::Number(*amount));
        columns[2].push(Value::Number(*day));
    }
    Table::new(
        schema,
        columns.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap()
}

fn report(template: &Path) -> ReportDef {
    let mut report = ReportDef::new("sales", "Sales");
    report.formats = vec![OutputFormat::Xlsx];
    report.columns = vec![
        ColumnDef::new("City"),
        ColumnDef::new("Amount").total(Aggregate::Sum),
        ColumnDef::new("Day"),
    ];
    report.template = Some(template.to_path_buf());
    report
}

fn render(report: &ReportDef, table: &Table) -> mad_core::Result<Vec<u8>> {
    let placeholders = Placeholders::new()
        .with("recipient.name", "Zoë <Ltd>")
        .with("run.date", "2026-12-04")
        .with("Region", "West");
    XlsxRenderer::new().render(&RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &Locale::default(),
        filters: &FilterSet::all(),
        deterministic: true,
        created_at: 0,
    })
}

fn rows() -> Vec<(&'static str, f64, f64)> {
    vec![
        ("Zürich", 1234.5, 45000.0),
        ("Łódź", -20.25, 45001.0),
        ("Αθήνα", 300.0, 45002.0),
    ]
}

#[test]
fn a_template_is_filled_and_keeps_its_styles_formulas_charts_and_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let template = write_template(dir.path(), "{{table}}");
    let bytes = render(&report(&template), &table(&rows())).unwrap();

    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(workbook.sheet_names(), ["Sales", "Notes"]);
    let cells = workbook.worksheet_range("Sales").unwrap();
    let at = |row: u32, col: u32| cells.get_value((row, col)).cloned();
    assert_eq!(at(0, 0), Some(Data::String("Sales for Zoë <Ltd>".into())));
    assert_eq!(
        at(1, 0),
        Some(Data::String("As of 2026-12-04, region West".into()))
    );
    assert_eq!(at(3, 1), Some(Data::String("Amount".into())));
    for (i, (city, amount, day)) in rows().into_iter().enumerate() {
        let row = 4 + i as u32;
        assert_eq!(at(row, 0), Some(Data::String(city.into())));
        assert_eq!(at(row, 1), Some(Data::Float(amount)));
        let Some(Data::DateTime(written)) = at(row, 2) else {
            panic!("row {row}: the day is a date cell, found {:?}", at(row, 2));
        };
        assert_eq!(written.as_f64(), day);
    }
    // Row 8 (1-based) is the totals row; the template's rows below the marker moved down by
    // three (two more data rows and the totals row).
    assert_eq!(at(7, 0), Some(Data::String("Grand total".into())));
    assert_eq!(at(7, 1), Some(Data::Float(1514.25)));
    assert_eq!(at(8, 0), Some(Data::String("Sum".into())));
    assert_eq!(at(10, 0), Some(Data::String("Footer note".into())));
    let notes = workbook.worksheet_range("Notes").unwrap();
    assert_eq!(
        notes.get_value((0, 0)),
        Some(&Data::String("Keep me".into()))
    );
    assert_eq!(
        notes.get_value((2, 0)),
        Some(&Data::String("Prepared for Zoë <Ltd>".into()))
    );

    let path = dir.path().join("filled.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    let seen = common::openpyxl(
        &path,
        "sales = book['Sales']\n\
         notes = book['Notes']\n\
         def look(ref):\n\
         \x20   c = sales[ref]\n\
         \x20   return [c.font.b, c.font.i, c.fill.fgColor.rgb if c.fill.fill_type else None,\n\
         \x20           c.number_format,\n\
         \x20           c.font.color.rgb if c.font.color is not None and c.font.color.type == 'rgb'\n\
         \x20           else None]\n\
         chart = sales._charts[0]\n\
         print(json.dumps({\n\
         \x20   'sheets': book.sheetnames,\n\
         \x20   'header': look('B4'),\n\
         \x20   'city': [look(r) for r in ('A5', 'A6', 'A7')],\n\
         \x20   'amount': [look(r) for r in ('B5', 'B6', 'B7')],\n\
         \x20   'day': look('C6'),\n\
         \x20   'total': [sales['B8'].value, look('B8')[0]],\n\
         \x20   'sum': sales['B9'].value,\n\
         \x20   'notes': notes['A2'].value,\n\
         \x20   'chart': [type(chart).__name__, chart.series[0].val.numRef.f,\n\
         \x20             chart.series[0].cat.strRef.f if chart.series[0].cat.strRef else\n\
         \x20             chart.series[0].cat.numRef.f],\n\
         }))",
    );
    let blue = "FF1F4E79";
    assert_eq!(
        seen,
        serde_json::json!({
            "sheets": ["Sales", "Notes"],
            "header": [true, false, "FFDDEEFF", "General", null],
            "city": vec![serde_json::json!([false, true, null, "General", null]); 3],
            "amount": vec![serde_json::json!([false, false, null, "#,##0.00", blue]); 3],
            "day": [false, false, null, "dd.mm.yyyy", null],
            "total": ["=SUBTOTAL(9,B5:B7)", true],
            "sum": "=SUM(B5:B7)",
            "notes": "=Sales!B9*2",
            "chart": ["BarChart", "Sales!$B$5:$B$7", "Sales!$A$5:$A$7"],
        })
    );
}

#[test]
fn a_named_marker_and_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let template = write_template(dir.path(), "{table:sales}");
    let bytes = render(&report(&template), &table(&[])).unwrap();

    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let cells = workbook.worksheet_range("Sales").unwrap();
    assert_eq!(
        cells.get_value((4, 0)),
        Some(&Data::String("No data for these filters.".into()))
    );
    assert_eq!(
        cells.get_value((5, 0)),
        Some(&Data::String("Sum".into())),
        "nothing moves"
    );
}

#[test]
fn template_mistakes_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rows = table(&rows());

    let other = write_template(dir.path(), "{table:other}");
    let err = render(&report(&other), &rows).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("report 'other'"), "{err}");

    let none = write_template(dir.path(), "no marker here");
    let err = render(&report(&none), &rows).unwrap_err();
    assert!(err.to_string().contains("no table marker"), "{err}");

    let typo = write_template(dir.path(), "{{table}}");
    let missing = dir.path().join("missing.xlsx");
    let err = render(&report(&missing), &rows).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.xlsx"), "{err}");

    let damaged = dir.path().join("damaged.xlsx");
    std::fs::write(&damaged, b"PK\x03\x04 not really a workbook").unwrap();
    let err = render(&report(&damaged), &rows).unwrap_err();
    assert_eq!(err.backend(), Some("xlsx"));
    assert!(err.to_string().contains("damaged.xlsx"), "{err}");

    let mut unknown = report(&typo);
    unknown.title = "Sales".into();
    let placeholders = Placeholders::new().with("recipient.name", "Zoë");
    let err = XlsxRenderer::new()
        .render(&RenderJob {
            report: &unknown,
            table: &rows,
            placeholders: &placeholders,
            locale: &Locale::default(),
            filters: &FilterSet::all(),
            deterministic: true,
            created_at: 0,
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("{run.date}"), "{err}");
    assert!(err.to_string().contains("cell A2"), "{err}");
}

#[test]
fn definitions_resolve_the_template_against_their_folder() {
    let dir = tempfile::tempdir().unwrap();
    let template = write_template(dir.path(), "{{table}}");
    let workspace = Workspace::from_toml(
        r#"
        [reports.sales]
        title = "Sales"
        formats = ["xlsx"]
        file_name = "sales"
        template = "sales.xlsx"
        "#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        workspace.reports["sales"].template.as_deref(),
        Some(template.as_path())
    );

    let err = Workspace::from_toml(
        r#"
        [reports.sales]
        title = "Sales"
        formats = ["pdf"]
        file_name = "sales"
        template = "sales.xlsx"
        "#,
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("does not list the xlsx format"),
        "{err}"
    );
}

#[test]
fn deterministic_fills_of_a_template_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let template = write_template(dir.path(), "{{table}}");
    let report = report(&template);
    let rows = table(&rows());
    // The spreadsheet library's hash order changes per workbook, so one pair could agree by
    // chance; eight renders would not.
    let first = render(&report, &rows).unwrap();
    for _ in 0..8 {
        let again = render(&report, &rows).unwrap();
        assert!(first == again, "two deterministic fills differ");
    }

    // A second template file with the same content fills to the same bytes too: nothing of
    // the file's name, time or cache entry reaches the workbook.
    let copy = dir.path().join("copy.xlsx");
    std::fs::copy(&template, &copy).unwrap();
    let mut copied = report.clone();
    copied.template = Some(copy);
    assert!(render(&copied, &rows).unwrap() == first);
}
