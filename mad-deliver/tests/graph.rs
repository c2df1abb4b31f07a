//! The Microsoft Graph channel against a local double of Graph and its token endpoint, with
//! every upload read back from the double's store.

mod conformance;
mod doubles;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mad_core::{
    BuildContext, Channel, DeliveryKey, ErrorKind, MemoryRunLog, OutputFormat, Registry, RunLog,
    TaskChannel,
};
use mad_deliver::graph::{GraphChannel, GraphOptions, IfExists};
use serde_json::json;

use conformance::{ArrivalLog, Arrived, Harness};
use doubles::graph::{DRIVE, FRAGMENT_UNIT, Fixture, TENANT};
use doubles::{Fault, engine};
use support::{delivery, document, pdf_bytes, recipient, secret_file, throwaway};

/// A double and the throwaway credentials it accepts.
/// Bytes that differ at every position, so a misplaced chunk shows.
fn large(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct GraphHarness {
    fixture: Fixture,
    channel: Arc<GraphChannel>,
    log: ArrivalLog,
}

impl Harness for GraphHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let current = self
            .fixture
            .double
            .files()
            .into_iter()
            .map(|f| {
                let name = f.path.rsplit('/').next().unwrap().to_string();
                (
                    f.id.clone(),
                    Arrived {
                        name,
                        bytes: f.bytes,
                    },
                )
            })
            .collect();
        self.log.update(current)
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.fixture.secret.clone()];
        secrets.extend(self.fixture.double.state.auth.issued());
        secrets
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_conformance() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let harness = GraphHarness {
        fixture,
        channel,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
    assert_eq!(harness.fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_lands_in_the_folder_with_one_token() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(
        recipient("ann"),
        vec![document(
            OutputFormat::Pdf,
            "Umsatz Zürich.pdf",
            pdf_bytes(),
        )],
    );

    let receipt = channel.deliver(&d).await.unwrap();
    channel
        .deliver(&delivery(
            recipient("bob"),
            d.documents.iter().map(|d| (**d).clone()).collect(),
        ))
        .await
        .unwrap();

    let file = fixture
        .double
        .file("Reports/ann/Umsatz Zürich.pdf")
        .expect("the file");
    assert_eq!(file.bytes, pdf_bytes());
    assert_eq!(
        receipt.locations,
        [format!(
            "graph:drives/{DRIVE}/root:/Reports/ann/Umsatz Zürich.pdf"
        )]
    );
    assert_eq!(receipt.bytes, pdf_bytes().len() as u64);
    assert_eq!(fixture.double.calls("token"), 1, "the token is cached");
    assert_eq!(fixture.double.calls("create_session"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_through_an_upload_session() {
    let fixture = Fixture::start();
    let chunk = 3 * FRAGMENT_UNIT;
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(1024 * 1024)
            .with_chunk_size(chunk),
    );
    let bytes = large(5 * 1024 * 1024 + 12_345);
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
    );

    channel.deliver(&d).await.unwrap();

    let file = fixture
        .double
        .file("Reports/ann/big.pdf")
        .expect("the file");
    assert!(file.bytes == bytes, "the bytes arrive unchanged");
    let fragments = fixture.double.state.fragments.lock().unwrap().clone();
    assert_eq!(fragments.len(), bytes.len().div_ceil(chunk as usize));
    let (last, whole) = fragments.split_last().unwrap();
    assert!(whole.iter().all(|f| *f == chunk), "{fragments:?}");
    assert_eq!(*last + whole.iter().sum::<u64>(), bytes.len() as u64);
    assert_eq!(fixture.double.calls("content"), 0);
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_exists_fail_replace_and_rename() {
    let fixture = Fixture::start();
    fixture.double.put_file("Reports/ann/report.pdf", b"old");
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "report.pdf", pdf_bytes())],
    );

    let fail = fixture.channel(fixture.options());
    let err = fail.deliver(&d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("if_exists"), "{err}");
    assert_eq!(
        fixture.double.file("Reports/ann/report.pdf").unwrap().bytes,
        b"old"
    );

    let rename = fixture.channel(fixture.options().with_if_exists(IfExists::Rename));
    let receipt = rename.deliver(&d).await.unwrap();
    assert!(
        receipt.locations[0].ends_with("Reports/ann/report 1.pdf"),
        "{receipt:?}"
    );
    assert_eq!(
        fixture.double.file("Reports/ann/report.pdf").unwrap().bytes,
        b"old"
    );

    let replace = fixture.channel(fixture.options().with_if_exists(IfExists::Replace));
    replace.deliver(&d).await.unwrap();
    assert_eq!(
        fixture.double.file("Reports/ann/report.pdf").unwrap().bytes,
        pdf_bytes()
    );

    // Large files follow the same rules through upload sessions.
    let big = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "report.pdf", large(700_000))],
    );
    let session_fail = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(1000)
            .with_chunk_size(FRAGMENT_UNIT),
    );
    let err = session_fail.deliver(&big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_unauthenticated_and_hidden() {
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let channel = fixture.channel(fixture.options_with_secret(&wrong));
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", pdf_bytes())],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("graph"));
    assert!(err.to_string().contains("client_secret"), "{err}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    for text in [err.to_string(), format!("{err:?}"), format!("{channel:?}")] {
        assert!(!text.contains(&wrong), "{text}");
        assert!(!text.contains(&fixture.secret), "{text}");
    }
    assert!(fixture.double.files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_sign_in_and_delivers_the_rest() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());

    let summary = engine::run_with_one_refused_sign_in(
        &fixture.double.state.auth,
        channel,
        &["ann", "bob", "cyd", "dan"],
    )
    .await;

    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    let files = fixture.double.files();
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f.bytes == pdf_bytes()));
    assert!(!summary.to_json().contains(&fixture.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_once() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let doc = || vec![document(OutputFormat::Pdf, "r.pdf", pdf_bytes())];
    channel
        .deliver(&delivery(recipient("ann"), doc()))
        .await
        .unwrap();
    let old = fixture.double.state.auth.issued();

    fixture.double.state.auth.expire_tokens();
    channel
        .deliver(&delivery(recipient("bob"), doc()))
        .await
        .unwrap();

    assert_eq!(fixture.double.calls("token"), 2, "one new token");
    assert_eq!(
        fixture
            .double
            .state
            .auth
            .rejected_tokens
            .load(Ordering::SeqCst),
        1
    );
    assert_ne!(fixture.double.state.auth.issued(), old);
    assert!(fixture.double.file("Reports/bob/r.pdf").is_some());

    // A token the server keeps refusing is an error after one renewal, not a loop.
    fixture.double.fault(
        "content",
        Fault::Refuse { status: 401, retry_after: None, body: json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}}) },
    );
    fixture.double.fault(
        "content",
        Fault::Refuse { status: 401, retry_after: None, body: json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}}) },
    );
    let err = channel
        .deliver(&delivery(recipient("cyd"), doc()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(fixture.double.calls("token"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_honoured_through_the_engine() {
    let fixture = Fixture::start();
    fixture.double.fault(
        "content",
        Fault::Refuse {
            status: 429,
            retry_after: Some(1),
            body: json!({"error": {"code": "activityLimitReached", "message": "The request has been throttled"}}),
        },
    );
    let channel = fixture.channel(fixture.options());

    let err = channel
        .deliver(&delivery(
            recipient("zed"),
            vec![document(OutputFormat::Pdf, "r.pdf", pdf_bytes())],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)), "{err:?}");

    fixture.double.fault(
        "content",
        Fault::Refuse {
            status: 429,
            retry_after: Some(1),
            body: json!({"error": {"code": "activityLimitReached", "message": "The request has been throttled"}}),
        },
    );
    let task = engine::task(
        vec![TaskChannel::new(channel)],
        &["ann"],
        OutputFormat::Pdf,
        pdf_bytes(),
    );
    let started = Instant::now();
    let summary = engine::run(&engine::engine(), &task).await;

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert!(fixture.double.file("Reports/ann/Umsatz ann.pdf").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_fragment_is_resumed() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(2 * FRAGMENT_UNIT),
    );
    fixture.double.fault("fragment", Fault::Pass);
    fixture.double.fault("fragment", Fault::DropAfter(100_000));
    let bytes = large(3 * 1024 * 1024);
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
    );

    channel.deliver(&d).await.unwrap();

    assert!(fixture.double.file("Reports/ann/big.pdf").unwrap().bytes == bytes);
    assert_eq!(
        fixture.double.calls("session_status"),
        1,
        "asked where to resume"
    );
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_fragment_is_sent_again_in_the_same_session() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(4 * FRAGMENT_UNIT),
    );
    fixture.double.fault("fragment", Fault::Pass);
    fixture.double.fault(
        "fragment",
        Fault::Refuse {
            status: 429,
            retry_after: Some(1),
            body: json!({"error": {"code": "activityLimitReached", "message": "The request has been throttled"}}),
        },
    );
    let bytes = large(3 * 1024 * 1024);
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
    );
    let started = Instant::now();

    channel.deliver(&d).await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited as asked"
    );
    assert!(fixture.double.file("Reports/ann/big.pdf").unwrap().bytes == bytes);
    assert_eq!(fixture.double.calls("create_session"), 1, "no new session");
    assert_eq!(fixture.double.calls("cancel_session"), 0);
    assert_eq!(
        fixture.double.calls("fragment"),
        3 + 1,
        "three fragments, one twice"
    );
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_dropping_leaves_no_file() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(FRAGMENT_UNIT),
    );
    for _ in 0..10 {
        fixture.double.fault("fragment", Fault::DropAfter(1000));
    }
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Csv, "first.csv", "a,b\n1,2\n"),
            document(OutputFormat::Pdf, "big.pdf", large(1_000_000)),
        ],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        fixture.double.files().is_empty(),
        "the first file is removed again, the second never committed"
    );
    assert_eq!(
        fixture.double.open_sessions(),
        0,
        "the session is cancelled"
    );
    assert_eq!(fixture.double.calls("cancel_session"), 1);
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("tempauth"),
            "the upload URL stays out of errors: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_after_the_last_fragment_still_completes() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(FRAGMENT_UNIT),
    );
    fixture.double.fault("fragment", Fault::Pass);
    fixture.double.fault("fragment", Fault::LoseAnswer);
    let bytes = large(500_000);
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
    );

    let receipt = channel.deliver(&d).await.unwrap();

    assert_eq!(fixture.double.files().len(), 1);
    assert!(receipt.locations[0].ends_with("Reports/ann/big.pdf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_tells_an_interrupted_upload_apart() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", pdf_bytes())],
    );

    assert_eq!(
        channel.confirm(&d).await.unwrap(),
        None,
        "nothing there yet"
    );

    // The connection drops mid-upload: nothing is committed, so confirm says "not delivered".
    fixture.double.fault("content", Fault::DropAfter(100));
    assert!(channel.deliver(&d).await.is_err());
    assert_eq!(channel.confirm(&d).await.unwrap(), None);

    // The upload completes but its answer is lost: confirm finds the file.
    fixture.double.fault("content", Fault::LoseAnswer);
    assert!(channel.deliver(&d).await.is_err());
    let receipt = channel
        .confirm(&d)
        .await
        .unwrap()
        .expect("the file is there");
    assert_eq!(
        receipt.locations,
        [format!("graph:drives/{DRIVE}/root:/Reports/ann/r.pdf")]
    );

    // A file of another size at that name is not this delivery.
    fixture.double.put_file("Reports/ann/r.pdf", b"short");
    assert_eq!(channel.confirm(&d).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_does_not_upload_twice() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let task = engine::task(
        vec![TaskChannel::new(channel.clone())],
        &["ann"],
        OutputFormat::Pdf,
        pdf_bytes(),
    );
    let log = Arc::new(MemoryRunLog::new());
    let key = DeliveryKey {
        run_id: "run-1".into(),
        recipient: "ann".into(),
        report: engine::REPORT.into(),
        channel: "graph".into(),
    };
    // An earlier attempt uploaded the file and died before recording it.
    log.begin(&key).await.unwrap();
    fixture
        .double
        .put_file("Reports/ann/Umsatz ann.pdf", &pdf_bytes());
    let uploads_before = fixture.double.calls("content");

    let summary = engine::run(&engine::engine().with_run_log(log), &task).await;

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(summary.counts.resumed, 1, "{}", summary.human());
    assert_eq!(
        fixture.double.calls("content"),
        uploads_before,
        "nothing uploaded again"
    );
}

#[test]
fn options_are_checked_when_the_channel_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "s");
    let base = || {
        GraphOptions::new(TENANT, "client", secret.clone())
            .with_drive_id(DRIVE)
            .with_api_url("http://127.0.0.1:1/v1.0")
            .with_authority_url("http://127.0.0.1:1")
    };
    let cases = [
        base().with_site_id("also"),
        GraphOptions::new(TENANT, "client", secret.clone()),
        base().with_chunk_size(1_000_000),
        base().with_folder("a/../b"),
        base().with_subfolder("../{recipient.id}"),
        base().with_api_url("http://graph.example.com/v1.0"),
        GraphOptions::new("bad tenant/..", "client", secret.clone()).with_drive_id(DRIVE),
    ];
    for options in cases {
        let err = GraphChannel::new(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
        assert_eq!(err.backend(), Some("graph"), "{err}");
    }
}

#[test]
fn definitions_name_the_kind_and_refuse_unknown_options() {
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("secret");
    std::fs::write(&secret_path, "s\n").unwrap();
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let options = json!({
        "tenant": TENANT,
        "client_id": "client",
        "client_secret": format!("file:{}", secret_path.display()),
        "site_id": "site-1",
        "folder": "Reports",
        "subfolder": "{recipient.id}",
        "if_exists": "rename",
        "api_url": "http://127.0.0.1:1/v1.0",
        "authority_url": "http://127.0.0.1:1",
    });
    let channel = registry
        .build_channel("graph", &options, &BuildContext::new(dir.path()))
        .unwrap();
    assert_eq!(channel.name(), "graph");

    let mut typo = options.clone();
    typo["if_exist"] = json!("replace");
    let err = registry
        .build_channel("graph", &typo, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("if_exist"), "{err}");

    let mut literal = options;
    literal["client_secret"] = json!("hunter2");
    let err = registry
        .build_channel("graph", &literal, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_recipients_never_share_a_file_in_one_run_or_its_resume() {
    let fixture = Fixture::start();
    let channel = |sub: &str, rename: bool| -> Arc<dyn Channel> {
        let if_exists = if rename {
            IfExists::Rename
        } else {
            IfExists::Replace
        };
        fixture.channel(
            fixture
                .options()
                .with_subfolder(sub)
                .with_if_exists(if_exists),
        )
    };
    support::a_shared_name_is_kept_apart(channel, |sub| {
        fixture
            .double
            .file(&format!("Reports/{sub}/Same Name.csv"))
            .unwrap()
            .bytes
    })
    .await;
}
