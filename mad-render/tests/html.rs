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
            created_at: 0,
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

fn job_render(
    renderer: &HtmlRenderer,
    report: &ReportDef,
    table: &Table,
    locale: &str,
) -> mad_core::Rendered {
    let placeholders = Placeholders::new().with("recipient.name", "Zoë");
    let locale = Locale::new(locale);
    let filters = FilterSet::all();
    renderer
        .render_document(&RenderJob {
            report,
            table,
            placeholders: &placeholders,
            locale: &locale,
            filters: &filters,
            deterministic: true,
            created_at: 0,
        })
        .expect("the page renders")
}

/// Decodes a PNG and returns its width and height.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let frame = reader.next_frame(&mut pixels).expect("a frame");
    let coloured = pixels[..frame.buffer_size()]
        .chunks(frame.color_type.samples())
        .filter(|p| p[0] < 110 && p[1] > 100 && p[1] < 140 && p[2] > 150)
        .count();
    assert!(
        coloured > 1000,
        "the chart is drawn: {coloured} blue pixels"
    );
    (frame.width, frame.height)
}

fn chart_report() -> ReportDef {
    let mut report = ReportDef::new("charts", "Charts for {recipient.name}");
    report.columns = vec![
        ColumnDef::new("Name"),
        ColumnDef::new("City"),
        ColumnDef::new("Amount").format("#,##0.00"),
    ];
    report.charts = vec![
        mad_core::ChartDef::new(mad_core::ChartKind::Bar, "City", "Amount")
            .with_title("Amount by city"),
        mad_core::ChartDef::new(mad_core::ChartKind::Pie, "City", "Amount")
            .with_placement(mad_core::ChartPlacement::After),
    ];
    report
}

#[test]
fn charts_are_inline_png_parts_referred_to_by_content_id() {
    let table = text_table(&[
        ("a", "Zürich"),
        ("b", "東京"),
        ("c", "Zürich"),
        ("d", "Łódź"),
    ]);
    let rendered = job_render(&HtmlRenderer::new(), &chart_report(), &table, "en-US");
    let page = String::from_utf8(rendered.bytes).unwrap();
    let html = Html::parse_document(&page);

    let images = select(&html, "div.chart img");
    assert_eq!(images.len(), 2);
    assert_eq!(rendered.inline.len(), 2);
    for (img, part) in images.iter().zip(&rendered.inline) {
        let src = img.value().attr("src").unwrap();
        assert_eq!(src, format!("cid:{}", part.content_id));
        assert_eq!(part.media_type, "image/png");
        let (w, h) = png_size(&part.bytes);
        let width: u32 = img.value().attr("width").unwrap().parse().unwrap();
        let height: u32 = img.value().attr("height").unwrap().parse().unwrap();
        assert_eq!(
            (w, h),
            (width * 2, height * 2),
            "twice the CSS size for sharp screens"
        );
        assert_eq!(width, 640);
    }
    assert_eq!(images[0].value().attr("alt"), Some("Amount by city"));
    assert_eq!(images[1].value().attr("alt"), Some("Sum of Amount by City"));
    let table_at = page.find("<table class=\"report\"").unwrap();
    assert!(page.find(&*rendered.inline[0].content_id).unwrap() < table_at);
    assert!(page.find(&*rendered.inline[1].content_id).unwrap() > table_at);
    assert_ne!(rendered.inline[0].content_id, rendered.inline[1].content_id);
}

#[test]
fn a_page_on_its_own_carries_its_charts_as_data_urls() {
    use base64::Engine as _;
    let table = text_table(&[("a", "Zürich"), ("b", "Łódź")]);
    let report = chart_report();
    let data_mode = HtmlRenderer::new().with_chart_images(mad_render::html::ChartImages::DataUri);
    let from_document = job_render(&data_mode, &report, &table, "en-US");
    assert!(from_document.inline.is_empty());
    let alone = render(
        &report,
        &table,
        &FilterSet::all(),
        &Placeholders::new().with("recipient.name", "Zoë"),
    );
    assert_eq!(
        alone.as_bytes(),
        from_document.bytes,
        "render() embeds the images too"
    );

    let html = Html::parse_document(&alone);
    for img in select(&html, "img") {
        let src = img.value().attr("src").unwrap();
        let data = src
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URL");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        let width: u32 = img.value().attr("width").unwrap().parse().unwrap();
        assert_eq!(png_size(&bytes).0, width * 2);
    }
}

#[test]
fn conditional_styles_locale_bands_and_page_breaks() {
    let schema = Schema::new(vec![
        Field::new("Region", FieldKind::Text),
        Field::new("Item", FieldKind::Text),
        Field::new("Profit", FieldKind::Number),
    ]);
    let mut columns: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
    for (region, item, profit) in [
        ("East", "Alpha", 1234.5),
        ("East", "Beta", -20.0),
        ("West", "Gamma", -3000.0),
    ] {
        columns[0].push(Value::text(region));
        columns[1].push(Value::text(item));
        columns[2].push(Value::Number(profit));
    }
    let table = Table::new(
        schema,
        columns.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap();
    let mut report = ReportDef::new("p", "Profit for {recipient.name}");
    report.columns = vec![
        ColumnDef::new("Item"),
        ColumnDef::new("Profit")
            .format("#,##0.00")
            .total(Aggregate::Sum)
            .style(
                mad_core::ConditionalStyle::new("< 0")
                    .with_color("#c00000")
                    .with_bold(),
            ),
    ];
    report.groups = vec![mad_core::GroupDef::new("Region").with_page_break()];
    report.header = Some(mad_core::PageBand::left("{title}").with_right("Page {page} of {pages}"));
    report.footer = Some(mad_core::PageBand::left(
        "Confidential for {recipient.name}",
    ));
    let rendered = job_render(&HtmlRenderer::new(), &report, &table, "de-DE");
    let page = String::from_utf8(rendered.bytes).unwrap();
    let html = Html::parse_document(&page);

    assert_eq!(select(&html, "html")[0].value().attr("lang"), Some("de-DE"));
    let profits: Vec<ElementRef<'_>> =
        select(&html, "table.report tbody tr:not([class]) td:nth-child(2)");
    let shown: Vec<String> = profits.iter().map(text).collect();
    assert_eq!(shown, ["1.234,50", "-20,00", "-3.000,00"]);
    let red = |cell: &ElementRef<'_>| {
        let style = cell.value().attr("style").unwrap();
        style.contains("color:#c00000") && style.contains("font-weight:bold")
    };
    assert_eq!(
        profits.iter().map(red).collect::<Vec<_>>(),
        [false, true, true]
    );
    let total = select(&html, "table.report tfoot td");
    assert_eq!(text(&total[1]), "-1.785,50");
    assert!(red(&total[1]), "a negative total is styled too");

    let groups = select(&html, "tr.group");
    assert_eq!(groups.len(), 2);
    assert!(
        groups[0].value().attr("style").is_none(),
        "the first section needs no break"
    );
    assert!(
        groups[1]
            .value()
            .attr("style")
            .unwrap()
            .contains("break-before:page")
    );

    assert_eq!(
        texts(&html, "table.page-header td"),
        ["Profit for Zoë", "", "Page 1 of 1"]
    );
    assert_eq!(
        texts(&html, "table.page-footer td")[0],
        "Confidential for Zoë"
    );
}

#[test]
fn columns_are_sized_from_their_content() {
    let long = "A rather long product name that should get most of the width";
    let table = text_table(&[("x", long), ("y", "Oslo")]);
    let page = render(
        &ReportDef::new("w", "Widths"),
        &table,
        &FilterSet::all(),
        &Placeholders::new(),
    );
    let html = Html::parse_document(&page);
    let widths: Vec<f32> = select(&html, "colgroup col")
        .iter()
        .map(|c| {
            let style = c.value().attr("style").unwrap();
            style
                .trim_start_matches("width:")
                .trim_end_matches('%')
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(widths.len(), 3);
    assert!(
        (widths.iter().sum::<f32>() - 100.0).abs() < 0.5,
        "{widths:?}"
    );
    assert!(
        widths[1] > widths[0] * 4.0 && widths[1] > widths[2],
        "{widths:?}"
    );
    let cell = select(&html, "tbody td")[1];
    assert!(
        cell.value()
            .attr("style")
            .unwrap()
            .contains("overflow-wrap:anywhere")
    );
}

#[test]
fn deterministic_renders_are_byte_identical() {
    let table = text_table(&[("Zoë", "Zürich"), ("Ana", "Łódź"), ("Eli", "Zürich")]);
    let report = chart_report();
    let renderer = HtmlRenderer::new();
    let first = job_render(&renderer, &report, &table, "de-DE");
    let second = job_render(&renderer, &report, &table, "de-DE");
    assert!(first.bytes == second.bytes, "two pages differ");
    assert_eq!(first.inline.len(), 2, "two chart images");
    assert_eq!(first.inline, second.inline, "the chart images differ");

    let alone = || {
        renderer
            .render(&RenderJob {
                report: &report,
                table: &table,
                placeholders: &Placeholders::new().with("recipient.name", "Zoë"),
                locale: &Locale::new("de-DE"),
                filters: &FilterSet::all(),
                deterministic: true,
                created_at: 0,
            })
            .unwrap()
    };
    assert!(alone() == alone(), "pages with data: URLs differ");
}
