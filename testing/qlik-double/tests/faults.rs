//! Injected faults: dropped sockets, delays, close codes, one-off engine errors.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use mad_qlik_double::{Fault, QlikDouble};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn opened() -> (QlikDouble, Client, i64) {
    let double = QlikDouble::builder()
        .app(superstore())
        .start()
        .await
        .unwrap();
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    client.frame().await;
    let doc = client.open("superstore").await;
    (double, client, doc)
}

/// What the socket ends with: a close frame's code, or `None` for a drop without one.
async fn ending(client: &mut Client) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("the socket ends")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn drops_the_socket_in_the_middle_of_hypercube_data() {
    let (double, mut client, doc) = opened().await;
    let handle = client
        .object(doc, cube(&["Row ID"], &["Sum(Sales)"], (0, 0)))
        .await;
    double.inject(Fault::DropDuringHyperCubeData { after: 1 });
    let page = |top: i64| json!(["/qHyperCubeDef", [{"qLeft": 0, "qTop": top, "qWidth": 2, "qHeight": 2000}]]);
    let first = client.ok(handle, "GetHyperCubeData", page(0)).await;
    assert_eq!(first["qDataPages"][0]["qArea"]["qHeight"], 2000);
    client.send(handle, "GetHyperCubeData", page(2000)).await;
    assert_eq!(
        ending(&mut client).await,
        None,
        "no close frame, no complete answer"
    );
}

#[tokio::test]
async fn delays_answers_and_cancels_held_requests() {
    let (double, mut client, doc) = opened().await;
    double.inject(Fault::Delay {
        method: Some("GetAppLayout".into()),
        by: Duration::from_millis(300),
    });
    let started = Instant::now();
    client.ok(doc, "GetAppLayout", json!([])).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    double.clear_faults();
    double.inject(Fault::Delay {
        method: Some("Doc.Evaluate".into()),
        by: Duration::from_secs(30),
    });
    let held = client.send(doc, "Evaluate", json!(["Sum(Sales)"])).await;
    let cancel = client.call(-1, "CancelRequest", json!([held])).await;
    assert_eq!(cancel["result"], json!({}));
    let aborted = client.response(held).await;
    assert_eq!(
        aborted["error"],
        json!({"code": 15, "parameter": "Failure", "message": "Request aborted"})
    );
}

#[tokio::test]
async fn closes_with_each_code() {
    for code in [4000u16, 4001, 4003, 4204, 4205] {
        let (double, mut client, _) = opened().await;
        double.close_connections(code, "test close");
        assert_eq!(ending(&mut client).await, Some(code));
    }
    let (double, mut client, _) = opened().await;
    double.close_connections(1006, "abrupt");
    assert_eq!(ending(&mut client).await, None);

    let (double, mut client, doc) = opened().await;
    double.inject(Fault::CloseOn {
        method: "GetHyperCubeData".into(),
        code: 4003,
    });
    let handle = client
        .object(doc, cube(&["Region"], &["Sum(Sales)"], (2, 10)))
        .await;
    client
        .send(handle, "GetHyperCubeData", json!(["/qHyperCubeDef", []]))
        .await;
    assert_eq!(ending(&mut client).await, Some(4003));
}

#[tokio::test]
async fn session_timeout_notifies_then_closes_and_ends_the_session() {
    let (double, mut client, _) = opened().await;
    double.time_out_sessions();
    let notice = client.frame().await;
    assert_eq!(notice["method"], "OnSessionTimedOut");
    assert_eq!(notice["params"]["severity"], "fatal");
    assert_eq!(ending(&mut client).await, Some(4001));
    let mut again = connect(double.addr(), &double.app_url("superstore")).await;
    assert_eq!(
        again.frame().await["params"]["qSessionState"],
        "SESSION_CREATED"
    );
    assert!(double.sessions()[0].ended);
}

#[tokio::test]
async fn answers_engine_errors_once() {
    let double = QlikDouble::builder()
        .app(superstore())
        .start()
        .await
        .unwrap();
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    double.inject(Fault::ErrorOnce {
        method: "OpenDoc".into(),
        code: 1002,
    });
    let first = client.call(-1, "OpenDoc", json!(["superstore"])).await;
    assert_eq!(
        first["error"],
        json!({"code": 1002, "parameter": "superstore", "message": "App already open"})
    );
    let doc = client.open("superstore").await;

    double.inject(Fault::ErrorOnce {
        method: "GenericObject.GetLayout".into(),
        code: 15,
    });
    let handle = client
        .object(doc, cube(&["Region"], &["Sum(Sales)"], (2, 10)))
        .await;
    let aborted = client.call(handle, "GetLayout", json!([])).await;
    assert_eq!(aborted["error"]["code"], 15);
    assert_eq!(aborted["error"]["message"], "Request aborted");
    let retried = client.ok(handle, "GetLayout", json!([])).await;
    assert_eq!(retried["qLayout"]["qHyperCube"]["qSize"]["qcy"], 4);
}
