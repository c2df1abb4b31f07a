//! Bad input gets a clear error and loses nothing: each case runs a whole definitions file and
//! checks the error kind, the message, and that no file was half-written.

mod support;

use std::path::Path;

use mad::{ErrorKind, RunSummary, Status, Workspace};

/// A definitions file around one report over `source`, for the managers in `recipients`.
fn definitions(source: &str, recipients: &str, channel_path: &str, file_name: &str) -> String {
    format!(
        r#"
[sources.orders]
{source}

[reports.sales]
title = "Sales {{Region}}"
formats = ["csv", "pdf"]
file_name = "{file_name}"
columns = [{{ field = "Order ID" }}, {{ field = "Sales", total = "sum" }}]

[channels.folder]
kind = "folder"
path = "{channel_path}"
create = true

[[tasks]]
name = "t"
source = "orders"
reports = ["sales"]
channels = ["folder"]
{recipients}
"#
    )
}

fn superstore_source() -> String {
    let csv = support::repo().join("examples/data/superstore/superstore.csv");
    format!("kind = \"csv\"\npath = \"{}\"", csv.display())
}

const TWO_MANAGERS: &str = r#"recipients = [
  { id = "east", name = "East", filters = [{ field = "Region", values = ["East"] }] },
  { id = "west", name = "West", filters = [{ field = "Region", values = ["West"] }] },
]"#;

async fn run(dir: &Path, text: &str) -> mad::Result<RunSummary> {
    let ws = Workspace::from_toml(text, dir)?.with_output_dir(dir.join("out"));
    let runtime = ws.instantiate(&mad::registry())?;
    let task = runtime.task("t").await?;
    mad::Engine::default().run(&task).await
}

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { files(&p) } else { vec![p] }
        })
        .collect()
}

fn assert_all_failed(summary: &RunSummary, kind: ErrorKind, needle: &str) {
    assert_eq!(
        summary.counts.failed,
        summary.counts.recipients,
        "{}",
        summary.human()
    );
    for r in &summary.recipients {
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.errors[0].kind, kind, "{r:?}");
        assert!(r.errors[0].message.contains(needle), "{r:?}");
    }
}

#[tokio::test]
async fn missing_source_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = definitions(
        "kind = \"csv\"\npath = \"missing.csv\"",
        TWO_MANAGERS,
        "reports",
        "{Region}",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    assert_all_failed(&summary, ErrorKind::NotFound, "missing.csv");
    assert!(files(dir.path()).is_empty());
}

#[tokio::test]
async fn damaged_qvd() {
    let dir = tempfile::tempdir().unwrap();
    let qvd = support::repo().join("../shared/data/qvd/misc/damaged.qvd");
    let source = format!("kind = \"qvd\"\npath = \"{}\"", qvd.display());
    let summary = run(
        dir.path(),
        &definitions(&source, TWO_MANAGERS, "reports", "{Region}"),
    )
    .await
    .unwrap();
    assert_all_failed(&summary, ErrorKind::InvalidInput, "damaged.qvd");
    assert!(files(dir.path()).is_empty());
}

#[tokio::test]
async fn ragged_csv_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.csv"),
        "Region,Order ID,Sales\nEast,A,1\nWest,B\n",
    )
    .unwrap();
    let text = definitions(
        "kind = \"csv\"\npath = \"orders.csv\"",
        TWO_MANAGERS,
        "reports",
        "{Region}",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    assert_all_failed(&summary, ErrorKind::InvalidInput, "line 3");
    assert!(!dir.path().join("out").exists());
}

#[tokio::test]
async fn filter_on_a_missing_field_fails_only_that_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let recipients = r#"recipients = [
  { id = "east", name = "East", filters = [{ field = "Region", values = ["East"] }] },
  { id = "odd", name = "Odd", filters = [{ field = "Territory", values = ["North"] }] },
]"#;
    let text = definitions(
        &superstore_source(),
        recipients,
        "reports",
        "{recipient.id}",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    let odd = summary.outcome("odd").unwrap();
    assert_eq!(odd.status, Status::Failed);
    assert_eq!(odd.errors[0].kind, ErrorKind::InvalidConfig);
    assert!(odd.errors[0].message.contains("'Territory'"), "{odd:?}");
    assert_eq!(summary.outcome("east").unwrap().status, Status::Delivered);
    let written: Vec<String> = files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(written.len(), 2, "only east's CSV and PDF: {written:?}");
    assert!(
        written.iter().all(|f| f.starts_with("east.")),
        "{written:?}"
    );
}

#[tokio::test]
async fn empty_value_table_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("managers.csv"), "id,email,Region\n").unwrap();
    let mut text = definitions(
        &superstore_source(),
        r#"value_tables = [{ source = "managers", filter_columns = ["Region"] }]"#,
        "reports",
        "{Region}",
    );
    text.push_str("\n[sources.managers]\nkind = \"csv\"\npath = \"managers.csv\"\n");
    let err = run(dir.path(), &text).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("no rows"), "{err}");
    assert!(!dir.path().join("out").exists());
}

#[tokio::test]
async fn unwritable_output_folder_fails_clearly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A folder below a regular file cannot be created, whoever runs the test (even root).
    std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
    let target = dir.path().join("blocker/reports");
    let text = definitions(
        &superstore_source(),
        TWO_MANAGERS,
        &target.display().to_string(),
        "{Region}",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    assert_eq!(summary.counts.failed, 2, "{}", summary.human());
    for r in &summary.recipients {
        assert_eq!(r.errors[0].kind, ErrorKind::NotFound, "{r:?}");
        assert!(r.errors[0].message.contains("blocker"), "{r:?}");
    }
    assert_eq!(files(dir.path()).len(), 1, "only the blocker file");
}

#[cfg(unix)]
#[tokio::test]
async fn a_folder_mad_may_not_write_to_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("read-only");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(target.join("probe"), "x").is_ok() {
        // Whoever may write anywhere (root) cannot be refused by permissions.
        eprintln!("skipped: this user may write to a read-only folder");
        return;
    }
    let text = definitions(
        &superstore_source(),
        TWO_MANAGERS,
        &target.display().to_string(),
        "{Region}",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    assert_eq!(summary.counts.failed, 2, "{}", summary.human());
    for r in &summary.recipients {
        assert_eq!(r.errors[0].kind, ErrorKind::PermissionDenied, "{r:?}");
        assert!(r.errors[0].message.contains("read-only"), "{r:?}");
    }
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing left behind"
    );
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn file_name_pattern_cannot_escape_the_folder() {
    // A pattern naming folders is refused before anything is fetched or written.
    for pattern in [
        "../../escaped {Region}",
        "{Region}/../x",
        "/tmp/{Region}",
        "a\\\\b",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = definitions(&superstore_source(), TWO_MANAGERS, "reports", pattern);
        let err = run(dir.path(), &text).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{pattern}: {err}");
        assert!(
            err.to_string().contains("names folders"),
            "{pattern}: {err}"
        );
        assert!(
            !dir.path().join("out").exists(),
            "{pattern}: nothing written"
        );
    }

    // Values holding slashes or dots stay inside the folder: they are part of the name.
    let dir = tempfile::tempdir().unwrap();
    let managers = r#"recipients = [
  { id = "east", name = "../../x/East", filters = [{ field = "Region", values = ["East"] }] },
]"#;
    let text = definitions(
        &superstore_source(),
        managers,
        "reports",
        "..{recipient.name}..",
    );
    let summary = run(dir.path(), &text).await.unwrap();
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    let reports = dir.path().join("out/reports").canonicalize().unwrap();
    for f in files(dir.path()) {
        assert!(
            f.canonicalize().unwrap().starts_with(&reports),
            "{} escaped",
            f.display()
        );
    }
}
