//! Definitions round-trip through TOML and JSON, and a definitions file drives a whole run.

use std::path::Path;

use mad_core::{ErrorKind, OutputFormat, Registry, Workspace};

fn example() -> Workspace {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/regional_sales/workspace.toml");
    Workspace::load(&path).unwrap()
}

#[test]
fn the_example_definitions_parse() {
    let ws = example();
    assert_eq!(ws.tasks.len(), 2);
    let regional = &ws.reports["regional"];
    assert_eq!(regional.name, "regional");
    assert_eq!(regional.group_by, vec!["State".to_string()]);
    assert!(regional.formats.contains(&OutputFormat::Xlsx));
    assert_eq!(ws.tasks[1].burst.as_deref(), Some("State"));
    assert_eq!(ws.channels["managers"].kind, "email");
}

#[test]
fn definitions_round_trip_through_toml_and_json() {
    let ws = example();
    let toml = ws.to_toml().unwrap();
    let back = Workspace::from_toml(&toml, ws.base_dir.clone()).unwrap();
    assert_eq!(ws, back);
    let json = serde_json::to_string(&ws).unwrap();
    let back = Workspace::from_json(&json, ws.base_dir.clone()).unwrap();
    assert_eq!(ws, back);
}

#[test]
fn typos_and_literal_secrets_are_refused() {
    let err = Workspace::from_toml("[[tasks]]\nname = \"t\"\nsorce = \"x\"\n", ".").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("sorce"), "{err}");

    let err = Workspace::from_toml(
        "[reports.r]\ntitle = \"{oops\"\nformats = [\"pdf\"]\nfile_name = \"r\"\n",
        ".",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unclosed"), "{err}");
}

#[test]
fn unknown_component_kinds_name_the_known_ones() {
    let ws = Workspace::from_toml("[sources.s]\nkind = \"parquet\"\npath = \"x\"\n", ".").unwrap();
    let err = ws.instantiate(&Registry::new()).unwrap_err();
    assert!(err.to_string().contains("csv"), "{err}");
    assert!(err.to_string().contains("source 's'"), "{err}");
}

#[tokio::test]
async fn missing_source_file_is_not_found_and_names_the_file() {
    let ws = Workspace::from_toml(
        "[sources.s]\nkind = \"csv\"\npath = \"no-such-file.csv\"\n",
        std::env::temp_dir(),
    )
    .unwrap();
    let runtime = ws.instantiate(&Registry::new()).unwrap();
    let err = runtime.source("s").unwrap().fields().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("no-such-file.csv"), "{err}");
}

#[tokio::test]
async fn gzipped_csv_with_na_nulls_reads_the_flights_table() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/flights/flights.csv.gz");
    let options = mad_core::source::CsvOptions {
        path,
        null_values: vec!["NA".into()],
        ..Default::default()
    };
    let table = tokio::task::spawn_blocking(move || mad_core::source::read_csv(&options))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(table.len(), 336_776);
    let delay = table.column_index("dep_delay").unwrap();
    assert_eq!(table.fields()[delay].kind, mad_core::FieldKind::Integer);
    assert!(table.column_values(delay).any(mad_core::Value::is_null));
}

#[test]
fn charts_styles_and_templates_read_from_definitions() {
    let ws = Workspace::from_toml(
        r##"
        [reports.sales]
        title = "Sales"
        formats = ["xlsx", "html"]
        file_name = "sales"
        template = "templates/mail.jinja"
        charts = [{ kind = "bar", dimension = "Region", measure = "Sales", title = "By {Region}" }]

        [[reports.sales.columns]]
        field = "Profit"
        style = [{ when = "< 0", color = "#C00000" }]
        "##,
        "/defs",
    )
    .unwrap();
    let report = &ws.reports["sales"];
    assert_eq!(
        report.template.as_deref(),
        Some(Path::new("/defs/templates/mail.jinja"))
    );
    assert_eq!(report.template_format().unwrap(), Some(OutputFormat::Html));
    assert!(report.template_for(OutputFormat::Xlsx).is_none());
    assert_eq!(report.charts[0].aggregate, mad_core::Aggregate::Sum);
    assert_eq!(
        report.content_placeholders().unwrap(),
        ["Region"],
        "chart titles decide content"
    );
    let fields: Vec<_> = report.query().columns.into_iter().map(|c| c.name).collect();
    assert_eq!(fields, ["Profit", "Region", "Sales"]);
    let rule = report.columns[0].style[0].resolve().unwrap();
    assert!(rule.condition.matches(&mad_core::Value::Number(-1.0)));

    let err = Workspace::from_toml(
        "[reports.r]\ntitle = \"r\"\nformats = [\"pdf\"]\nfile_name = \"r\"\ntemplate = \"r.docx\"\n",
        ".",
    )
    .unwrap_err();
    assert!(err.to_string().contains("r.docx"), "{err}");
    let err = Workspace::from_toml(
        "[reports.r]\ntitle = \"r\"\nformats = [\"pdf\"]\nfile_name = \"r\"\n\
         charts = [{ kind = \"donut\", dimension = \"a\", measure = \"b\" }]\n",
        ".",
    )
    .unwrap_err();
    assert!(err.to_string().contains("donut"), "{err}");
}

#[test]
fn check_finds_wrong_names_and_recipient_settings_without_running() {
    let defs = |task: &str| {
        let text = format!(
            "[sources.orders]\nkind = \"csv\"\npath = \"orders.csv\"\n\n\
             [reports.r]\ntitle = \"r\"\nformats = [\"csv\"]\nfile_name = \"r\"\n\
             columns = [{{ field = \"Sales\" }}]\n\n\
             [[tasks]]\nname = \"t\"\n{task}\n"
        );
        let ws = Workspace::from_toml(&text, std::env::temp_dir()).unwrap();
        ws.instantiate(&Registry::new()).unwrap().check()
    };
    let good = "source = \"orders\"\nreports = [\"r\"]\nchannels = []\n\
                recipients = [{ id = \"ann\", locale = \"de-CH\", time_zone = \"Europe/Zurich\" }]";
    defs(good).unwrap();

    for (task, expected) in [
        (
            "source = \"ordrs\"\nreports = [\"r\"]\nchannels = []",
            "no source named 'ordrs' (defined: orders)",
        ),
        (
            "source = \"orders\"\nreports = [\"rr\"]\nchannels = []",
            "no report named 'rr' (defined: r)",
        ),
        (
            "source = \"orders\"\nreports = [\"r\"]\nchannels = [\"mail\"]",
            "no channel named 'mail' (defined: none)",
        ),
        (
            "source = \"orders\"\nreports = [\"r\"]\nchannels = []\nrecipients = [{ id = \"bo\", time_zone = \"Europe/Zurch\" }]",
            "recipient 'bo': 'Europe/Zurch' is not a known time zone",
        ),
        (
            "source = \"orders\"\nreports = [\"r\"]\nchannels = []\nrecipients = [{ id = \"cy\", locale = \"Swiss\" }]",
            "'Swiss' is not a locale",
        ),
    ] {
        let err = defs(task).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let message = err.to_string();
        assert!(message.contains("task 't'"), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[tokio::test]
async fn a_task_name_used_twice_is_refused_rather_than_guessed() {
    let task = "[[tasks]]\nname = \"t\"\nsource = \"s\"\nreports = []\nchannels = []\n";
    let ws = Workspace::from_toml(&format!("{task}{task}"), std::env::temp_dir()).unwrap();
    let runtime = ws.instantiate(&Registry::new()).unwrap();
    let err = runtime.task("t").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("two tasks are named 't'"), "{err}");
}

/// A workspace whose task reads its recipients from `recipients.csv` (written into `dir`)
/// with `pin` as a secret column; `extra` is added to the value table, `fields` to its source.
fn secret_pins(dir: &Path, csv: &str, extra: &str, fields: &str) -> Workspace {
    std::fs::write(dir.join("recipients.csv"), csv).unwrap();
    let text = format!(
        "[sources.people]\nkind = \"csv\"\npath = \"recipients.csv\"\n{fields}\n\n\
         [reports.r]\ntitle = \"r\"\nformats = [\"csv\"]\nfile_name = \"r\"\n\
         columns = [{{ field = \"Sales\" }}]\n\n\
         [[tasks]]\nname = \"t\"\nsource = \"people\"\nreports = [\"r\"]\nchannels = []\n\
         value_tables = [{{ source = \"people\", filter_columns = [\"Region\"], \
         secret_columns = [\"pin\"]{extra} }}]\n"
    );
    Workspace::from_toml(&text, dir).unwrap()
}

#[tokio::test]
async fn secrets_of_digits_from_a_csv_value_table_keep_every_character() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,Region,pin\nann,East,12345678901234567890\nbob,West,1.50\ncy,South,0042\n";
    let ws = secret_pins(dir.path(), csv, "", "");
    let task = ws
        .instantiate(&Registry::new())
        .unwrap()
        .task("t")
        .await
        .unwrap();

    let pins: Vec<&str> = task
        .recipients
        .iter()
        .map(|r| r.secrets["pin"].expose())
        .collect();
    assert_eq!(pins, ["12345678901234567890", "1.50", "0042"]);
}

#[tokio::test]
async fn a_secret_column_read_as_numbers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,Region,pin\nann,East,12345678901234567890\n";
    let ws = secret_pins(dir.path(), csv, "", "fields = { pin = \"number\" }");
    let err = ws
        .instantiate(&Registry::new())
        .unwrap()
        .task("t")
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(message.contains("secret column 'pin'"), "{message}");
    assert!(message.contains("as text"), "{message}");
    assert!(!message.contains("1234567890"), "{message}");
}

#[tokio::test]
async fn a_secret_column_that_is_also_printed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,Region,pin\nann,East,s3cret-pin\n";
    for (extra, role) in [
        (", attribute_columns = [\"pin\"]", "attribute"),
        (", name_column = \"pin\"", "name"),
    ] {
        let ws = secret_pins(dir.path(), csv, extra, "");
        let err = ws
            .instantiate(&Registry::new())
            .unwrap()
            .task("t")
            .await
            .unwrap_err();

        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("as a {role} column")),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}
