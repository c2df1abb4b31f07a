//! The Box channel against a local double of the Box API and its token endpoint, with every
//! upload read back from the double's store.

mod conformance;
mod doubles;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mad_core::{Channel, ErrorKind, OutputFormat, SecretRef, TaskChannel};
use mad_deliver::r#box::{BoxChannel, BoxOptions, BoxSubject, IfExists};
use serde_json::json;

use conformance::{ArrivalLog, Arrived, Harness};
use doubles::r#box::{CHUNKED_FROM, Fixture, PART_SIZE};
use doubles::{Fault, engine};
use support::{delivery, document, pdf, pdf_bytes, recipient, secret_file, throwaway};

fn large(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 1021) as u8).collect()
}

struct BoxHarness {
    fixture: Fixture,
    channel: Arc<BoxChannel>,
    log: ArrivalLog,
}

impl Harness for BoxHarness {
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
                    format!("{}/{}", f.id, f.versions),
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
        let mut secrets = vec![self.fixture.secret.clone()];
        secrets.extend(self.fixture.double.state.auth.issued());
        secrets
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_conformance() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let harness = BoxHarness {
        fixture,
        channel,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_lands_in_a_created_subfolder() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());

    let receipt = channel
        .deliver(&delivery(recipient("ann"), pdf("Umsatz Zürich.pdf")))
        .await
        .unwrap();
    channel
        .deliver(&delivery(recipient("ann"), pdf("second.pdf")))
        .await
        .unwrap();

    let file = fixture
        .double
        .file("Reports/ann/Umsatz Zürich.pdf")
        .expect("the file");
    assert_eq!(file.bytes, pdf_bytes());
    assert_eq!(
        receipt.locations,
        [format!("box:file/{}/Umsatz Zürich.pdf", file.id)]
    );
    assert_eq!(
        fixture.double.calls("create_folder"),
        1,
        "the folder is found once and remembered"
    );
    assert_eq!(fixture.double.calls("token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_through_a_chunked_session() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let bytes = large(CHUNKED_FROM as usize + 1_000_001);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    let file = fixture
        .double
        .file("Reports/ann/big.pdf")
        .expect("the file");
    assert!(file.bytes == bytes, "the bytes arrive unchanged");
    let parts = fixture.double.state.parts.lock().unwrap().clone();
    assert_eq!(
        parts,
        [
            (0, PART_SIZE),
            (PART_SIZE, PART_SIZE),
            (2 * PART_SIZE, bytes.len() as u64 - 2 * PART_SIZE)
        ]
    );
    assert_eq!(fixture.double.calls("upload"), 0);
    assert_eq!(fixture.double.open_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_exists_fail_replace_and_rename() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(recipient("ann"), pdf("r.pdf"));
    channel.deliver(&d).await.unwrap();

    let err = channel.deliver(&d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    let renamed = fixture.channel(fixture.options().with_if_exists(IfExists::Rename));
    let receipt = renamed.deliver(&d).await.unwrap();
    assert!(receipt.locations[0].ends_with("/r (2).pdf"), "{receipt:?}");

    let replaced = fixture.channel(fixture.options().with_if_exists(IfExists::Replace));
    let changed = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", "new")],
    );
    replaced.deliver(&changed).await.unwrap();
    let file = fixture.double.file("Reports/ann/r.pdf").unwrap();
    assert_eq!(file.bytes, b"new");
    assert_eq!(file.versions, 2, "a new version of the same file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_store_damaged_is_removed_and_not_delivered() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "r.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "r.csv", "Region;Umsatz\n"),
        ],
    );
    fixture.double.fault("upload", Fault::Pass);
    fixture.double.fault("upload", Fault::Damage);

    let err = channel.deliver(&d).await.unwrap_err();

    assert!(err.kind().is_retryable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("damaged"), "{message}");
    assert!(message.contains("removed"), "{message}");
    assert!(
        fixture.double.files().is_empty(),
        "neither the damaged file nor the one before it is left"
    );
    channel.deliver(&d).await.unwrap();
    assert_eq!(
        fixture.double.file("Reports/ann/r.csv").unwrap().bytes,
        b"Region;Umsatz\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_file_the_store_damaged_is_reported() {
    let fixture = Fixture::start();
    let d = delivery(recipient("ann"), pdf("r.pdf"));
    fixture
        .channel(fixture.options())
        .deliver(&d)
        .await
        .unwrap();
    let channel = fixture.channel(fixture.options().with_if_exists(IfExists::Replace));

    fixture.double.fault("upload_version", Fault::Damage);
    let err = channel.deliver(&d).await.unwrap_err();

    assert!(err.kind().is_retryable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("r.pdf"), "{message}");
    assert!(message.contains("replaced"), "{message}");
    channel.deliver(&d).await.unwrap();
    assert_eq!(
        fixture.double.file("Reports/ann/r.pdf").unwrap().bytes,
        pdf_bytes()
    );
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
    assert_eq!(err.backend(), Some("box"));
    for text in [err.to_string(), format!("{err:?}"), format!("{channel:?}")] {
        assert!(
            !text.contains(&wrong) && !text.contains(&fixture.secret),
            "{text}"
        );
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
    assert!(fixture.double.file("Reports/bob/r.pdf").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_written_back() {
    let fixture = Fixture::start();
    let token_file = fixture.dir.path().join("box-refresh-token");
    std::fs::write(&token_file, format!("{}\n", fixture.refresh)).unwrap();
    let options = || {
        fixture.urls(BoxOptions::refresh_token(
            &fixture.client_id,
            secret_file(fixture.dir.path(), &fixture.secret),
            SecretRef::File(token_file.clone()),
        ))
    };

    fixture
        .channel(options())
        .deliver(&delivery(recipient("ann"), pdf("r.pdf")))
        .await
        .unwrap();

    let saved = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(
        saved.trim(),
        fixture.refresh,
        "the used refresh token was replaced"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the token file");
    }
    // A later run signs in with the saved token; the old one would be refused.
    fixture
        .channel(options())
        .deliver(&delivery(recipient("bob"), pdf("r.pdf")))
        .await
        .unwrap();
    assert_eq!(fixture.double.files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_honoured_through_the_engine() {
    let fixture = Fixture::start();
    fixture.double.fault(
        "upload",
        Fault::Refuse {
            status: 429,
            retry_after: Some(1),
            body: json!({"type": "error", "status": 429, "code": "rate_limit_exceeded", "message": "Request rate limit exceeded, please try again later"}),
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
    assert_eq!(fixture.double.calls("upload"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_part_is_resumed_from_the_listed_parts() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    fixture.double.fault("part", Fault::Pass);
    fixture.double.fault("part", Fault::DropAfter(1_000_000));
    let bytes = large(CHUNKED_FROM as usize + 5);

    channel
        .deliver(&delivery(
            recipient("ann"),
            vec![document(OutputFormat::Pdf, "big.pdf", bytes.clone())],
        ))
        .await
        .unwrap();

    assert!(fixture.double.file("Reports/ann/big.pdf").unwrap().bytes == bytes);
    assert_eq!(fixture.double.calls("list_parts"), 1);
    assert_eq!(
        fixture.double.calls("part"),
        4,
        "three parts, one of them twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_dropping_leaves_no_file() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    for _ in 0..10 {
        fixture.double.fault("part", Fault::DropAfter(1000));
    }
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Csv, "first.csv", "x"),
            document(OutputFormat::Pdf, "big.pdf", large(CHUNKED_FROM as usize)),
        ],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        fixture.double.files().is_empty(),
        "nothing committed, the first file removed"
    );
    assert_eq!(fixture.double.open_sessions(), 0, "the session is aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_tells_an_interrupted_upload_apart() {
    let fixture = Fixture::start();
    let channel = fixture.channel(fixture.options());
    let d = delivery(recipient("ann"), pdf("r.pdf"));

    assert_eq!(channel.confirm(&d).await.unwrap(), None);
    fixture.double.fault("upload", Fault::DropAfter(100));
    assert!(channel.deliver(&d).await.is_err());
    assert_eq!(channel.confirm(&d).await.unwrap(), None);

    fixture.double.fault("upload", Fault::LoseAnswer);
    assert!(channel.deliver(&d).await.is_err());
    let receipt = channel
        .confirm(&d)
        .await
        .unwrap()
        .expect("the file is there");
    let file = fixture.double.file("Reports/ann/r.pdf").unwrap();
    assert_eq!(receipt.locations, [format!("box:file/{}/r.pdf", file.id)]);
}

#[test]
fn options_are_checked_when_the_channel_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "s");
    let cc = || BoxOptions::client_credentials("c", secret.clone(), BoxSubject::User, "42");
    let mut both = cc();
    both.refresh_token = Some(secret.clone());
    for options in [
        both,
        cc().with_folder_id("../1"),
        cc().with_chunked_from(1_000_000),
        cc().with_upload_url("http://upload.example.com/api/2.0"),
        cc().with_subfolder("/abs/{recipient.id}"),
    ] {
        let err = BoxChannel::new(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
        assert_eq!(err.backend(), Some("box"));
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
        fixture
            .double
            .file(&format!("Reports/{sub}/Same Name.csv"))
            .unwrap()
            .bytes
    })
    .await;
}
