//! The HTML renderer parsed back with an HTML5 parser (scraper, on html5ever), against values
//! and sums taken from the source CSV by the csv crate.

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, Field, FieldKind, Filter, FilterSet, Locale, Placeholders,
    RenderJob, Renderer, ReportDef, Schema, SortKey, Table, Value,
};
use mad_render::HtmlRenderer;
use scraper::{ElementRef, Html, Selector};

const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/superstore/superstore.csv"
);

fn render(
    report: &ReportDef,
    table: &Table,
    filters: &FilterSet,
    placeholders: &Placeholders,
) -> String {
    let locale = Locale::default();
    let bytes = HtmlRenderer::new()
        .render(&RenderJob {
            report,
            table,
            placeholders,
            locale: &locale,
            filters,
            deterministic: true,
        })
        .expect("the page renders");
    String::from_utf8(bytes).expect("the page is UTF-8")
}

fn select<'a>(html: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    html.select(&Selector::parse(css).unwrap()).collect()
}

fn text(element: &ElementRef<'_>) -> String {
    element.text().collect()
}

fn texts(html: &Html, css: &str) -> Vec<String> {
    select(html, css).iter().map(text).collect()
}

fn text_table(rows: &[(&str, &str)]) -> Table {
    let schema = Schema::new(vec![
        Field::new("Name", FieldKind::Text),
        Field::new("City", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
    ]);
    let mut columns: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
    for (i, (name, city)) in rows.iter().enumerate() {
        columns[0].push(Value::text(*name));
        columns[1].push(Value::text(*city));
        columns[2].push(Value::Number(i as f64 * 1000.5));
    }
    Table::new(
        schema,
        columns.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap()
}

#[test]
fn values_and_placeholder_texts_are_escaped() {
    let hostile = [
        ("<script>alert(1)</script>", "Zürich"),
        (r#""quoted" & 'single'"#, "Łódź"),
        ("<img src=x onerror=alert(2)>", "Ελλάδα"),
    ];
    let table = text_table(&hostile);
    let mut report = ReportDef::new("x", "Report for {recipient.name}");
    report.subtitle = Some("Region {region}".into());
    let placeholders = Placeholders::new()
        .with("recipient.name", "<b onmouseover=\"x()\">Zoë & 'co'</b>")
        .with("region", "</title><script>alert(3)</script>");
    let filters = FilterSet::from_filters([Filter::new("City", ["<Zürich>"])]);
    let page = render(&report, &table, &filters, &placeholders);
    let html = Html::parse_document(&page);

    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"));
    assert!(!page.contains("<b "));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&quot;quoted&quot; &amp; &#39;single&#39;"));
    assert!(select(&html, "script, img, b").is_empty());
    assert_eq!(
        texts(&html, "title"),
        ["Report for <b onmouseover=\"x()\">Zoë & 'co'</b>"]
    );
    assert_eq!(texts(&html, "h1"), texts(&html, "title"));
    assert_eq!(
        texts(&html, "p.subtitle"),
        ["Region </title><script>alert(3)</script>"]
    );
    assert_eq!(texts(&html, "p.filters"), ["Filters: City = <Zürich>"]);
    let names: Vec<String> = texts(&html, "tbody tr td:first-child");
    let expected: Vec<&str> = hostile.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected);
    assert_eq!(
        texts(&html, "tbody tr td:nth-child(2)"),
        ["Zürich", "Łódź", "Ελλάδα"]
    );
}

#[test]
fn the_page_is_self_contained_utf8_with_inline_styles() {
    let table = text_table(&[("a", "b")]);
    let page = render(
        &ReportDef::new("x", "T"),
        &table,
        &FilterSet::all(),
        &Placeholders::new(),
    );
    let html = Html::parse_document(&page);

    let meta = select(&html, "meta[charset]");
    assert_eq!(meta[0].value().attr("charset"), Some("utf-8"));
    assert_eq!(select(&html, "head style").len(), 1);
    let inline = |css: &str| {
        select(&html, css)[0]
            .value()
            .attr("style")
            .unwrap()
            .to_string()
    };
    assert!(inline("table").contains("border-collapse:collapse"));
    assert!(inline("th").contains("padding"));
    assert!(inline("td.num").contains("text-align:right"));
    assert!(select(&html, "link, script, [src]").is_empty());
    assert!(
        select(&html, "p.filters").is_empty(),
        "no filters line without filters"
    );
}

fn superstore_rows(region: &str) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(SUPERSTORE).unwrap();
    reader
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[12] == region)
        .collect()
}

fn amount(text: &str) -> f64 {
    text.replace(',', "").parse().unwrap()
}

#[test]
fn superstore_groups_subtotals_and_total_match_the_source() {
    let filters = FilterSet::from_filters([Filter::new("Region", ["Central"])]);
    let table = filters
        .apply(&read_csv(&CsvOptions::new(SUPERSTORE)).unwrap())
        .unwrap();
    let mut report = ReportDef::new("s", "Central orders");
    report.columns = vec![
        ColumnDef::new("Order ID"),
        ColumnDef::new("Order Date"),
        ColumnDef::new("City"),
        ColumnDef::new("Sales")
            .format("#,##0.00")
            .total(Aggregate::Sum),
        ColumnDef::new("Quantity").total(Aggregate::Sum),
    ];
    report.group_by = vec!["Segment".into()];
    report.sort = vec![SortKey::asc("Row ID")];
    let page = render(&report, &table, &filters, &Placeholders::new());
    let html = Html::parse_document(&page);
    let source = superstore_rows("Central");

    let groups = texts(&html, "tbody tr.group");
    assert_eq!(
        groups,
        [
            "Segment: Consumer",
            "Segment: Corporate",
            "Segment: Home Office"
        ]
    );
    let data_rows = select(&html, "tbody tr:not([class])");
    assert_eq!(data_rows.len(), source.len());
    let first_cells: Vec<String> = select(&html, "tbody tr:not([class]) td")
        .iter()
        .take(5)
        .map(text)
        .collect();
    let first = source.iter().find(|r| &r[7] == "Consumer").unwrap();
    let sales: f64 = first[17].parse().unwrap();
    assert_eq!(first_cells[..3], [&first[1], &first[2], &first[9]]);
    assert!(
        (amount(&first_cells[3]) - sales).abs() < 0.006,
        "{first_cells:?}"
    );
    assert_eq!(first_cells[4], first[18]);

    let subtotals = select(&html, "tbody tr.subtotal");
    assert_eq!(subtotals.len(), 3);
    for (row, segment) in subtotals
        .iter()
        .zip(["Consumer", "Corporate", "Home Office"])
    {
        let cells: Vec<String> = row
            .select(&Selector::parse("td").unwrap())
            .map(|c| text(&c))
            .collect();
        let expected: f64 = source
            .iter()
            .filter(|r| &r[7] == segment)
            .map(|r| r[17].parse::<f64>().unwrap())
            .sum();
        assert_eq!(cells[0], format!("Total {segment}"));
        assert!(
            (amount(&cells[3]) - expected).abs() < 0.006,
            "{segment}: {cells:?}"
        );
    }

    let total: Vec<String> = texts(&html, "tfoot tr.total td");
    let sales: f64 = source.iter().map(|r| r[17].parse::<f64>().unwrap()).sum();
    let quantity: u64 = source.iter().map(|r| r[18].parse::<u64>().unwrap()).sum();
    assert_eq!(total[0], "Grand total");
    assert!((amount(&total[3]) - sales).abs() < 0.006, "{total:?}");
    assert_eq!(total[4], quantity.to_string());
    let sales_cell = select(&html, "tfoot td")[3];
    assert_eq!(sales_cell.value().attr("class"), Some("num"));
}

#[test]
fn an_empty_table_says_so() {
    let table = text_table(&[]);
    let page = render(
        &ReportDef::new("x", "T"),
        &table,
        &FilterSet::all(),
        &Placeholders::new(),
    );
    let html = Html::parse_document(&page);

    assert_eq!(texts(&html, "p.empty"), ["No data for these filters."]);
    assert!(select(&html, "table").is_empty());
}
