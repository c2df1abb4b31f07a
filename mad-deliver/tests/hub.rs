//! The hub channel on a real file system and a real S3 server (moto), with its index read
//! back by SQLite directly and its bytes by std::fs or boto3, never through the hub itself.

mod conformance;
mod s3_server;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mad_core::runlog::{DeliveryKey, RunLog};
use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Delivery, Engine, EngineOptions, ErrorKind, Field, FieldKind,
    MemoryRunLog, OnEmpty, OutputFormat, Registry, RenderJob, Renderer, ReportDef, RunInfo, Schema,
    Table, Task, TaskChannel, Value,
};
use mad_deliver::hub::{Hub, HubOptions};
use mad_deliver::s3::S3Channel;

use conformance::{ArrivalLog, Arrived, Harness};
use s3_server::S3Server;
use support::{delivery, document, pdf_bytes, recipient, report_delivery, throwaway};

const DAY: u64 = 24 * 60 * 60;
const START: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(AtomicU64::new(START)))
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }

    fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// A hub in a temporary folder, with its index and root inside.
struct Fixture {
    dir: tempfile::TempDir,
    clock: TestClock,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: TestClock::new(),
        }
    }

    fn index(&self) -> PathBuf {
        self.dir.path().join("index.sqlite")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("documents")
    }

    fn options(&self) -> HubOptions {
        HubOptions::new(self.index(), self.root()).with_retention_days(2)
    }

    fn hub(&self, options: HubOptions) -> Hub {
        let clock = self.clock.clone();
        Hub::open(options).unwrap().with_clock(move || clock.now())
    }

    /// The index rows as SQLite holds them: (id, recipient, file name, size, sha256).
    fn rows(&self) -> Vec<(String, String, String, i64, String)> {
        let db = rusqlite::Connection::open(self.index()).unwrap();
        let mut statement = db
            .prepare("SELECT id, recipient, file_name, size, sha256 FROM hub_documents ORDER BY id")
            .unwrap();
        statement
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn delete_row(&self, id: &str) {
        let db = rusqlite::Connection::open(self.index()).unwrap();
        db.execute("DELETE FROM hub_documents WHERE id = ?1", [id])
            .unwrap();
    }

    fn file_of(&self, id: &str) -> PathBuf {
        self.root().join(&id[..2]).join(id)
    }

    /// Every file below the root, relative to it.
    fn files(&self) -> Vec<PathBuf> {
        files_below(&self.root())
    }
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(
                files_below(&path)
                    .into_iter()
                    .map(|p| Path::new(path.file_name().unwrap()).join(p)),
            );
        } else {
            out.push(PathBuf::from(path.file_name().unwrap()));
        }
    }
    out.sort();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn id_of(location: &str) -> &str {
    location.rsplit(['/', ':']).next().unwrap()
}

// ---- conformance ----------------------------------------------------------------------------

struct HubHarness {
    fixture: Fixture,
    hub: Arc<Hub>,
    log: ArrivalLog,
}

impl Harness for HubHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.hub.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let current = self
            .fixture
            .rows()
            .into_iter()
            .map(|(id, _, name, _, _)| {
                let bytes = fs::read(self.fixture.file_of(&id)).unwrap();
                (id, Arrived { name, bytes })
            })
            .collect();
        self.log.update(current)
    }
}

#[tokio::test]
async fn hub_conformance() {
    let fixture = Fixture::new();
    let hub = Arc::new(fixture.hub(fixture.options()));
    let harness = HubHarness {
        fixture,
        hub,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
    let leftovers: Vec<_> = harness
        .fixture
        .files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- the library ----------------------------------------------------------------------------

#[tokio::test]
async fn recipients_list_and_fetch_their_own_documents_only() {
    let fixture = Fixture::new();
    let hub = fixture.hub(fixture.options());
    let ann = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let bob = hub
        .deliver(&report_delivery(recipient("bob")))
        .await
        .unwrap();

    let listed = hub.list("ann").await.unwrap();
    let mut names: Vec<&str> = listed.iter().map(|e| e.file_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Umsatz Zürich.html", "Umsatz Zürich.pdf"]);
    let pdf = listed
        .iter()
        .find(|e| e.file_name.ends_with(".pdf"))
        .unwrap();
    assert_eq!(pdf.recipient, "ann");
    assert_eq!(pdf.report, support::SUBJECT);
    assert_eq!(pdf.run_id, "run-1");
    assert_eq!(pdf.media_type, "application/pdf");
    assert_eq!(pdf.size, pdf_bytes().len() as u64);
    assert_eq!(pdf.sha256, sha256_hex(&pdf_bytes()));
    assert_eq!(pdf.created, fixture.clock.now());
    assert_eq!(
        pdf.expires,
        fixture.clock.now() + Duration::from_secs(2 * DAY)
    );
    assert!(
        ann.locations
            .iter()
            .any(|l| l == &format!("hub:{}", pdf.id))
    );

    assert_eq!(hub.fetch("ann", &pdf.id).await.unwrap(), pdf_bytes());
    assert_eq!(fs::read(fixture.file_of(&pdf.id)).unwrap(), pdf_bytes());

    let bobs = id_of(&bob.locations[1]).to_string();
    let err = hub.fetch("ann", &bobs).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.backend(), Some("hub"));
    for unknown in ["0123456789abcdef0123456789abcdef", "../../etc/passwd", ""] {
        let err = hub.fetch("ann", unknown).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{unknown}: {err}");
    }
    assert!(hub.list("nobody").await.unwrap().is_empty());
    assert_eq!(fixture.rows().len(), 4);
}

#[tokio::test]
async fn documents_are_purged_after_their_retention() {
    let fixture = Fixture::new();
    let hub = fixture.hub(fixture.options());
    let receipt = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let pdf = id_of(&receipt.locations[1]).to_string();
    fixture.clock.advance(DAY);
    hub.deliver(&report_delivery_in_run(recipient("ann"), "run-2"))
        .await
        .unwrap();

    assert_eq!(hub.purge_expired(fixture.clock.now()).await.unwrap(), 0);
    assert_eq!(hub.list("ann").await.unwrap().len(), 4);

    fixture.clock.advance(DAY);
    assert_eq!(hub.purge_expired(fixture.clock.now()).await.unwrap(), 2);
    let left = hub.list("ann").await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|e| e.run_id == "run-2"));
    assert_eq!(fixture.rows().len(), 2);
    assert_eq!(fixture.files().len(), 2, "the purged bytes are gone too");
    assert!(!fixture.file_of(&pdf).exists());
    let err = hub.fetch("ann", &pdf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    fixture.clock.advance(DAY);
    assert!(
        hub.list("ann").await.unwrap().is_empty(),
        "expired, not yet purged"
    );
    assert_eq!(hub.purge_expired(fixture.clock.now()).await.unwrap(), 2);
    assert!(fixture.rows().is_empty());
    assert!(fixture.files().is_empty());
}

#[tokio::test]
async fn deliveries_purge_expired_documents_at_most_once_an_hour() {
    let fixture = Fixture::new();
    let hub = fixture.hub(fixture.options());
    let first = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let expired = id_of(&first.locations[1]).to_string();

    fixture.clock.advance(2 * DAY);
    hub.deliver(&report_delivery_in_run(recipient("bob"), "run-2"))
        .await
        .unwrap();

    let rows = fixture.rows();
    assert_eq!(rows.len(), 2, "only bob's documents are left: {rows:?}");
    assert!(rows.iter().all(|row| row.1 == "bob"));
    assert_eq!(fixture.files().len(), 2, "the expired bytes are gone too");
    assert!(!fixture.file_of(&expired).exists());

    // Bob's documents expire two days after they came. A delivery half an hour before that
    // purges (nothing); the next, as they expire, is within the hour and leaves them; the one
    // after the hour is up removes them.
    fixture.clock.advance(2 * DAY - 30 * 60);
    hub.deliver(&report_delivery_in_run(recipient("cy"), "run-3"))
        .await
        .unwrap();
    fixture.clock.advance(30 * 60);
    hub.deliver(&report_delivery_in_run(recipient("cy"), "run-4"))
        .await
        .unwrap();
    assert_eq!(fixture.rows().len(), 6, "no purge within the hour");
    assert!(
        hub.list("bob").await.unwrap().is_empty(),
        "expired, not listed"
    );

    fixture.clock.advance(30 * 60);
    hub.deliver(&report_delivery_in_run(recipient("cy"), "run-5"))
        .await
        .unwrap();
    let rows = fixture.rows();
    assert_eq!(
        rows.len(),
        6,
        "bob's purged, cy's three runs kept: {rows:?}"
    );
    assert!(rows.iter().all(|row| row.1 == "cy"));
    assert_eq!(fixture.files().len(), 6);
}

fn report_delivery_in_run(r: mad_core::Recipient, run: &str) -> Delivery {
    let mut d = report_delivery(r);
    d.run_id = run.to_string();
    d
}

#[tokio::test]
async fn links_are_stable_and_use_the_link_base() {
    let fixture = Fixture::new();
    let hub = fixture.hub(
        fixture
            .options()
            .with_link_base("https://reports.example.com/hub/"),
    );
    let d = report_delivery(recipient("ann"));

    let first = hub.deliver(&d).await.unwrap();
    let again = hub.deliver(&d).await.unwrap();

    assert_eq!(first, again, "the same delivery keeps its entries");
    let entries = hub.list("ann").await.unwrap();
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        let link = hub.link(&entry.id).unwrap();
        assert_eq!(
            link,
            format!("https://reports.example.com/hub/{}", entry.id)
        );
        assert!(first.locations.contains(&link));
    }
    let plain = fixture.hub(fixture.options());
    assert_eq!(plain.link(&entries[0].id), None);
}

// ---- interruptions --------------------------------------------------------------------------

#[tokio::test]
async fn confirm_finds_only_complete_stores() {
    let fixture = Fixture::new();
    let hub = fixture.hub(fixture.options());
    let d = report_delivery(recipient("ann"));

    assert_eq!(hub.confirm(&d).await.unwrap(), None);
    let receipt = hub.deliver(&d).await.unwrap();
    assert_eq!(hub.confirm(&d).await.unwrap(), Some(receipt.clone()));

    // A crash after the bytes and before the row: not complete.
    let pdf = id_of(&receipt.locations[1]).to_string();
    fixture.delete_row(&pdf);
    assert_eq!(hub.confirm(&d).await.unwrap(), None);
    assert!(hub.fetch("ann", &pdf).await.is_err());

    // Delivering again completes it, once.
    assert_eq!(hub.deliver(&d).await.unwrap(), receipt);
    assert_eq!(hub.confirm(&d).await.unwrap(), Some(receipt));
    assert_eq!(fixture.rows().len(), 2);
    assert_eq!(fixture.files().len(), 2);

    // Bytes lost behind the hub's back: not complete either.
    fs::remove_file(fixture.file_of(&pdf)).unwrap();
    assert_eq!(hub.confirm(&d).await.unwrap(), None);
    let err = hub.fetch("ann", &pdf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn damaged_bytes_are_not_served() {
    let fixture = Fixture::new();
    let hub = fixture.hub(fixture.options());
    let receipt = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let pdf = id_of(&receipt.locations[1]).to_string();
    let mut bytes = pdf_bytes();
    bytes[100] ^= 0xff;
    fs::write(fixture.file_of(&pdf), bytes).unwrap();

    let err = hub.fetch("ann", &pdf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn orphan_bytes_are_swept_once_old_enough() {
    let fixture = Fixture::new();
    {
        let hub = fixture.hub(fixture.options());
        let receipt = hub
            .deliver(&report_delivery(recipient("ann")))
            .await
            .unwrap();
        // As if the process died between writing bytes and their row.
        fixture.delete_row(id_of(&receipt.locations[0]));
    }
    let temp = fixture.root().join("ab").join(".mad-0123456789abcdef.tmp");
    fs::create_dir_all(temp.parent().unwrap()).unwrap();
    fs::write(&temp, "half a document").unwrap();
    let unrelated = fixture.root().join("notes.txt");
    fs::write(&unrelated, "not the hub's").unwrap();
    assert_eq!(fixture.files().len(), 4);

    // Within the grace time another process may still write the row: kept.
    let hub = fixture.hub(fixture.options());
    assert_eq!(hub.sweep_orphans().await.unwrap(), 0);
    assert_eq!(fixture.files().len(), 4);

    // Later the orphan and the temporary file go; the indexed document and strangers stay.
    fixture
        .clock
        .0
        .store(now_secs() + 2 * 60 * 60, Ordering::SeqCst);
    assert_eq!(hub.sweep_orphans().await.unwrap(), 1);
    let files = fixture.files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(unrelated.exists());
    assert!(!temp.exists());
    let kept = &fixture.rows()[0].0;
    assert!(fixture.file_of(kept).exists());
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---- options --------------------------------------------------------------------------------

#[test]
fn inconsistent_options_are_refused() {
    let fixture = Fixture::new();
    let s3 = || mad_deliver::s3::S3Options::new("hub");
    let cases = [
        fixture.options().with_retention_days(0),
        HubOptions {
            store: Some(mad_deliver::hub::HubStore::S3(s3())),
            ..fixture.options()
        },
        HubOptions {
            root: None,
            ..fixture.options()
        },
        HubOptions::with_s3(fixture.index(), s3().with_prefix("hub/{recipient.id}")),
    ];
    for options in cases {
        let err = Hub::open(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
    }
}

#[test]
fn definitions_resolve_against_the_output_folder() {
    let fixture = Fixture::new();
    let out = fixture.dir.path().join("out");
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let ctx = BuildContext {
        base_dir: fixture.dir.path().join("defs"),
        output_dir: Some(out.clone()),
    };
    let options = serde_json::json!({
        "index": "hub.sqlite",
        "root": "library",
        "retention_days": 7,
        "hub_link_base": "https://reports.example.com/hub",
    });

    registry.build_channel("hub", &options, &ctx).unwrap();

    assert!(out.join("hub.sqlite").exists());
    assert!(out.join("library").is_dir());
    let mut typo = options.clone();
    typo["retention"] = 7.into();
    let err = registry.build_channel("hub", &typo, &ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

// ---- through the engine ---------------------------------------------------------------------

#[derive(Debug)]
struct FixedRenderer(OutputFormat, Vec<u8>);

impl Renderer for FixedRenderer {
    fn format(&self) -> OutputFormat {
        self.0
    }

    fn render(&self, _job: &RenderJob<'_>) -> mad_core::Result<Vec<u8>> {
        Ok(self.1.clone())
    }
}

fn task(channel: Arc<dyn Channel>, ids: &[&str]) -> Task {
    let schema = Schema::new(vec![Field::new("Region", FieldKind::Text)]);
    let mut region = ColumnBuilder::default();
    region.push(Value::text("Zürich"));
    let table = Table::new(schema, vec![region.finish()]).unwrap();
    let mut report = ReportDef::new("Umsatz", "Umsatz für {recipient.name}");
    report.formats = vec![OutputFormat::Pdf];
    report.file_name = "Umsatz {recipient.id}".to_string();
    let mut task = Task::new("monthly", Arc::new(TableSource::new("memory", table)))
        .with_report(report)
        .with_recipients(ids.iter().map(|id| recipient(id)))
        .with_renderer(Arc::new(FixedRenderer(OutputFormat::Pdf, pdf_bytes())))
        .with_on_empty(OnEmpty::Skip);
    task.channels = vec![TaskChannel::new(channel)];
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_stores_one_copy_per_recipient_and_resumes_without_duplicates() {
    let fixture = Fixture::new();
    let hub = Arc::new(fixture.hub(fixture.options()));
    let log = Arc::new(MemoryRunLog::new());
    let run = RunInfo::at("run-9", START as f64);
    let t = task(hub.clone(), &["ann", "bob", "cyd"]);

    // An earlier process stored ann's copy and died before recording it.
    log.start_run(&run, &t.name).await.unwrap();
    log.begin(&DeliveryKey {
        run_id: run.id.clone(),
        recipient: "ann".into(),
        report: "Umsatz".into(),
        channel: "hub".into(),
    })
    .await
    .unwrap();
    let mut earlier = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "Umsatz ann.pdf", pdf_bytes())],
    );
    earlier.run_id = run.id.clone();
    earlier.report = t.reports[0].clone();
    hub.deliver(&earlier).await.unwrap();
    let ann_before = hub.list("ann").await.unwrap();

    let summary = Engine::new(EngineOptions::default())
        .with_run_log(log)
        .run_as(&t, run)
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    assert_eq!(summary.counts.resumed, 1, "{}", summary.human());
    assert_eq!(
        hub.list("ann").await.unwrap(),
        ann_before,
        "ann's copy kept, not redone"
    );
    for id in ["ann", "bob", "cyd"] {
        let entries = hub.list(id).await.unwrap();
        assert_eq!(entries.len(), 1, "{id}");
        assert_eq!(entries[0].file_name, format!("Umsatz {id}.pdf"));
        assert_eq!(hub.fetch(id, &entries[0].id).await.unwrap(), pdf_bytes());
        let other = if id == "ann" { "bob" } else { "ann" };
        assert_eq!(
            hub.fetch(other, &entries[0].id).await.unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }
    assert_eq!(fixture.rows().len(), 3);
    assert_eq!(fixture.files().len(), 3);
}

// ---- in a bucket ----------------------------------------------------------------------------

#[tokio::test]
async fn a_hub_in_a_bucket_stores_fetches_purges_and_sweeps() {
    let server = S3Server::start(&["hub"]);
    let fixture = Fixture::new();
    let options = HubOptions::with_s3(
        fixture.index(),
        server.options("hub").with_prefix("library"),
    )
    .with_retention_days(1);
    let hub = fixture.hub(options);

    let receipt = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let pdf = id_of(&receipt.locations[1]).to_string();

    let objects = server.objects("hub");
    assert_eq!(objects.len(), 2);
    let stored = objects.iter().find(|o| o.key.ends_with(&pdf)).unwrap();
    assert_eq!(stored.key, format!("library/{}/{pdf}", &pdf[..2]));
    assert_eq!(stored.bytes, pdf_bytes());
    assert_eq!(hub.fetch("ann", &pdf).await.unwrap(), pdf_bytes());
    assert_eq!(
        hub.fetch("bob", &pdf).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    let d = report_delivery(recipient("ann"));
    assert_eq!(hub.confirm(&d).await.unwrap(), Some(receipt));

    // An orphan (bytes whose row never got written), dated now by the server.
    let orphan = "ab0123456789abcdef0123456789abcd";
    let uploader = S3Channel::new(server.options("hub").with_prefix("library/ab")).unwrap();
    uploader
        .deliver(&delivery(
            recipient("x"),
            vec![document(OutputFormat::Pdf, orphan, b"orphan".to_vec())],
        ))
        .await
        .unwrap();
    assert_eq!(server.objects("hub").len(), 3);
    assert_eq!(hub.sweep_orphans().await.unwrap(), 0, "too young to sweep");

    fixture
        .clock
        .0
        .store(now_secs() + 2 * DAY, Ordering::SeqCst);
    assert_eq!(hub.sweep_orphans().await.unwrap(), 1);
    assert_eq!(hub.purge_expired(fixture.clock.now()).await.unwrap(), 2);
    assert!(server.objects("hub").is_empty());
    assert!(fixture.rows().is_empty());
    let shown = format!("{hub:?}");
    assert!(
        !shown.contains(&server.secret) && !shown.contains(&server.key_id),
        "{shown}"
    );
}

#[tokio::test]
async fn a_hub_in_a_bucket_with_wrong_credentials_stores_and_indexes_nothing() {
    let server = S3Server::start(&["hub"]);
    let fixture = Fixture::new();
    let wrong = throwaway("wrong-secret");
    let options = HubOptions::with_s3(
        fixture.index(),
        server
            .options_with("hub", &server.key_id, &wrong)
            .with_prefix("library"),
    );
    let hub = fixture.hub(options);
    let d = report_delivery(recipient("ann"));

    let err = hub.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(err.to_string().contains("access_key_id"), "{err}");
    let shown = format!("{err} {err:?} {hub:?}");
    for hidden in [&wrong, &server.secret] {
        assert!(!shown.contains(hidden.as_str()), "{shown}");
    }
    assert!(fixture.rows().is_empty(), "nothing indexed");
    assert!(server.objects("hub").is_empty());
    assert!(hub.list("ann").await.unwrap().is_empty());
    assert_eq!(
        hub.confirm(&d).await.unwrap(),
        None,
        "not taken as delivered"
    );

    // The same hub with the right credentials stores the delivery.
    let right = fixture.hub(HubOptions::with_s3(
        fixture.index(),
        server.options("hub").with_prefix("library"),
    ));
    right.deliver(&d).await.unwrap();
    assert_eq!(fixture.rows().len(), 2);
    assert_eq!(server.objects("hub").len(), 2);
}

#[tokio::test]
async fn a_hub_in_a_bucket_whose_connection_drops_indexes_nothing() {
    let server = S3Server::start(&["hub"]);
    let fixture = Fixture::new();
    let hub = fixture.hub(HubOptions::with_s3(
        fixture.index(),
        server.options("hub").with_prefix("library"),
    ));
    let d = report_delivery(recipient("ann"));

    // The first document's upload goes through, the second is cut off halfway.
    server.drop_uploads(1, 1);
    let err = hub.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(server.stats().1, 1, "the server cut one upload off");
    assert!(fixture.rows().is_empty(), "nothing indexed as delivered");
    assert!(
        server.objects("hub").is_empty(),
        "the first document is rolled back"
    );
    assert!(hub.list("ann").await.unwrap().is_empty());
    assert_eq!(hub.confirm(&d).await.unwrap(), None);

    // Trying again stores both, whole.
    let receipt = hub.deliver(&d).await.unwrap();
    assert_eq!(fixture.rows().len(), 2);
    let pdf = id_of(&receipt.locations[1]);
    assert_eq!(hub.fetch("ann", pdf).await.unwrap(), pdf_bytes());
}
