//! The Dropbox channel against a local double of the Dropbox API and its token endpoint, with
//! every upload read back from the double's store.

mod conformance;
mod doubles;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mad_core::{Channel, ErrorKind, OutputFormat, TaskChannel};
use mad_deliver::dropbox::{DropboxChannel, DropboxOptions, IfExists};
use serde_json::json;

use conformance::{ArrivalLog, Arrived, Harness};
use doubles::dropbox::{Fixture, dropbox_hash};
use doubles::{Fault, engine};
use support::{delivery, document, pdf, pdf_bytes, recipient, secret_file, throwaway};

const MIB: usize = 1024 * 1024;

fn large(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
}

struct DropboxHarness {
    fixture: Fixture,
    channel: Arc<DropboxChannel>,
    log: ArrivalLog,
}

impl Harness for DropboxHarness {
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
                let name = f.path_display.rsplit('/').next().unwrap().to_string();
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
        let mut secrets = vec![self.fixture.secret.clone(), self.fixture.refresh.clone()];
        secrets.extend(self.fixture.double.state.auth.issued());
        secrets
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_conformance() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let harness = DropboxHarness {
        fixture,
        channel,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_with_a_unicode_name() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());

    let receipt = channel
        .deliver(&delivery(recipient("ann"), pdf("Umsatz Zürich – 東京.pdf")))
        .await
        .unwrap();

    let file = fixture
        .double
        .file("/Reports/ann/Umsatz Zürich – 東京.pdf")
        .expect("the file");
    assert_eq!(file.bytes, pdf_bytes());
    assert_eq!(
        receipt.locations,
        ["dropbox:/Reports/ann/Umsatz Zürich – 東京.pdf"]
    );
    assert_eq!(fixture.double.calls("oauth2/token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_through_an_upload_session() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(MIB as u64)
            .with_chunk_size(4 * MIB as u64),
    );
    let bytes = large(9 * MIB + 4321);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    let file = fixture
        .double
        .file("/Reports/ann/big.pdf")
        .expect("the file");
    assert!(file.bytes == bytes, "the bytes arrive unchanged");
    assert_eq!(dropbox_hash(&file.bytes), dropbox_hash(&bytes));
    // start (empty), two appends of 4 MiB, finish with the rest.
    let chunks = fixture.double.state.chunks.lock().unwrap().clone();
    assert_eq!(chunks, [0, 4 * MIB, 4 * MIB, MIB + 4321]);
    assert_eq!(fixture.double.calls("2/files/upload"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_exists_maps_to_modes() {
    let fixture = Fixture::start();
    fixture.double.put_file("/Reports/ann/r.pdf", b"old");
    let d = delivery(recipient("ann"), pdf("r.pdf"));

    let err = fixture
        .channel(fixture.options())
        .deliver(&d)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("path/conflict/file"), "{err}");

    let receipt = fixture
        .channel(fixture.options().with_if_exists(IfExists::Rename))
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(receipt.locations, ["dropbox:/Reports/ann/r (1).pdf"]);

    fixture
        .channel(fixture.options().with_if_exists(IfExists::Replace))
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(
        fixture.double.file("/Reports/ann/r.pdf").unwrap().bytes,
        pdf_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_store_damaged_is_removed_and_not_delivered() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(MIB as u64)
            .with_chunk_size(4 * MIB as u64),
    );
    let big = large(5 * MIB);
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "r.pdf", pdf_bytes()),
            document(OutputFormat::Pdf, "big.pdf", big.clone()),
        ],
    );

    for route in ["2/files/upload_session/finish", "2/files/upload"] {
        fixture.double.fault(route, Fault::Damage);
        let err = channel.deliver(&d).await.unwrap_err();
        assert!(err.kind().is_retryable(), "{err}");
        let message = err.to_string();
        assert!(message.contains("damaged"), "{message}");
        assert!(message.contains("removed"), "{message}");
        assert!(
            fixture.double.files().is_empty(),
            "after a damaged {route}, neither the damaged file nor the one before it is left"
        );
    }

    channel.deliver(&d).await.unwrap();
    assert!(fixture.double.file("/Reports/ann/big.pdf").unwrap().bytes == big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_file_the_store_damaged_is_reported() {
    let fixture = Fixture::start();
    fixture.double.put_file("/Reports/ann/r.pdf", b"old");
    let channel = fixture.channel(fixture.options().with_if_exists(IfExists::Replace));
    let d = delivery(recipient("ann"), pdf("r.pdf"));

    fixture.double.fault("2/files/upload", Fault::Damage);
    let err = channel.deliver(&d).await.unwrap_err();

    assert!(err.kind().is_retryable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("r.pdf"), "{message}");
    assert!(message.contains("replaced"), "{message}");
    channel.deliver(&d).await.unwrap();
    assert_eq!(
        fixture.double.file("/Reports/ann/r.pdf").unwrap().bytes,
        pdf_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_app_secret_is_unauthenticated_and_hidden() {
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let channel = fixture.channel(fixture.options_with_secret(&wrong));

    let err = channel
        .deliver(&delivery(recipient("ann"), pdf("r.pdf")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("dropbox"));
    assert!(err.to_string().contains("invalid_client"), "{err}");
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

    assert_eq!(fixture.double.calls("oauth2/token"), 2);
    assert_eq!(
        fixture
            .double
            .state
            .auth
            .rejected_tokens
            .load(Ordering::SeqCst),
        1
    );
    assert!(fixture.double.file("/Reports/bob/r.pdf").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_is_honoured_through_the_engine() {
    let fixture = Fixture::start();
    let too_many = || Fault::Refuse {
        status: 429,
        retry_after: Some(1),
        body: json!({"error_summary": "too_many_requests/..", "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 1}}),
    };
    fixture.double.fault("2/files/upload", too_many());
    let channel = fixture.channel(fixture.options());
    let err = channel
        .deliver(&delivery(recipient("zed"), pdf("r.pdf")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));

    fixture.double.fault("2/files/upload", too_many());
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
    assert!(fixture.double.file("/Reports/ann/Umsatz ann.pdf").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_append_is_sent_again_in_the_same_session() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(4 * MIB as u64),
    );
    fixture.double.fault(
        "2/files/upload_session/append_v2",
        Fault::Refuse {
            status: 429,
            retry_after: Some(1),
            body: json!({"error_summary": "too_many_requests/..", "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 1}}),
        },
    );
    let bytes = large(9 * MIB);
    let started = Instant::now();

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited as asked"
    );
    assert!(fixture.double.file("/Reports/ann/big.pdf").unwrap().bytes == bytes);
    assert_eq!(
        fixture.double.calls("2/files/upload_session/start"),
        1,
        "no new session"
    );
    // the refused append, the same append again, the next one; finish sends the rest.
    assert_eq!(fixture.double.calls("2/files/upload_session/append_v2"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_append_is_resumed() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(4 * MIB as u64),
    );
    fixture
        .double
        .fault("2/files/upload_session/append_v2", Fault::DropAfter(MIB));
    let bytes = large(9 * MIB);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    assert!(fixture.double.file("/Reports/ann/big.pdf").unwrap().bytes == bytes);
    // the dropped append, the empty append asking where to go on, two real appends.
    assert_eq!(fixture.double.calls("2/files/upload_session/append_v2"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_finish_answer_is_recognised() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(4 * MIB as u64),
    );
    fixture
        .double
        .fault("2/files/upload_session/finish", Fault::LoseAnswer);
    let bytes = large(5 * MIB);

    let receipt = channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    assert_eq!(receipt.locations, ["dropbox:/Reports/ann/big.pdf"]);
    assert_eq!(fixture.double.files().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_dropping_leaves_no_file() {
    let fixture = Fixture::start();
    let channel = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(0)
            .with_chunk_size(4 * MIB as u64),
    );
    for _ in 0..10 {
        fixture
            .double
            .fault("2/files/upload_session/finish", Fault::DropAfter(1000));
    }
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Csv, "first.csv", ""),
            document(OutputFormat::Pdf, "big.pdf", large(MIB)),
        ],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        fixture.double.files().is_empty(),
        "nothing committed, the first file removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_tells_an_interrupted_upload_apart() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(recipient("ann"), pdf("r.pdf"));

    assert_eq!(channel.confirm(&d).await.unwrap(), None);
    fixture
        .double
        .fault("2/files/upload", Fault::DropAfter(100));
    assert!(channel.deliver(&d).await.is_err());
    assert_eq!(
        channel.confirm(&d).await.unwrap(),
        None,
        "a dropped upload left nothing"
    );

    fixture.double.fault("2/files/upload", Fault::LoseAnswer);
    assert!(channel.deliver(&d).await.is_err());
    let receipt = channel
        .confirm(&d)
        .await
        .unwrap()
        .expect("the file is there");
    assert_eq!(receipt.locations, ["dropbox:/Reports/ann/r.pdf"]);

    fixture
        .double
        .put_file("/Reports/ann/r.pdf", &large(pdf_bytes().len()));
    assert_eq!(
        channel.confirm(&d).await.unwrap(),
        None,
        "same size, other content"
    );
}

#[test]
fn options_are_checked_when_the_channel_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "s");
    let base = || {
        DropboxOptions::new("app", secret.clone(), secret.clone())
            .with_api_url("http://127.0.0.1:1/2")
    };
    for options in [
        base().with_chunk_size(1_000_000),
        base().with_simple_upload_max(200 * MIB as u64),
        base().with_folder("/a/../b"),
        base().with_content_url("http://content.example.com/2"),
        base().with_token_url("https://user:pw@example.com/token"),
    ] {
        let err = DropboxChannel::new(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
    }
    let missing = DropboxOptions::new(
        "app",
        secret.clone(),
        mad_core::SecretRef::Env("MAD_TEST_UNSET_DROPBOX_TOKEN".into()),
    );
    let err = DropboxChannel::new(missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("refresh_token"), "{err}");
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
            .file(&format!("/Reports/{sub}/Same Name.csv"))
            .unwrap()
            .bytes
    })
    .await;
}
