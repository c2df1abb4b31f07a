//! The `qlik` source against the engine double over TLS: data equal to the file path,
//! paging, existing objects, QVD apps, selections, expressions and sessions.

mod common;

use std::collections::BTreeMap;

use common::*;
use mad_core::{
    ColumnBuilder, ErrorKind, Field, FieldKind, Filter, FilterSet, Query, QueryColumn, Schema,
    Table, Value,
};
use mad_qlik::engine::QlikAuth;
use mad_qlik_double::{App, QlikDouble};
use serde_json::json;

async fn superstore() -> Engine {
    Engine::start(QlikDouble::builder().app(superstore_app())).await
}

#[tokio::test]
async fn regional_sales_equal_the_csv_path() {
    let engine = superstore().await;
    let reference = superstore_table();
    let mut options = serde_json::to_value(engine.options("superstore", QlikAuth::None)).unwrap();
    options["row_key"] = json!("Row ID");
    let source = registry_source(options, engine.dir.path());
    let detail = Query::fields(["Order ID", "Region", "State", "Sales"]);
    let totals = Query {
        columns: vec![
            QueryColumn::field("Region"),
            measure("Sales", "Sum([Sales])"),
        ],
    };

    for region in distinct_texts(&reference, "Region") {
        let filters = FilterSet::from_filters([Filter::new("Region", [region.clone()])]);
        let expected = filters.apply(&reference).unwrap();
        let sales = expected.require_column("Sales").unwrap();

        let rows = fetch(&*source, &detail, &filters).await.unwrap();
        assert_eq!(rows.len(), expected.len(), "{region}: rows");
        let got_sales = rows.require_column("Sales").unwrap();
        assert!(
            close_enough(rows.sum(got_sales), expected.sum(sales)),
            "{region}: detail sum"
        );
        let mut got_orders = texts(&rows, 0);
        let mut want_orders = texts(&expected, expected.require_column("Order ID").unwrap());
        got_orders.sort();
        want_orders.sort();
        assert_eq!(got_orders, want_orders, "{region}: order ids");
        assert!(
            texts(&rows, 1).iter().all(|r| *r == region),
            "{region}: only its rows"
        );

        let total = fetch(&*source, &totals, &filters).await.unwrap();
        assert_eq!(total.len(), 1, "{region}: one total row");
        let sum = total.value(0, 1).as_number().unwrap();
        assert!(close_enough(sum, expected.sum(sales)), "{region}: {sum}");
        assert_eq!(total.fields()[1].kind, FieldKind::Number);
    }
    engine.assert_no_violations();
}

#[tokio::test]
async fn plain_fields_are_distinct_combinations_unless_a_row_key_is_set() {
    let engine = superstore().await;
    let query = Query::fields(["Region"]);
    let all = FilterSet::all();

    let distinct = engine.source(engine.options("superstore", QlikAuth::None));
    let regions = fetch(&distinct, &query, &all).await.unwrap();
    assert_eq!(regions.len(), 4);

    let mut options = engine.options("superstore", QlikAuth::None);
    options.row_key = Some("Row ID".into());
    let detail = engine.source(options);
    let rows = fetch(&detail, &query, &all).await.unwrap();
    assert_eq!(rows.len(), superstore_table().len());
    assert_eq!(rows.fields().len(), 1, "the row key stays hidden");
    engine.assert_no_violations();
}

/// 30 integer columns × 20,000 rows; column `c0` is unique per row.
fn wide_table() -> Table {
    let (width, height) = (30, 20_000);
    let fields = (0..width)
        .map(|c| Field::new(format!("c{c}"), FieldKind::Integer))
        .collect();
    let columns = (0..width)
        .map(|c| {
            let mut column = ColumnBuilder::with_capacity(height);
            for r in 0..height {
                column.push(Value::Number(((r * (c + 1)) % (1000 + c)) as f64));
            }
            if c == 0 {
                let mut unique = ColumnBuilder::with_capacity(height);
                (0..height).for_each(|r| unique.push(Value::Number(r as f64)));
                return unique.finish();
            }
            column.finish()
        })
        .collect();
    Table::new(Schema::new(fields), columns).unwrap()
}

#[tokio::test]
async fn a_wide_table_is_fetched_completely_across_pages() {
    let table = wide_table();
    let engine = Engine::start(QlikDouble::builder().app(App::new("wide", table.clone()))).await;
    let source = engine.source(engine.options("wide", QlikAuth::None));

    let fetched = fetch(&source, &Query::default(), &FilterSet::all())
        .await
        .unwrap();
    assert_eq!(fetched.len(), 20_000);
    assert_eq!(fetched.fields().len(), 30);
    let pages = engine.double.request_count("GetHyperCubeData");
    assert!(pages > 1, "{pages} data requests");
    // floor(10000 / 30) = 333 rows per page: the first from the layout, the rest paged.
    assert_eq!(pages, 20_000usize.div_ceil(333) - 1);
    for row in [0, 1, 332, 333, 9_999, 19_999] {
        for col in [0, 1, 17, 29] {
            assert_eq!(
                fetched.value(row, col).as_number(),
                table.value(row, col).as_number(),
                "row {row} col {col}"
            );
        }
    }
    assert_eq!(fetched.fields()[5].kind, FieldKind::Integer);
    engine.assert_no_violations();
}

#[tokio::test]
async fn an_existing_object_with_master_items_is_read() {
    let app = superstore_app()
        .with_measure("m-sales", "Sales", "Sum([Sales])")
        .with_dimension("d-region", "Sales region", "Region")
        .with_object(
            "regional",
            json!({
                "qInfo": {"qType": "table"},
                "qHyperCubeDef": {
                    "qDimensions": [{"qLibraryId": "d-region"}, {"qDef": {"qFieldDefs": ["Segment"]}}],
                    "qMeasures": [{"qLibraryId": "m-sales"}, {"qDef": {"qDef": "Count([Order ID])", "qLabel": "Lines"}}]
                }
            }),
        );
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let mut options = engine.options("superstore", QlikAuth::None);
    options.object = Some("regional".into());
    let source = engine.source(options);

    let everything = fetch(&source, &Query::default(), &FilterSet::all())
        .await
        .unwrap();
    let names: Vec<&str> = everything
        .fields()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["Sales region", "Segment", "Sales", "Lines"]);
    assert_eq!(everything.len(), 12);

    let east = FilterSet::from_filters([Filter::new("Region", ["East"])]);
    let query = Query::fields(["Segment", "Sales"]);
    let rows = fetch(&source, &query, &east).await.unwrap();
    assert_eq!(rows.len(), 3);
    let reference = east.apply(&superstore_table()).unwrap();
    let sales = reference.require_column("Sales").unwrap();
    assert!(close_enough(rows.sum(1), reference.sum(sales)));

    let mut options = engine.options("superstore", QlikAuth::None);
    options.object = Some("no-such-object".into());
    let err = fetch(&engine.source(options), &query, &east)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("no-such-object"), "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_qvd_app_is_read_through_the_engine() {
    let app = App::from_file("lego-sets", LEGO_SETS).expect("the double loads QVD files");
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let mut options = engine.options("lego-sets", QlikAuth::None);
    options.row_key = Some("set_num".into());
    let source = engine.source(options);

    let reference = mad_qlik::qvd::read_qvd(LEGO_SETS).unwrap();
    let filters = FilterSet::from_filters([Filter::new("year", ["1970", "1971"])]);
    let expected = filters.apply(&reference).unwrap();
    let query = Query::fields(["set_num", "name", "year", "num_parts"]);
    let rows = fetch(&source, &query, &filters).await.unwrap();
    assert_eq!(rows.len(), expected.len());
    let parts = expected.require_column("num_parts").unwrap();
    assert_eq!(rows.sum(3), expected.sum(parts));
    let mut got = texts(&rows, 0);
    let mut want = texts(&expected, expected.require_column("set_num").unwrap());
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(rows.fields()[2].kind.is_numeric(), "{:?}", rows.fields()[2]);
    engine.assert_no_violations();
}

#[tokio::test]
async fn selections_follow_the_filter_set() {
    let engine = superstore().await;
    let reference = superstore_table();
    let mut options = engine.options("superstore", QlikAuth::None);
    options.row_key = Some("Row ID".into());
    let source = engine.source(options);
    let query = Query::fields(["Region", "Segment", "Sales"]);

    let except = FilterSet::from_filters([
        Filter::new("Region", ["East", "West"]).excluding(),
        Filter::new("Segment", ["Consumer"]),
    ]);
    let rows = fetch(&source, &query, &except).await.unwrap();
    assert_eq!(rows.len(), except.apply(&reference).unwrap().len());
    assert!(
        texts(&rows, 0)
            .iter()
            .all(|r| r == "Central" || r == "South")
    );

    let optional = FilterSet::from_filters([
        Filter::new("Region", ["South"]),
        Filter::new("Country Code", ["US"]).optional(),
    ]);
    let rows = fetch(&source, &query, &optional).await.unwrap();
    assert_eq!(rows.len(), optional.apply(&reference).unwrap().len());

    let required = FilterSet::from_filters([Filter::new("Country Code", ["US"])]);
    let err = fetch(&source, &query, &required).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("'Country Code'"), "{err}");

    let absent = FilterSet::from_filters([Filter::new("Region", ["West", "Atlantis"])]);
    let err = fetch(&source, &query, &absent).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptyFilter);
    assert!(err.to_string().contains("'Atlantis'"), "{err}");

    // Numbers select on their number: Postal Code 10035 is a number in the app.
    let postal = FilterSet::from_filters([Filter::new("Postal Code", ["10035"])]);
    let rows = fetch(&source, &query, &postal).await.unwrap();
    assert_eq!(rows.len(), postal.apply(&reference).unwrap().len());
    assert!(!rows.is_empty());

    // The previous filter set is cleared: no selection leaks into the next fetch.
    let all = fetch(&source, &query, &FilterSet::all()).await.unwrap();
    assert_eq!(all.len(), reference.len());
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_selection_the_engine_does_not_keep_fetches_nothing() {
    let app = superstore_app().with_locked_selection("Region", ["East"]);
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let source = engine.source(engine.options("superstore", QlikAuth::None));
    let query = Query::fields(["Region", "Sales"]);

    let west = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let err = fetch(&source, &query, &west).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataSource, "{err}");
    assert!(
        err.to_string()
            .contains("did not keep the selection on 'Region'"),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was fetched"), "{err}");
    assert_eq!(
        engine.double.request_count("GetHyperCubeData"),
        0,
        "no data page was asked for"
    );

    let east = FilterSet::from_filters([Filter::new("Region", ["East"])]);
    let rows = fetch(&source, &query, &east).await.unwrap();
    assert!(!rows.is_empty() && texts(&rows, 0).iter().all(|r| r == "East"));
    engine.assert_no_violations();
}

#[tokio::test]
async fn expressions_and_variables_evaluate_in_the_selections() {
    let app = superstore_app()
        .with_variable("vTarget", "250000")
        .with_variable("vTopRegion", "West");
    let engine = Engine::start(QlikDouble::builder().app(app)).await;
    let source = engine.source(engine.options("superstore", QlikAuth::None));
    let reference = superstore_table();
    let west = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let expected = west.apply(&reference).unwrap();

    let expressions = [
        "Sum([Sales])",
        "vTarget",
        "vTopRegion",
        "Count(DISTINCT [Order ID])",
    ]
    .map(String::from);
    let all = Query::default();
    let request = mad_core::FetchRequest::new(&all, &west);
    let values = mad_core::DataSource::evaluate(&source, request, &expressions)
        .await
        .unwrap();
    let sales = expected.require_column("Sales").unwrap();
    assert!(close_enough(
        values[0].as_number().unwrap(),
        expected.sum(sales)
    ));
    assert_eq!(values[1].as_number(), Some(250_000.0));
    assert_eq!(values[2].as_text(), Some("West"));
    let orders = expected
        .distinct(expected.require_column("Order ID").unwrap())
        .len();
    assert_eq!(values[3].as_number(), Some(orders as f64));

    let bad = [String::from("Sum([No Such Field])")];
    let err = mad_core::DataSource::evaluate(&source, request, &bad)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    engine.assert_no_violations();
}

#[tokio::test]
async fn parallel_filter_sets_have_their_own_sessions() {
    let engine = superstore().await;
    let reference = superstore_table();
    let mut options = engine.options("superstore", QlikAuth::None);
    options.max_sessions = 3;
    let source = engine.source(options);
    let query = Query {
        columns: vec![
            QueryColumn::field("State"),
            measure("Sales", "Sum([Sales])"),
        ],
    };
    let states: Vec<String> = distinct_texts(&reference, "State")
        .into_iter()
        .take(12)
        .collect();

    let fetches = states.iter().map(|state| {
        let filters = FilterSet::from_filters([Filter::new("State", [state.clone()])]);
        let source = &source;
        let query = &query;
        async move {
            let table = fetch(source, query, &filters).await.unwrap();
            (state.clone(), table)
        }
    });
    let results = futures::future::join_all(fetches).await;
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for (state, table) in results {
        assert_eq!(table.len(), 1, "{state}");
        assert_eq!(table.value(0, 0).as_text(), Some(state.as_str()));
        sums.insert(state, table.value(0, 1).as_number().unwrap());
    }
    for (state, sum) in sums {
        let filters = FilterSet::from_filters([Filter::new("State", [state.clone()])]);
        let expected = filters.apply(&reference).unwrap();
        assert!(
            close_enough(sum, expected.sum(expected.require_column("Sales").unwrap())),
            "{state}"
        );
    }
    let sessions = engine.double.sessions();
    assert!(sessions.len() <= 3, "{} sessions", sessions.len());
    let identities: std::collections::BTreeSet<_> =
        sessions.iter().map(|s| s.identity.clone()).collect();
    assert_eq!(
        identities.len(),
        sessions.len(),
        "each session has its own identity"
    );
    assert!(source.idle_sessions() <= 3);
    engine.assert_no_violations();
}

#[tokio::test]
async fn fields_and_capabilities_are_reported() {
    let engine = superstore().await;
    let source = engine.source(engine.options("superstore", QlikAuth::None));
    let fields = mad_core::DataSource::fields(&source).await.unwrap();
    let sales = fields.iter().find(|f| f.name == "Sales").unwrap();
    assert!(sales.kind.is_numeric());
    assert!(
        fields
            .iter()
            .any(|f| f.name == "Region" && f.kind == FieldKind::Text)
    );
    let caps = mad_core::DataSource::capabilities(&source);
    assert!(caps.expressions && caps.native_filters && !caps.identity);
    assert_eq!(mad_core::DataSource::name(&source), "qlik:superstore");
    engine.assert_no_violations();
}

/// Renders a report as the rows' `Region` texts and `Sales` sum, so deliveries can be read.
#[derive(Debug)]
struct SummaryRenderer;

impl mad_core::Renderer for SummaryRenderer {
    fn format(&self) -> mad_core::OutputFormat {
        mad_core::OutputFormat::Csv
    }

    fn render(&self, job: &mad_core::RenderJob<'_>) -> mad_core::Result<Vec<u8>> {
        let table = job.table;
        let region = table.require_column("Region")?;
        let sales = table.require_column("Sales")?;
        let mut regions: Vec<String> = texts(table, region);
        regions.dedup();
        Ok(format!("{}|{}|{}", regions.join(","), table.len(), table.sum(sales)).into_bytes())
    }
}

/// Keeps every delivery in memory.
#[derive(Debug, Default)]
struct Outbox {
    sent: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl mad_core::Channel for Outbox {
    fn name(&self) -> &str {
        "outbox"
    }

    fn capabilities(&self) -> mad_core::ChannelCapabilities {
        mad_core::ChannelCapabilities::default()
    }

    async fn deliver(&self, delivery: &mad_core::Delivery) -> mad_core::Result<mad_core::Receipt> {
        let body = String::from_utf8_lossy(&delivery.documents[0].bytes).to_string();
        self.sent
            .lock()
            .unwrap()
            .push((delivery.recipient.id.clone(), body));
        Ok(mad_core::Receipt {
            channel: "outbox".into(),
            locations: Vec::new(),
            bytes: delivery.bytes(),
        })
    }
}

#[tokio::test]
async fn through_the_engine_a_recipient_with_an_absent_value_is_skipped() {
    use std::sync::Arc;

    use mad_core::{ColumnDef, OutputFormat, Recipient, ReportDef, Status, Task, TaskChannel};

    let engine = superstore().await;
    let mut options = engine.options("superstore", QlikAuth::None);
    options.row_key = Some("Row ID".into());
    let source = Arc::new(engine.source(options));
    let mut report = ReportDef::new("sales", "Sales");
    report.columns = vec![ColumnDef::new("Region"), ColumnDef::new("Sales")];
    report.formats = vec![OutputFormat::Csv];
    let recipients =
        [("east", "East"), ("atlantis", "Atlantis"), ("west", "West")].map(|(id, region)| {
            Arc::new(Recipient::new(id, id).with_filter(Filter::new("Region", [region])))
        });
    let outbox = Arc::new(Outbox::default());
    let task = Task::new("regional", source)
        .with_report(report)
        .with_recipients(recipients)
        .with_channel(TaskChannel::new(outbox.clone()))
        .with_renderer(Arc::new(SummaryRenderer));

    let summary = mad_core::Engine::default().run(&task).await.unwrap();
    let status: BTreeMap<&str, Status> = summary
        .recipients
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(status["east"], Status::Delivered);
    assert_eq!(status["west"], Status::Delivered);
    assert_eq!(status["atlantis"], Status::Skipped);
    let skipped = summary
        .recipients
        .iter()
        .find(|r| r.id == "atlantis")
        .unwrap();
    assert!(
        skipped
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("'Atlantis'"),
        "{skipped:?}"
    );

    let reference = superstore_table();
    let sent = outbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    for (id, body) in sent {
        let region = if id == "east" { "East" } else { "West" };
        let expected = FilterSet::from_filters([Filter::new("Region", [region])])
            .apply(&reference)
            .unwrap();
        let parts: Vec<&str> = body.split('|').collect();
        assert_eq!(parts[0], region, "{id} sees only its region");
        assert_eq!(parts[1].parse::<usize>().unwrap(), expected.len());
        let sum = expected.sum(expected.require_column("Sales").unwrap());
        assert!(close_enough(parts[2].parse().unwrap(), sum));
    }
    engine.assert_no_violations();
}

#[tokio::test]
async fn sessions_open_session_apps_and_answer_typed_calls() {
    use mad_qlik::engine::{Connector, SessionState};

    let engine = superstore().await;
    let connector = Connector::new(&engine.options("SessionApp_mad-test", QlikAuth::None)).unwrap();
    let session = connector.connect(None).await.unwrap();
    assert_eq!(session.session_state(), SessionState::Created);
    assert_eq!(session.app(), "SessionApp_mad-test");
    assert!(!session.engine_version().await.unwrap().is_empty());
    let two = session.evaluate_ex("1+1").await.unwrap();
    assert_eq!(two["qNumber"], 2);

    let connector = Connector::new(&engine.options("superstore", QlikAuth::None)).unwrap();
    let mut session = connector.connect(None).await.unwrap();
    assert!(session.get_field("Region").await.unwrap().is_some());
    assert!(session.get_field("No Such Field").await.unwrap().is_none());
    assert!(session.get_object("nothing").await.unwrap().is_none());
    let err = session.create_session_app().await.unwrap_err();
    assert!(
        err.to_string().contains("1002"),
        "one app per session: {err}"
    );
    engine.assert_no_violations();
}
