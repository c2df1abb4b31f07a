//! Native charts, conditional styles and locale labels of the XLSX renderer, read back from
//! the zip parts, with calamine and with openpyxl, against sums taken from the source CSV.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ChartDef, ChartKind, ColumnDef, ConditionalStyle, ErrorKind, Filter, FilterSet,
    Locale, Placeholders, RenderJob, Renderer, ReportDef, Table,
};
use mad_render::XlsxRenderer;

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn west() -> (Table, FilterSet) {
    let filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let table = read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore CSV loads");
    (filters.apply(&table).unwrap(), filters)
}

fn render(
    report: &ReportDef,
    table: &Table,
    filters: &FilterSet,
    locale: &str,
) -> mad_core::Result<Vec<u8>> {
    let placeholders = Placeholders::new().with("region", "West");
    XlsxRenderer::new().render(&RenderJob {
        report,
        table,
        placeholders: &placeholders,
        locale: &Locale::new(locale),
        filters,
        deterministic: true,
        created_at: 0,
    })
}

fn zip_entry(bytes: &[u8], name: &str) -> Option<String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut entry = archive.by_name(name).ok()?;
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    Some(text)
}

fn sheet(bytes: &[u8], name: &str) -> calamine::Range<Data> {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    workbook.worksheet_range(name).unwrap()
}

fn sheet_names(bytes: &[u8]) -> Vec<String> {
    let workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    workbook.sheet_names()
}

/// Sum of `measure` (a column number of the CSV) per value of `dimension`, read with the csv
/// crate.
fn source_sums(dimension: usize, measure: usize) -> BTreeMap<String, (f64, usize)> {
    let mut reader = csv::Reader::from_path(SUPERSTORE).unwrap();
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for record in reader.records().map(Result::unwrap) {
        if &record[12] != "West" {
            continue;
        }
        let entry = sums.entry(record[dimension].to_string()).or_default();
        entry.0 += record[measure].parse::<f64>().unwrap();
        entry.1 += 1;
    }
    sums
}

fn chart_report() -> ReportDef {
    let mut report = ReportDef::new("charts", "Sales {region}");
    report.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Category"),
        ColumnDef::new("Segment"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum)
            .style(ConditionalStyle::new("< 0").with_color("#C00000"))
            .style(
                ConditionalStyle::new(">= 1000")
                    .with_background("#E2EFDA")
                    .with_bold(),
            ),
    ];
    report.charts = vec![
        ChartDef::new(ChartKind::Bar, "Category", "Sales")
            .with_title("Sales by category, {region}"),
        ChartDef::new(ChartKind::Pie, "Segment", "Order ID").with_aggregate(Aggregate::Count),
        ChartDef::new(ChartKind::Line, "Ship Mode", "Profit").with_aggregate(Aggregate::Avg),
    ];
    report
}

#[test]
fn charts_are_native_over_aggregated_ranges() {
    let (table, filters) = west();
    let bytes = render(&chart_report(), &table, &filters, "en-US").unwrap();

    assert_eq!(sheet_names(&bytes), ["Sales West", "Charts data"]);
    let bar = zip_entry(&bytes, "xl/charts/chart1.xml").expect("a first chart part");
    assert!(bar.contains("<c:barChart>"), "{bar}");
    assert!(bar.contains(r#"<c:barDir val="col"/>"#));
    assert!(bar.contains("<c:f>'Charts data'!$A$2:$A$4</c:f>"), "{bar}");
    assert!(bar.contains("<c:f>'Charts data'!$B$2:$B$4</c:f>"));
    assert!(bar.contains("Sales by category, West"));
    let pie = zip_entry(&bytes, "xl/charts/chart2.xml").unwrap();
    assert!(pie.contains("<c:pieChart>"));
    assert!(pie.contains("<c:f>'Charts data'!$E$2:$E$4</c:f>"), "{pie}");
    let line = zip_entry(&bytes, "xl/charts/chart3.xml").unwrap();
    assert!(line.contains("<c:lineChart>"));
    assert!(
        line.contains("<c:f>'Charts data'!$H$2:$H$5</c:f>"),
        "{line}"
    );
    let drawing = zip_entry(&bytes, "xl/drawings/drawing1.xml").unwrap();
    assert!(
        drawing.contains("<xdr:col>6</xdr:col>"),
        "the charts stand beside the table"
    );

    let data = sheet(&bytes, "Charts data");
    let categories = source_sums(14, 17);
    for (row, (category, (sales, _))) in (1u32..).zip(&categories) {
        assert_eq!(
            data.get_value((row, 0)),
            Some(&Data::String(category.clone()))
        );
        let Some(Data::Float(written)) = data.get_value((row, 1)) else {
            panic!("no sum for {category}");
        };
        assert!(
            (written - sales).abs() < 1e-6,
            "{category}: {written} vs {sales}"
        );
    }
    let segments = source_sums(7, 17);
    for (row, (segment, (_, count))) in (1u32..).zip(&segments) {
        assert_eq!(
            data.get_value((row, 3)),
            Some(&Data::String(segment.clone()))
        );
        assert_eq!(data.get_value((row, 4)), Some(&Data::Float(*count as f64)));
    }
    let modes = source_sums(4, 20);
    for (row, (mode, (profit, count))) in (1u32..).zip(&modes) {
        assert_eq!(data.get_value((row, 6)), Some(&Data::String(mode.clone())));
        let Some(Data::Float(average)) = data.get_value((row, 7)) else {
            panic!("no average for {mode}");
        };
        assert!((average - profit / *count as f64).abs() < 1e-6);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charts.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    let seen = common::openpyxl(
        &path,
        "sheet = book['Sales West']\n\
         print(json.dumps([[type(c).__name__, c.series[0].val.numRef.f] for c in sheet._charts]))",
    );
    assert_eq!(
        seen,
        serde_json::json!([
            ["BarChart", "'Charts data'!$B$2:$B$4"],
            ["PieChart", "'Charts data'!$E$2:$E$4"],
            ["LineChart", "'Charts data'!$H$2:$H$5"]
        ])
    );
}

#[test]
fn conditional_styles_are_excel_conditional_formats() {
    let (table, filters) = west();
    let bytes = render(&chart_report(), &table, &filters, "en-US").unwrap();
    let cells = sheet(&bytes, "Sales West");
    let last = cells.end().unwrap().0 + 1;

    let xml = zip_entry(&bytes, "xl/worksheets/sheet1.xml").unwrap();
    assert!(
        xml.contains(&format!(r#"<conditionalFormatting sqref="E5:E{last}">"#)),
        "{}",
        &xml[xml.find("<conditionalFormatting").unwrap_or(0)..]
    );
    assert!(xml.contains(r#"operator="lessThan"><formula>0</formula>"#));
    assert!(xml.contains(r#"operator="greaterThanOrEqual"><formula>1000</formula>"#));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("styles.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    let seen = common::openpyxl(
        &path,
        "sheet = book['Sales West']\n\
         out = []\n\
         for rng in sheet.conditional_formatting:\n\
         \x20   for rule in rng.rules:\n\
         \x20       font = rule.dxf.font\n\
         \x20       fill = rule.dxf.fill\n\
         \x20       out.append([str(rng.sqref), rule.operator, rule.formula, rule.stopIfTrue,\n\
         \x20           font.color.rgb if font is not None and font.color is not None else None,\n\
         \x20           bool(font is not None and font.b),\n\
         \x20           fill.bgColor.rgb if fill is not None else None])\n\
         print(json.dumps(sorted(out, key=lambda r: r[1])))",
    );
    let range = format!("E5:E{last}");
    assert_eq!(
        seen,
        serde_json::json!([
            [
                range,
                "greaterThanOrEqual",
                ["1000"],
                true,
                null,
                true,
                "FFE2EFDA"
            ],
            [range, "lessThan", ["0"], true, "FFC00000", false, null]
        ])
    );
}

#[test]
fn texts_the_workbook_writes_follow_the_locale() {
    let (table, filters) = west();
    let mut report = chart_report();
    report.group_by = vec!["Segment".into()];
    let bytes = render(&report, &table, &filters, "de-DE").unwrap();
    let cells = sheet(&bytes, "Sales West");
    let texts: Vec<String> = cells
        .rows()
        .filter_map(|r| {
            r.iter().find_map(|c| match c {
                Data::String(s) => Some(s.clone()),
                _ => None,
            })
        })
        .collect();

    assert!(
        texts.contains(&"Filter: Region = West".to_string()),
        "{texts:?}"
    );
    assert!(texts.contains(&"Summe Consumer".to_string()), "{texts:?}");
    assert_eq!(texts.last().map(String::as_str), Some("Gesamtsumme"));
    let styles = zip_entry(&bytes, "xl/styles.xml").unwrap();
    assert!(
        styles.contains(r##"formatCode="#,##0.00""##),
        "codes stay Excel's"
    );
}

#[test]
fn an_empty_table_gets_no_chart() {
    let (table, _) = west();
    let filters = FilterSet::from_filters([Filter::new("Region", ["Nowhere"])]);
    let empty = table.filter_rows(|_| false);
    let bytes = render(&chart_report(), &empty, &filters, "en-US").unwrap();

    assert_eq!(sheet_names(&bytes), ["Sales West"]);
    assert!(zip_entry(&bytes, "xl/charts/chart1.xml").is_none());
}

#[test]
fn bad_charts_give_clear_errors() {
    let (table, filters) = west();
    let mut report = chart_report();
    report.charts = vec![ChartDef::new(ChartKind::Bar, "Category", "City")];
    let err = render(&report, &table, &filters, "en-US").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.backend(), Some("xlsx"));
    assert!(err.to_string().contains("'City' holds texts"), "{err}");

    report.charts = vec![ChartDef::new(ChartKind::Pie, "Territory", "Sales")];
    let err = render(&report, &table, &filters, "en-US").unwrap_err();
    assert!(err.to_string().contains("'Territory'"), "{err}");

    report.charts = vec![ChartDef::new(ChartKind::Pie, "Category", "Sales").with_title("{nope}")];
    let err = render(&report, &table, &filters, "en-US").unwrap_err();
    assert!(err.to_string().contains("{nope}"), "{err}");
}

#[test]
fn deterministic_renders_with_charts_and_conditional_formats_are_byte_identical() {
    let (table, filters) = west();
    let report = chart_report();
    let first = render(&report, &table, &filters, "de-DE").unwrap();
    let second = render(&report, &table, &filters, "de-DE").unwrap();

    assert!(zip_entry(&first, "xl/charts/chart1.xml").is_some());
    let sheet = zip_entry(&first, "xl/worksheets/sheet1.xml").unwrap();
    assert!(
        sheet.contains("<conditionalFormatting"),
        "rust_xlsxwriter's path"
    );
    assert!(first == second, "two deterministic renders differ");
    let core = zip_entry(&first, "docProps/core.xml").unwrap();
    assert!(core.contains("2000-01-01T00:00:00Z"), "{core}");
}
