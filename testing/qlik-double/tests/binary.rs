//! The `mad-qlik-double` program: READY line, serving, exit when stdin closes.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn prints_ready_serves_and_exits_when_stdin_closes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mad-qlik-double"))
        .args(["--port", "0", "--tls", "--ca-out"])
        .arg(&ca)
        .arg("--app")
        .arg(format!("superstore={SUPERSTORE}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let port: u16 = ready
        .strip_prefix("READY ")
        .expect("READY <port>")
        .parse()
        .unwrap();

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let tls = Connect::default().tls(std::fs::read_to_string(&ca).unwrap());
    let url = format!("wss://127.0.0.1:{port}/app/superstore");
    let mut client = try_connect(addr, &url, &tls).await.unwrap();
    client.frame().await;
    let doc = client.open("superstore").await;
    let version = client
        .ok(doc, "Evaluate", json!(["Count(DISTINCT Region)"]))
        .await;
    assert_eq!(version["qReturn"], "4");

    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn refuses_unknown_options() {
    let output = Command::new(env!("CARGO_BIN_EXE_mad-qlik-double"))
        .arg("--bogus")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
}
