//! The regional sales example delivered to every channel kind by configuration alone: the
//! example's definitions file is loaded, the `regional` task's channels are replaced by one
//! channel written as TOML text (the kind and the local server's options, credentials as
//! `file:` secret references), the task runs with every built-in renderer and channel, and the
//! four managers' documents are read back from the server: one per manager, named for their
//! region, holding exactly their region's orders. North has no orders and is skipped.

#[allow(dead_code)] // the remote servers use part of it
mod conformance;
mod doubles;
mod remote;
mod s3_server;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mad_core::{Engine, Registry, RunInfo, RunSummary, Status, Workspace};
use mad_deliver::email::Security as SmtpSecurity;
use mad_deliver::hub::{Hub, HubOptions};
use serde::Serialize;

use remote::{FtpFixture, FtpMode, Sshd, arrived_below};
use s3_server::S3Server;
use support::{SmtpFixture, SmtpMode, parse_message, repo_root, secret_file};

const MANAGERS: [(&str, &str); 4] = [
    ("east", "East"),
    ("west", "West"),
    ("central", "Central"),
    ("south", "South"),
];
const RUN_DATE: &str = "2025-12-04";
const FORMATS: [&str; 2] = ["csv", "xlsx"];

/// The same registry as the `mad` facade's: every source, renderer and channel.
fn registry() -> Registry {
    let mut registry = Registry::new();
    mad_qlik::register(&mut registry);
    mad_render::register(&mut registry);
    mad_deliver::register(&mut registry);
    registry
}

fn example_dir() -> PathBuf {
    repo_root().join("examples/regional_sales")
}

/// The example's definitions with the `regional` task delivering only through `channel`, a
/// channel definition written as TOML text.
fn workspace_with(channel: &str, out: &Path) -> Workspace {
    let text = std::fs::read_to_string(example_dir().join("workspace.toml")).unwrap();
    let mut definitions: toml::Table = text.parse().unwrap();
    let channel: toml::Table = channel
        .parse()
        .unwrap_or_else(|e| panic!("channel definition {channel}: {e}"));

    let channels = definitions["channels"].as_table_mut().unwrap();
    channels.remove("reports");
    channels.remove("managers");
    channels.insert("delivery".into(), toml::Value::Table(channel));
    for task in definitions["tasks"].as_array_mut().unwrap() {
        if task["name"].as_str() == Some("regional") {
            task["channels"] = toml::Value::Array(vec!["delivery".into()]);
        }
    }

    let text = toml::to_string(&definitions).unwrap();
    Workspace::from_toml(&text, example_dir())
        .unwrap()
        .with_output_dir(out)
}

/// A channel definition as TOML text: its kind, the formats it receives and its options.
fn channel_toml(kind: &str, formats: &[&str], options: &impl Serialize) -> String {
    let options = toml::to_string(options).unwrap();
    let formats: Vec<String> = formats.iter().map(|f| format!("{f:?}")).collect();
    format!(
        "kind = {kind:?}\nformats = [{}]\n{options}",
        formats.join(", ")
    )
}

/// Runs the `regional` task with its channels replaced by `channel`.
async fn run_regional(channel: &str, kind: &str) -> RunSummary {
    let out = tempfile::tempdir().unwrap();
    let runtime = workspace_with(channel, out.path())
        .instantiate(&registry())
        .unwrap();
    let task = runtime.task("regional").await.unwrap();
    let run = RunInfo::at(format!("regional-{kind}"), 1_764_849_600.0); // 2025-12-04 12:00 UTC
    let summary = Engine::default().run_as(&task, run).await.unwrap();
    check_summary(&summary, kind);
    summary
}

fn check_summary(summary: &RunSummary, kind: &str) {
    for (id, _) in MANAGERS {
        let outcome = summary.outcome(id).unwrap();
        assert_eq!(
            outcome.status,
            Status::Delivered,
            "{kind}: {id}: {:?}",
            outcome.errors
        );
    }
    let north = summary.outcome("north").unwrap();
    assert_eq!(north.status, Status::Skipped, "{kind}: North has no orders");
    assert!(north.receipts.is_empty(), "{kind}: nothing sent to North");
}

/// The order lines of each region in the source file, as (Order ID, Product Name) with their
/// counts.
fn source_lines() -> BTreeMap<String, BTreeMap<(String, String), usize>> {
    let path = repo_root().join("examples/data/superstore/superstore.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (region, order, product) = (col("Region"), col("Order ID"), col("Product Name"));
    let mut lines: BTreeMap<String, BTreeMap<_, usize>> = BTreeMap::new();
    for record in reader.records() {
        let r = record.unwrap();
        let key = (r[order].to_string(), r[product].to_string());
        *lines
            .entry(r[region].to_string())
            .or_default()
            .entry(key)
            .or_default() += 1;
    }
    lines
}

/// The order lines of a delivered CSV report, as (Order ID, Product) with their counts.
fn csv_lines(bytes: &[u8]) -> BTreeMap<(String, String), usize> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (order, product) = (col("Order ID"), col("Product"));
    let mut lines = BTreeMap::new();
    for record in reader.records() {
        let r = record.unwrap();
        *lines
            .entry((r[order].to_string(), r[product].to_string()))
            .or_default() += 1;
    }
    lines
}

/// What arrived, as (recipient id, file name, bytes): checks there is one file per manager and
/// format, each named for the manager's region and holding only that region's orders.
fn check_arrived(kind: &str, mut arrived: Vec<(String, String, Vec<u8>)>, formats: &[&str]) {
    arrived.sort();
    let mut want: Vec<(String, String)> = MANAGERS
        .iter()
        .flat_map(|(id, region)| {
            formats
                .iter()
                .map(move |f| (id.to_string(), format!("{region} sales {RUN_DATE}.{f}")))
        })
        .collect();
    want.sort();
    let got: Vec<(String, String)> = arrived
        .iter()
        .map(|(id, name, _)| (id.clone(), name.clone()))
        .collect();
    assert_eq!(got, want, "{kind}: the documents that arrived");

    let source = source_lines();
    for (id, name, bytes) in &arrived {
        let region = MANAGERS.iter().find(|(m, _)| m == id).unwrap().1;
        if name.ends_with(".csv") {
            assert_eq!(
                csv_lines(bytes),
                source[region],
                "{kind}: {id}: {name} holds other rows than the {region} orders"
            );
        } else if name.ends_with(".xlsx") {
            assert!(bytes.starts_with(b"PK"), "{kind}: {name} is not a workbook");
        }
    }
}

/// Splits `{recipient}/{file}` paths at the last two segments.
fn by_recipient(files: Vec<(String, Vec<u8>)>) -> Vec<(String, String, Vec<u8>)> {
    files
        .into_iter()
        .map(|(path, bytes)| {
            let mut parts = path.rsplit('/');
            let name = parts.next().unwrap().to_string();
            let id = parts.next().unwrap_or_default().to_string();
            (id, name, bytes)
        })
        .collect()
}

// ---- e-mail ---------------------------------------------------------------------------------

/// The example's own e-mail channel, sending through SMTP with STARTTLS and AUTH instead of
/// writing to a pickup folder, with the CSV report attached.
#[tokio::test]
async fn to_smtp() {
    let fixture = SmtpFixture::start(SmtpMode::Starttls);
    let text = std::fs::read_to_string(example_dir().join("workspace.toml")).unwrap();
    let definitions: toml::Table = text.parse().unwrap();
    let mut email = definitions["channels"]["managers"]
        .as_table()
        .unwrap()
        .clone();
    email.remove("pickup");
    email.insert(
        "formats".into(),
        toml::Value::try_from(["csv", "html"]).unwrap(),
    );
    email.insert("attach".into(), toml::Value::try_from(["csv"]).unwrap());
    let smtp = fixture.smtp(SmtpSecurity::Starttls, &fixture.password);
    email.insert("smtp".into(), toml::Value::try_from(&smtp).unwrap());
    let channel = toml::to_string(&email).unwrap();

    run_regional(&channel, "email").await;

    let messages = fixture.server.wait_for(MANAGERS.len());
    let source = source_lines();
    let mut addressed = Vec::new();
    for received in &messages {
        let parsed = parse_message(&received.raw);
        let [(name, bytes)] = &parsed.attachments[..] else {
            panic!("one attachment each, got {}", parsed.attachments.len());
        };
        let region = name.split(' ').next().unwrap();
        assert_eq!(name, &format!("{region} sales {RUN_DATE}.csv"));
        assert_eq!(csv_lines(bytes), source[region], "{name} holds other rows");
        assert!(parsed.subject.contains(region), "{}", parsed.subject);
        addressed.push((parsed.to.clone(), region.to_string()));
    }
    addressed.sort();
    let want = [
        ("eleni.papadopoulou@example.com", "South"),
        ("joao.sao.paulo@example.com", "West"),
        ("lukasz.lodz@example.com", "Central"),
        ("zoe.zuercher@example.com", "East"),
    ];
    assert_eq!(addressed.len(), want.len());
    for ((to, region), (address, want_region)) in addressed.iter().zip(want) {
        assert!(to.iter().any(|t| t.contains(address)), "{to:?}");
        assert_eq!(region, want_region);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fixture.server.received().len(), 4, "nothing for North");
}

// ---- FTP, FTPS, SFTP ------------------------------------------------------------------------

async fn ftp(mode: FtpMode, kind: &str) {
    let fixture = FtpFixture::start(mode);
    let channel = channel_toml("ftp", &FORMATS, &fixture.options(&fixture.password));

    run_regional(&channel, kind).await;

    let files = arrived_below(&fixture.reports())
        .into_iter()
        .map(|(path, arrived)| (path, arrived.bytes))
        .collect();
    check_arrived(kind, by_recipient(files), &FORMATS);
}

#[tokio::test]
async fn to_ftp() {
    ftp(FtpMode::Plain, "ftp").await;
}

#[tokio::test]
async fn to_ftps() {
    ftp(FtpMode::ExplicitTls, "ftps").await;
}

#[tokio::test]
async fn to_sftp() {
    let sshd = Sshd::start();
    std::fs::create_dir(sshd.root.path().join("reports")).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let key = std::fs::read_to_string(&sshd.client_key.private).unwrap();
    let options = mad_deliver::sftp::SftpOptions::new("127.0.0.1", &sshd.user)
        .with_port(sshd.port)
        .with_private_key(secret_file(secrets.path(), &key))
        .with_known_hosts(sshd.known_hosts(secrets.path()))
        .with_path(format!(
            "{}/reports",
            sshd.remote_root.trim_end_matches('/')
        ))
        .with_subfolder("{recipient.id}")
        .with_timeout_secs(20);
    let channel = channel_toml("sftp", &FORMATS, &options);

    run_regional(&channel, "sftp").await;

    let files = arrived_below(&sshd.root.path().join("reports"))
        .into_iter()
        .map(|(path, arrived)| (path, arrived.bytes))
        .collect();
    check_arrived("sftp", by_recipient(files), &FORMATS);
}

// ---- S3 -------------------------------------------------------------------------------------

#[tokio::test]
async fn to_s3() {
    let server = S3Server::start(&["reports"]);
    let options = server
        .options("reports")
        .with_prefix("regional/{recipient.id}");
    let channel = channel_toml("s3", &FORMATS, &options);

    run_regional(&channel, "s3").await;

    let files = server
        .objects("reports")
        .into_iter()
        .map(|o| (o.key, o.bytes))
        .collect();
    check_arrived("s3", by_recipient(files), &FORMATS);
}

// ---- cloud storage --------------------------------------------------------------------------

#[tokio::test]
async fn to_graph() {
    let fixture = doubles::graph::Fixture::start();
    let channel = channel_toml("graph", &FORMATS, &fixture.options());

    run_regional(&channel, "graph").await;

    let files = fixture
        .double
        .files()
        .into_iter()
        .map(|f| (f.path, f.bytes))
        .collect();
    check_arrived("graph", by_recipient(files), &FORMATS);
}

#[tokio::test]
async fn to_dropbox() {
    let fixture = doubles::dropbox::Fixture::start();
    let channel = channel_toml("dropbox", &FORMATS, &fixture.options());

    run_regional(&channel, "dropbox").await;

    let files = fixture
        .double
        .files()
        .into_iter()
        .map(|f| (f.path_display, f.bytes))
        .collect();
    check_arrived("dropbox", by_recipient(files), &FORMATS);
}

#[tokio::test]
async fn to_box() {
    let fixture = doubles::r#box::Fixture::start();
    let channel = channel_toml("box", &FORMATS, &fixture.options());

    run_regional(&channel, "box").await;

    let files = fixture
        .double
        .files()
        .into_iter()
        .map(|f| (fixture.double.path_of(&f), f.bytes))
        .collect();
    check_arrived("box", by_recipient(files), &FORMATS);
}

#[tokio::test]
async fn to_gdrive() {
    let fixture = doubles::gdrive::Fixture::start();
    let channel = channel_toml("gdrive", &FORMATS, &fixture.options());

    run_regional(&channel, "gdrive").await;

    let files = fixture
        .double
        .files()
        .into_iter()
        .map(|f| (fixture.double.path_of(&f), f.bytes))
        .collect();
    check_arrived("gdrive", by_recipient(files), &FORMATS);
}

// ---- hub ------------------------------------------------------------------------------------

#[tokio::test]
async fn to_hub() {
    let dir = tempfile::tempdir().unwrap();
    let options = HubOptions::new(
        dir.path().join("index.sqlite"),
        dir.path().join("documents"),
    );
    let channel = channel_toml("hub", &FORMATS, &options);

    run_regional(&channel, "hub").await;

    let hub = Hub::open(options).unwrap();
    let mut files = Vec::new();
    for (id, _) in MANAGERS.iter().chain([&("north", "North")]) {
        for entry in hub.list(id).await.unwrap() {
            let bytes = hub.fetch(id, &entry.id).await.unwrap();
            files.push((id.to_string(), entry.file_name, bytes.to_vec()));
        }
    }
    check_arrived("hub", files, &FORMATS);
}
