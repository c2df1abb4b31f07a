//! HTML templates rendered by the HTML renderer and parsed back with an HTML5 parser
//! (scraper): hostile values stay text, the variables hold what the report shows, and template
//! mistakes are clear errors.

use std::path::{Path, PathBuf};

use mad_core::{
    Aggregate, ColumnBuilder, ColumnDef, ErrorKind, Field, FieldKind, Filter, FilterSet, Locale,
    OutputFormat, Placeholders, RenderJob, Renderer, ReportDef, Schema, Table, Value,
};
use mad_render::HtmlRenderer;
use scraper::{Html, Selector};

const HOSTILE: &str = "<script>alert(1)</script>";

fn table() -> Table {
    let schema = Schema::new(vec![
        Field::new("Region", FieldKind::Text),
        Field::new("Name", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
    ]);
    let mut columns: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
    for (region, name, amount) in [
        ("East", HOSTILE, 1000.5),
        ("West", "\"quoted\" & 'single'", 2.0),
        ("East", "Zoë", 3.0),
    ] {
        columns[0].push(Value::text(region));
        columns[1].push(Value::text(name));
        columns[2].push(Value::Number(amount));
    }
    Table::new(
        schema,
        columns.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap()
}

fn write(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

fn report(template: &Path) -> ReportDef {
    let mut report = ReportDef::new("mail", "Sales for {recipient.name}");
    report.formats = vec![OutputFormat::Html];
    report.columns = vec![
        ColumnDef::new("Name"),
        ColumnDef::new("Amount")
            .format("#,##0.00")
            .total(Aggregate::Sum),
    ];
    report.group_by = vec!["Region".into()];
    report.template = Some(template.to_path_buf());
    report
}

fn render(report: &ReportDef) -> mad_core::Result<String> {
    let placeholders = Placeholders::new()
        .with("recipient.name", format!("Ann {HOSTILE}"))
        .with("run.date", "2026-12-04")
        .with("Region", "<b>East</b>");
    let filters = FilterSet::from_filters([Filter::new("Region", ["East", "West"])]);
    let bytes = HtmlRenderer::new().render(&RenderJob {
        report,
        table: &table(),
        placeholders: &placeholders,
        locale: &Locale::new("de-DE"),
        filters: &filters,
        deterministic: true,
        created_at: 0,
    })?;
    Ok(String::from_utf8(bytes).unwrap())
}

fn texts(html: &Html, css: &str) -> Vec<String> {
    html.select(&Selector::parse(css).unwrap())
        .map(|e| e.text().collect())
        .collect()
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="{{ locale }}"><head><title>{{ title }}</title></head>
<body>
<h1 data-x="{{ recipient.name }}">{{ title }}</h1>
<p class="meta">{{ run.date }} / {{ placeholders.Region }} / {{ filters_text }}</p>
<ul class="filters">{% for f in filters %}<li>{{ f.field }}: {{ f.values|join(", ") }}</li>{% endfor %}</ul>
<table class="mine">
<tr>{% for c in columns %}<th>{{ c.header }}</th>{% endfor %}</tr>
{% for group in groups %}<tr class="group"><td>{{ group.field }} {{ group.value }} ({{ group.rows|length }})</td><td class="sub">{{ group.totals[1] }}</td></tr>
{% for row in group.rows %}<tr class="row">{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}{% endfor %}
<tr class="total"><td>{{ totals[1] }}</td></tr>
</table>
<div class="default">{{ table }}</div>
</body></html>
"#;

#[test]
fn a_template_sees_the_report_and_escapes_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let page = render(&report(&write(dir.path(), "mail.html", PAGE))).unwrap();
    let html = Html::parse_document(&page);

    assert!(texts(&html, "script").is_empty(), "{page}");
    assert!(texts(&html, "b").is_empty(), "{page}");
    assert_eq!(texts(&html, "h1"), [format!("Sales for Ann {HOSTILE}")]);
    let h1 = html.select(&Selector::parse("h1").unwrap()).next().unwrap();
    assert_eq!(h1.value().attr("data-x"), Some(&*format!("Ann {HOSTILE}")));
    assert_eq!(
        texts(&html, "p.meta"),
        ["2026-12-04 / <b>East</b> / Region = East, West"]
    );
    assert_eq!(texts(&html, "ul.filters li"), ["Region: East, West"]);
    assert_eq!(texts(&html, "table.mine th"), ["Name", "Amount"]);
    assert_eq!(
        texts(&html, "table.mine tr.group td"),
        ["Region East (2)", "1.003,50", "Region West (1)", "2,00"]
    );
    assert_eq!(
        texts(&html, "table.mine tr.row td"),
        [
            HOSTILE,
            "1.000,50",
            "Zoë",
            "3,00",
            "\"quoted\" & 'single'",
            "2,00"
        ]
    );
    assert_eq!(texts(&html, "table.mine tr.total td"), ["1.005,50"]);
    let default_rows = texts(&html, "div.default table.report tbody tr td");
    assert!(
        default_rows.contains(&HOSTILE.to_string()),
        "{default_rows:?}"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn template_mistakes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(dir.path(), "typo.jinja", "<p>{{ recipent.name }}</p>");
    let err = render(&report(&typo)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.backend(), Some("html"));
    assert!(err.to_string().contains("typo.jinja"), "{err}");
    assert!(err.to_string().contains("undefined"), "{err}");

    let attribute = write(dir.path(), "attr.html", "<p>{{ recipient.nmae }}</p>");
    let err = render(&report(&attribute)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);

    let syntax = write(dir.path(), "syntax.html", "<p>{% for x in rows %}</p>");
    let err = render(&report(&syntax)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("syntax.html"), "{err}");

    let missing = dir.path().join("missing.html");
    let err = render(&report(&missing)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let latin1 = dir.path().join("latin1.html");
    std::fs::write(&latin1, b"<p>Z\xfcrich</p>").unwrap();
    let err = render(&report(&latin1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_changed_template_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "body.html", "<p>first</p>");
    let renderer = HtmlRenderer::new();
    let report = report(&path);
    let placeholders = Placeholders::new().with("recipient.name", "Ann");
    let job = RenderJob {
        report: &report,
        table: &table(),
        placeholders: &placeholders,
        locale: &Locale::default(),
        filters: &FilterSet::all(),
        deterministic: true,
        created_at: 0,
    };
    assert_eq!(renderer.render(&job).unwrap(), b"<p>first</p>");
    std::fs::write(&path, "<p>second, longer</p>").unwrap();
    assert_eq!(renderer.render(&job).unwrap(), b"<p>second, longer</p>");
}

#[test]
fn a_template_shows_the_charts_as_images_with_their_parts() {
    let dir = tempfile::tempdir().unwrap();
    let source = "<h1>{{ title }}</h1>{% for c in charts %}\
                  <img src=\"{{ c.src }}\" alt=\"{{ c.alt }}\" width=\"{{ c.width }}\">\
                  {% endfor %}{{ table }}";
    let mut report = report(&write(dir.path(), "charts.html", source));
    report.charts = vec![
        mad_core::ChartDef::new(mad_core::ChartKind::Bar, "Region", "Amount")
            .with_title("Amount by region"),
    ];

    let page = Html::parse_document(&render(&report).unwrap());
    let images: Vec<_> = page.select(&Selector::parse("img").unwrap()).collect();
    assert_eq!(images.len(), 1);
    let image = images[0].value();
    assert!(
        image
            .attr("src")
            .unwrap()
            .starts_with("data:image/png;base64,"),
        "render embeds the image"
    );
    assert_eq!(image.attr("alt"), Some("Amount by region"));

    let placeholders = Placeholders::new()
        .with("recipient.name", "Ann")
        .with("run.date", "2026-12-04")
        .with("Region", "East");
    let rendered = HtmlRenderer::new()
        .render_document(&RenderJob {
            report: &report,
            table: &table(),
            placeholders: &placeholders,
            locale: &Locale::new("de-DE"),
            filters: &FilterSet::all(),
            deterministic: true,
            created_at: 0,
        })
        .unwrap();
    assert_eq!(rendered.inline.len(), 1);
    assert!(rendered.inline[0].bytes.starts_with(b"\x89PNG"));
    let html = String::from_utf8(rendered.bytes.to_vec()).unwrap();
    assert!(
        html.contains(&format!("src=\"cid:{}\"", rendered.inline[0].content_id)),
        "{html}"
    );
}

#[test]
fn a_template_that_never_shows_the_reports_charts_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = report(&write(
        dir.path(),
        "plain.html",
        "<h1>{{ title }}</h1>{{ table }}",
    ));
    report.charts = vec![mad_core::ChartDef::new(
        mad_core::ChartKind::Pie,
        "Region",
        "Amount",
    )];

    let err = render(&report).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let message = err.to_string();
    assert!(message.contains("plain.html"), "{message}");
    assert!(message.contains("`charts`"), "{message}");
    assert!(message.contains("{% for c in charts %}"), "{message}");

    report.charts.clear();
    render(&report).unwrap();
}
