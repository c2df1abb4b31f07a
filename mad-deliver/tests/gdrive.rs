//! The Google Drive channel against a local double of the Drive API and Google's token
//! endpoint, with every upload read back from the double's store.

mod conformance;
mod doubles;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mad_core::{Channel, ErrorKind, OutputFormat, TaskChannel};
use mad_deliver::gdrive::{GdriveChannel, GdriveOptions, IfExists};
use serde_json::json;

use conformance::{ArrivalLog, Arrived, Harness};
use doubles::gdrive::{CHUNK_UNIT, FOLDER, Fixture};
use doubles::{Fault, engine};
use support::{delivery, document, pdf, pdf_bytes, recipient, secret_file, throwaway};

fn large(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 17 + i / 263) as u8).collect()
}

struct GdriveHarness {
    fixture: Fixture,
    channel: Arc<GdriveChannel>,
    log: ArrivalLog,
}

impl Harness for GdriveHarness {
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
                (
                    f.id.clone(),
                    Arrived {
                        name: f.name,
                        bytes: f.bytes,
                    },
                )
            })
            .collect();
        self.log.update(current)
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.fixture.secret.clone(), self.fixture.refresh.clone()];
        secrets.extend(self.fixture.double.state.auth.issued());
        secrets
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdrive_conformance() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let harness = GdriveHarness {
        fixture,
        channel,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_create_a_new_shared_folder_once() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options().with_subfolder("monthly/{run.date}"));
    let deliveries: Vec<_> = (0..16)
        .map(|i| delivery(recipient(&format!("r{i}")), pdf(&format!("r{i}.pdf"))))
        .collect();

    let results = futures::future::join_all(deliveries.iter().map(|d| channel.deliver(d))).await;

    for result in results {
        result.unwrap();
    }
    for name in ["monthly", "2026-01-31"] {
        let named: Vec<_> = fixture
            .double
            .folders()
            .into_iter()
            .filter(|f| f.name == name)
            .collect();
        assert_eq!(named.len(), 1, "one folder {name}: {named:?}");
    }
    for i in 0..16 {
        fixture.only(&format!("Reports/monthly/2026-01-31/r{i}.pdf"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_lands_in_a_created_subfolder() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());

    let receipt = channel
        .deliver(&delivery(recipient("ann"), pdf("O'Brien Zürich.pdf")))
        .await
        .unwrap();
    channel
        .deliver(&delivery(recipient("ann"), pdf("second.pdf")))
        .await
        .unwrap();

    let file = fixture.only("Reports/ann/O'Brien Zürich.pdf");
    assert_eq!(file.bytes, pdf_bytes());
    assert_eq!(file.mime_type, "application/pdf");
    assert_eq!(
        receipt.locations,
        [format!("gdrive:file/{}/O'Brien Zürich.pdf", file.id)]
    );
    assert_eq!(
        fixture.double.calls("create"),
        1,
        "the folder is created once"
    );
    assert_eq!(fixture.double.calls("token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_through_a_resumable_upload() {
    let fixture = Fixture::start();
    let chunk = 4 * CHUNK_UNIT;
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(1024 * 1024)
            .with_chunk_size(chunk),
    );
    let bytes = large(3 * 1024 * 1024 + 999);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    let file = fixture.only("Reports/ann/big.pdf");
    assert!(file.bytes == bytes, "the bytes arrive unchanged");
    let chunks = fixture.double.state.chunks.lock().unwrap().clone();
    assert_eq!(chunks.len(), bytes.len().div_ceil(chunk as usize));
    assert!(
        chunks[..chunks.len() - 1].iter().all(|c| *c == chunk),
        "{chunks:?}"
    );
    assert_eq!(fixture.double.calls("multipart"), 0);
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_exists_fail_replace_and_rename() {
    let fixture = Fixture::start();
    let d = delivery(recipient("ann"), pdf("r.pdf"));
    fixture
        .channel(fixture.options())
        .deliver(&d)
        .await
        .unwrap();

    let err = fixture
        .channel(fixture.options())
        .deliver(&d)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    let receipt = fixture
        .channel(fixture.options().with_if_exists(IfExists::Rename))
        .deliver(&d)
        .await
        .unwrap();
    assert!(receipt.locations[0].ends_with("/r (2).pdf"), "{receipt:?}");

    let changed = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", "new")],
    );
    let replace = fixture.channel(fixture.options().with_if_exists(IfExists::Replace));
    replace.deliver(&changed).await.unwrap();
    assert_eq!(
        fixture.only("Reports/ann/r.pdf").bytes,
        b"new",
        "the same file, new content"
    );

    let big = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", large(600_000))],
    );
    let resumable = fixture.channel(
        fixture
            .options()
            .with_if_exists(IfExists::Replace)
            .with_simple_upload_max(0)
            .with_chunk_size(CHUNK_UNIT),
    );
    resumable.deliver(&big).await.unwrap();
    assert!(fixture.only("Reports/ann/r.pdf").bytes == large(600_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_unauthenticated_and_hidden() {
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let channel = fixture.channel(fixture.options_with_secret(&wrong));

    let err = channel
        .deliver(&delivery(recipient("ann"), pdf("r.pdf")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("gdrive"));
    for text in [err.to_string(), format!("{err:?}"), format!("{channel:?}")] {
        for secret in [&wrong, &fixture.secret, &fixture.refresh] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    }
    assert!(fixture.double.files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_sign_in_and_delivers_the_rest() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());

    engine::run_with_one_refused_sign_in(
        &fixture.double.state.auth,
        channel,
        &["ann", "bob", "cyd"],
    )
    .await;

    assert_eq!(fixture.double.files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_once() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    channel
        .deliver(&delivery(recipient("ann"), pdf("r.pdf")))
        .await
        .unwrap();

    fixture.double.state.auth.expire_tokens();
    channel
        .deliver(&delivery(recipient("bob"), pdf("r.pdf")))
        .await
        .unwrap();

    assert_eq!(fixture.double.calls("token"), 2);
    assert_eq!(
        fixture
            .double
            .state
            .auth
            .rejected_tokens
            .load(Ordering::SeqCst),
        1
    );
    fixture.only("Reports/bob/r.pdf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_sent_as_403_are_honoured_through_the_engine() {
    let fixture = Fixture::start();
    fixture.double.fault(
        "multipart",
        Fault::Refuse {
            status: 403,
            retry_after: Some(1),
            body: json!({"error": {"code": 403, "message": "User Rate Limit Exceeded", "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}]}}),
        },
    );
    let channel = fixture.channel(fixture.options());
    let task = engine::task(
        vec![TaskChannel::new(channel)],
        &["ann"],
        OutputFormat::Pdf,
        pdf_bytes(),
    );

    let started = Instant::now();
    let summary = engine::run(&engine::engine(), &task).await;

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(fixture.double.calls("multipart"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_chunk_is_resumed_from_the_range() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(2 * CHUNK_UNIT),
    );
    fixture.double.fault("chunk", Fault::Pass);
    fixture.double.fault("chunk", Fault::DropAfter(100_000));
    let bytes = large(2 * 1024 * 1024);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    assert!(fixture.only("Reports/ann/big.pdf").bytes == bytes);
    // four chunks, one dropped and sent again, and one status query.
    assert_eq!(fixture.double.calls("chunk"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_dropping_leaves_no_file() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(CHUNK_UNIT),
    );
    for _ in 0..20 {
        fixture.double.fault("chunk", Fault::DropAfter(1000));
    }
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Csv, "first.csv", "x"),
            document(OutputFormat::Pdf, "big.pdf", large(700_000)),
        ],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        fixture.double.files().is_empty(),
        "nothing committed, the first file removed"
    );
    assert_eq!(fixture.double.open_sessions(), 0, "the upload is cancelled");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("upload_id"),
            "the session address stays out of errors: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_tells_an_interrupted_upload_apart() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(recipient("ann"), pdf("r.pdf"));

    assert_eq!(channel.confirm(&d).await.unwrap(), None);
    fixture.double.fault("multipart", Fault::DropAfter(100));
    assert!(channel.deliver(&d).await.is_err());
    assert_eq!(channel.confirm(&d).await.unwrap(), None);

    fixture.double.fault("multipart", Fault::LoseAnswer);
    assert!(channel.deliver(&d).await.is_err());
    let receipt = channel
        .confirm(&d)
        .await
        .unwrap()
        .expect("the file is there");
    let file = fixture.only("Reports/ann/r.pdf");
    assert_eq!(
        receipt.locations,
        [format!("gdrive:file/{}/r.pdf", file.id)]
    );
}

#[test]
fn options_are_checked_when_the_channel_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "s");
    let base = || GdriveOptions::new("c", secret.clone(), secret.clone(), FOLDER);
    for options in [
        GdriveOptions::new("c", secret.clone(), secret.clone(), "a/b"),
        GdriveOptions::new("c", secret.clone(), secret.clone(), ""),
        base().with_chunk_size(100_000),
        base().with_upload_url("http://www.example.com/upload"),
        base().with_subfolder("{recipient.id}/../x"),
    ] {
        let err = GdriveChannel::new(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
        assert_eq!(err.backend(), Some("gdrive"));
    }
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
        fixture.only(&format!("Reports/{sub}/Same Name.csv")).bytes
    })
    .await;
}
