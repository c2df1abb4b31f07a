//! Exactly once: a 500-recipient run killed with SIGKILL midway and resumed with the same run
//! id delivers every remaining recipient once and none twice, to a folder and as e-mail. The
//! folder channel refuses to overwrite (`if_exists = "fail"`), so a second delivery of any
//! recipient would fail the run.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 500;

/// A value table giving each of the first customers (by name) an e-mail address.
fn recipients(dir: &Path) {
    let mut names: Vec<String> = support::superstore()
        .iter()
        .map(|o| o.get("Customer Name").to_string())
        .collect();
    names.sort();
    names.dedup();
    let mut table = csv::Writer::from_path(dir.join("recipients.csv")).unwrap();
    table
        .write_record(["id", "email", "Customer Name"])
        .unwrap();
    for (i, name) in names.iter().take(RECIPIENTS).enumerate() {
        table
            .write_record([
                name.as_str(),
                &format!("customer{i}@example.com"),
                name.as_str(),
            ])
            .unwrap();
    }
    table.flush().unwrap();
}

fn definitions(dir: &Path) -> std::path::PathBuf {
    recipients(dir);
    let csv = support::repo().join("examples/data/superstore/superstore.csv");
    let text = format!(
        r#"
[sources.orders]
kind = "csv"
path = "{}"

[reports.customer]
title = "Orders of {{recipient.name}}"
formats = ["csv", "pdf"]
file_name = "{{recipient.id}}"
columns = [{{ field = "Order ID" }}, {{ field = "Product Name" }}, {{ field = "Sales", total = "sum" }}]

[channels.folder]
kind = "folder"
path = "out"
create = true
if_exists = "fail"

[channels.mail]
kind = "email"
from = "reports@example.com"
subject = "Orders of {{recipient.name}}"
attach = ["pdf"]
formats = ["pdf"]
pickup = {{ dir = "outbox" }}

[[tasks]]
name = "customers"
source = "orders"
reports = ["customer"]
channels = ["folder", "mail"]
value_tables = [{{ source = "customers", filter_columns = ["Customer Name"], email_column = "email" }}]

[sources.customers]
kind = "csv"
path = "recipients.csv"
"#,
        csv.display()
    );
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mad(dir: &Path, defs: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mad"));
    cmd.args(["run"])
        .arg(defs)
        .args(["customers", "--run-id", "nightly-1", "--run-log"])
        .arg(dir.join("runs.sqlite"))
        .arg("--summary")
        .arg(dir.join("summary.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The messages in the pickup folder, as (the address each was sent to, its Message-ID), read
/// with an independent MIME parser. A write the kill interrupted may leave a hidden temporary
/// file, which no pickup reader takes for a message; anything else that is not `.eml` fails.
fn outbox_messages(outbox: &Path) -> Vec<(String, String)> {
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(outbox).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            continue;
        }
        assert!(name.ends_with(".eml"), "not a message: {}", path.display());
        let raw = std::fs::read(&path).unwrap();
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{} is not a message", path.display()));
        let to: Vec<String> = message
            .to()
            .and_then(|to| to.first())
            .and_then(|a| a.address())
            .map(|a| vec![a.to_string()])
            .unwrap_or_default();
        let [to] = &to[..] else {
            panic!("{} has no To address", path.display());
        };
        let id = message
            .message_id()
            .unwrap_or_else(|| panic!("{} has no Message-ID", path.display()));
        messages.push((to.clone(), id.to_string()));
    }
    messages
}

/// Checks the outbox holds one message per customer, no customer twice, every Message-ID
/// different.
fn assert_one_message_each(outbox: &Path) {
    let messages = outbox_messages(outbox);
    assert_eq!(messages.len(), RECIPIENTS, "one .eml per customer");
    let addresses: BTreeSet<&str> = messages.iter().map(|(to, _)| to.as_str()).collect();
    let want: BTreeSet<String> = (0..RECIPIENTS)
        .map(|i| format!("customer{i}@example.com"))
        .collect();
    assert_eq!(addresses.len(), RECIPIENTS, "no customer got two messages");
    assert!(
        addresses.iter().all(|a| want.contains(*a)),
        "only the customers were written to"
    );
    let ids: BTreeSet<&str> = messages.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), RECIPIENTS, "every Message-ID is different");
}

fn delivered_files(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_run_resumes_without_duplicates_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let defs = definitions(dir.path());
    let out = dir.path().join("out");

    let mut first = mad(dir.path(), &defs).spawn().unwrap();
    let started = Instant::now();
    while delivered_files(&out).len() < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first run never got going"
        );
        if first.try_wait().unwrap().is_some() {
            panic!("the first run finished before it could be killed; make the job bigger");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = delivered_files(&out).len();
    assert!(before < 2 * RECIPIENTS, "killed midway: {before} files");

    let status = mad(dir.path(), &defs).status().unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    let failed: Vec<&serde_json::Value> = summary["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "delivered")
        .collect();
    assert!(status.success(), "the resumed run failed for: {failed:?}");
    let counts = &summary["counts"];
    assert_eq!(counts["recipients"], RECIPIENTS);
    assert_eq!(counts["delivered"], RECIPIENTS, "{counts}");
    assert_eq!(counts["failed"], 0);
    assert!(counts["resumed"].as_u64().unwrap() > 0, "{counts}");

    let files = delivered_files(&out);
    assert_eq!(
        files.len(),
        2 * RECIPIENTS,
        "one CSV and one PDF per customer, nothing twice"
    );
    assert_one_message_each(&dir.path().join("outbox"));

    // A third run of the same run id is a no-op.
    let status = mad(dir.path(), &defs).status().unwrap();
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["counts"]["resumed"],
        2 * RECIPIENTS,
        "two channels each"
    );
    assert_eq!(delivered_files(&out).len(), 2 * RECIPIENTS);
    assert_one_message_each(&dir.path().join("outbox"));
}
