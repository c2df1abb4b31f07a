//! Faults: dropped sockets, slow answers, session time-outs, close codes, aborted requests
//! and "app already open", each ending in a complete table or a clear error.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mad_core::{
    ColumnBuilder, ErrorKind, Field, FieldKind, Filter, FilterSet, Query, QueryColumn, Schema,
    Table, Value,
};
use mad_qlik::engine::{QlikAuth, QlikOptions};
use mad_qlik_double::{App, Fault, QlikDouble};

fn totals() -> Query {
    Query {
        columns: vec![
            QueryColumn::field("Region"),
            measure("Sales", "Sum([Sales])"),
        ],
    }
}

/// Every order line: 9,994 rows of 3 columns, so 3 data pages after the layout's first.
fn detail() -> Query {
    Query::fields(["Row ID", "Region", "Sales"])
}

async fn started() -> Engine {
    Engine::start(QlikDouble::builder().app(superstore_app())).await
}

fn options(engine: &Engine, retries: u32) -> QlikOptions {
    let mut options = engine.options("superstore", QlikAuth::None);
    options.retries = retries;
    options
}

#[tokio::test]
async fn a_socket_dropped_mid_page_is_retried_in_a_new_session() {
    let engine = started().await;
    let source = engine.source(options(&engine, 2));
    engine
        .double
        .inject(Fault::DropDuringHyperCubeData { after: 1 });

    let table = fetch(&source, &detail(), &FilterSet::all()).await.unwrap();
    assert_eq!(
        table.len(),
        superstore_table().len(),
        "the whole table, not a part"
    );
    assert_eq!(
        engine.double.sessions_opened(),
        2,
        "the fetch ran again in a new session"
    );
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_socket_dropped_mid_page_without_retries_is_an_error_not_a_part() {
    let engine = started().await;
    let source = engine.source(options(&engine, 0));
    engine
        .double
        .inject(Fault::DropDuringHyperCubeData { after: 1 });

    let err = fetch(&source, &detail(), &FilterSet::all())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("1006"), "{err}");
    assert_eq!(source.idle_sessions(), 0, "a broken session is not kept");
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_cancelled() {
    let engine = started().await;
    let mut options = options(&engine, 3);
    options.request_timeout = 0.5;
    let source = engine.source(options);
    engine.double.inject(Fault::Delay {
        method: Some("GetHyperCubeData".into()),
        by: Duration::from_secs(20),
    });

    let started = Instant::now();
    let err = fetch(&source, &detail(), &FilterSet::all())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a timeout is not retried"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        engine.double.request_count("CancelRequest") >= 1,
        "the request was cancelled"
    );
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_dropped_request_future_cancels_the_request() {
    let engine = started().await;
    let source = engine.source(options(&engine, 0));
    engine.double.inject(Fault::Delay {
        method: Some("GetHyperCubeData".into()),
        by: Duration::from_secs(20),
    });
    let abandoned = tokio::time::timeout(
        Duration::from_millis(700),
        fetch(&source, &detail(), &FilterSet::all()),
    )
    .await;
    assert!(abandoned.is_err(), "the fetch was still waiting");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine.double.request_count("CancelRequest") >= 1);
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_session_time_out_notification_is_a_timeout() {
    let engine = started().await;
    let source = engine.source(options(&engine, 3));
    engine.double.inject(Fault::Delay {
        method: Some("GetHyperCubeData".into()),
        by: Duration::from_secs(20),
    });
    let (query, all) = (detail(), FilterSet::all());
    let fetching = fetch(&source, &query, &all);
    let timing_out = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        engine.double.time_out_sessions();
    };
    let (result, ()) = tokio::join!(fetching, timing_out);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("OnSessionTimedOut"), "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn close_codes_become_error_kinds() {
    let engine = started().await;
    let source = engine.source(options(&engine, 0));
    let expected = [
        (4000, ErrorKind::Transient),
        (4001, ErrorKind::Timeout),
        (4003, ErrorKind::Transient),
        (4004, ErrorKind::NotFound),
        (4005, ErrorKind::RateLimited),
        (4006, ErrorKind::Unauthenticated),
        (4203, ErrorKind::PermissionDenied),
        (4204, ErrorKind::NotFound),
        (4205, ErrorKind::RateLimited),
        (1006, ErrorKind::Transient),
    ];
    for (code, kind) in expected {
        engine.double.inject(Fault::CloseOn {
            method: "GetHyperCubeData".into(),
            code,
        });
        let err = fetch(&source, &detail(), &FilterSet::all())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "close {code}: {err}");
    }

    let retrying = engine.source(options(&engine, 1));
    engine.double.inject(Fault::CloseOn {
        method: "GetHyperCubeData".into(),
        code: 4003,
    });
    let table = fetch(&retrying, &totals(), &FilterSet::all())
        .await
        .unwrap();
    assert_eq!(table.len(), 4, "a transient close is retried");
    engine.assert_no_violations();
}

#[tokio::test]
async fn an_aborted_request_is_sent_again() {
    let engine = started().await;
    let source = engine.source(options(&engine, 2));
    let east = FilterSet::from_filters([Filter::new("Region", ["East"])]);

    engine.double.inject(Fault::ErrorOnce {
        method: "GenericObject.GetLayout".into(),
        code: 15,
    });
    let table = fetch(&source, &totals(), &east).await.unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(
        engine.double.sessions_opened(),
        1,
        "the call was repeated, not the fetch"
    );

    engine.double.inject(Fault::ErrorOnce {
        method: "GetHyperCubeData".into(),
        code: 15,
    });
    let table = fetch(&source, &detail(), &FilterSet::all()).await.unwrap();
    assert_eq!(table.len(), superstore_table().len());
    assert_eq!(
        engine.double.sessions_opened(),
        2,
        "an aborted data page runs the fetch again"
    );
    engine.assert_no_violations();
}

#[tokio::test]
async fn app_already_open_is_resolved_with_the_active_app() {
    let engine = started().await;
    let source = engine.source(options(&engine, 0));
    engine.double.inject(Fault::ErrorOnce {
        method: "OpenDoc".into(),
        code: 1002,
    });
    let table = fetch(&source, &totals(), &FilterSet::all()).await.unwrap();
    assert_eq!(table.len(), 4);
    assert!(engine.double.request_count("GetActiveDoc") >= 1);
    assert_eq!(engine.double.request_count("OpenDoc"), 2);
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_missing_app_is_not_found() {
    let engine =
        Engine::start(QlikDouble::builder().app(App::from_file("other", SUPERSTORE).unwrap()))
            .await;
    let source = engine.source(engine.options("no-such-app", QlikAuth::None));
    let err = fetch(&source, &totals(), &FilterSet::all())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-app"), "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_proxy_that_never_answers_the_login_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let login = throwaway_secret("jwt");
    let mut options = QlikOptions::new(format!("ws://127.0.0.1:{port}/jwt"), "superstore")
        .with_auth(QlikAuth::SessionCookie {
            login: secret_file(dir.path(), "login", &login),
            cookie: "X-Qlik-Session".into(),
        });
    options.request_timeout = 1.0;
    options.retries = 0;
    let source = mad_qlik::engine::QlikSource::new(options).unwrap();

    let started = Instant::now();
    let fetched = tokio::time::timeout(
        Duration::from_secs(10),
        fetch(&source, &totals(), &FilterSet::all()),
    )
    .await
    .expect("the login does not hang");
    let err = fetched.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("request_timeout"), "{err}");
    assert!(!err.to_string().contains(&login));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}

/// One column of `rows` distinct numbers, more than a list object's first page holds.
fn many_values(rows: usize) -> App {
    let mut column = ColumnBuilder::with_capacity(rows);
    (0..rows).for_each(|r| column.push(Value::Number(r as f64)));
    let schema = Schema::new(vec![Field::new("n", FieldKind::Integer)]);
    App::new("many", Table::new(schema, vec![column.finish()]).unwrap())
}

#[tokio::test]
async fn hypercube_pages_without_cells_are_an_error_not_a_loop() {
    let engine = started().await;
    let source = engine.source(options(&engine, 2));
    engine.double.inject(Fault::EmptyMatrix {
        method: "GetHyperCubeData".into(),
    });

    let fetched = tokio::time::timeout(
        Duration::from_secs(10),
        fetch(&source, &detail(), &FilterSet::all()),
    )
    .await
    .expect("the fetch ends");
    let err = fetched.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataSource, "{err}");
    assert!(err.to_string().contains("no cells"), "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn list_pages_without_cells_are_an_error_not_a_loop() {
    let engine = Engine::start(QlikDouble::builder().app(many_values(12_000))).await;
    let source = engine.source(engine.options("many", QlikAuth::None));
    engine.double.inject(Fault::EmptyMatrix {
        method: "GetListObjectData".into(),
    });
    let filters = FilterSet::from_filters([Filter::new("n", ["11500"])]);

    let fetched = tokio::time::timeout(
        Duration::from_secs(10),
        fetch(&source, &Query::fields(["n"]), &filters),
    )
    .await
    .expect("the fetch ends");
    let err = fetched.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataSource, "{err}");
    assert!(err.to_string().contains("no cells"), "{err}");

    engine.double.clear_faults();
    let table = fetch(&source, &Query::fields(["n"]), &filters)
        .await
        .unwrap();
    assert_eq!(texts(&table, 0), ["11500"]);
    engine.assert_no_violations();
}
