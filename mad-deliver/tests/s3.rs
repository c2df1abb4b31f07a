//! The S3 channel against a real S3 server (moto, started by each test on 127.0.0.1 with
//! throwaway credentials), with every object read back by an independent client (boto3).

mod conformance;
mod s3_server;
mod support;

use std::sync::Arc;
use std::time::Duration;

use mad_core::runlog::{DeliveryKey, RunLog};
use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Engine, EngineOptions, ErrorKind, Field, FieldKind, MemoryRunLog,
    OnEmpty, OutputFormat, Registry, RenderJob, Renderer, ReportDef, RunInfo, Schema, SecretRef,
    Status, Table, Task, TaskChannel, Value,
};
use mad_deliver::s3::{S3Channel, S3Options, ServerSideEncryption};

use conformance::{ArrivalLog, Arrived, Harness};
use s3_server::S3Server;
use support::{delivery, document, pdf_bytes, recipient, report_delivery, throwaway};

const BUCKET: &str = "reports";

fn channel(options: S3Options) -> S3Channel {
    S3Channel::new(options).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- conformance ----------------------------------------------------------------------------

struct S3Harness {
    server: S3Server,
    channel: Arc<S3Channel>,
    log: ArrivalLog,
}

impl Harness for S3Harness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let current = self
            .server
            .objects(BUCKET)
            .into_iter()
            .map(|o| {
                let arrived = Arrived {
                    name: o.name().to_string(),
                    bytes: o.bytes.clone(),
                };
                (o.key, arrived)
            })
            .collect();
        self.log.update(current)
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.server.secret.clone(), self.server.key_id.clone()]
    }
}

#[tokio::test]
async fn s3_conformance() {
    let server = S3Server::start(&[BUCKET]);
    let options = server.options(BUCKET).with_prefix("{recipient.id}");
    let harness = S3Harness {
        channel: Arc::new(channel(options)),
        server,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

#[tokio::test]
async fn two_recipients_never_share_a_key_in_one_run() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options(BUCKET).with_prefix("shared"));
    support::second_recipient_is_refused(&s3).await;
    let objects = server.objects(BUCKET);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].bytes, b"rows of east\n");
}

// ---- happy path -----------------------------------------------------------------------------

#[tokio::test]
async fn documents_arrive_under_the_prefix_with_type_checksum_and_encryption() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(
        server
            .options(BUCKET)
            .with_prefix("monthly/{run.date}/{recipient.id}")
            .with_sse(ServerSideEncryption::Aes256),
    );

    let receipt = s3
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();

    let objects = server.objects(BUCKET);
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "monthly/2026-01-31/ann/Umsatz Zürich.html",
            "monthly/2026-01-31/ann/Umsatz Zürich.pdf"
        ]
    );
    assert_eq!(
        receipt.locations,
        [
            "s3://reports/monthly/2026-01-31/ann/Umsatz Zürich.html",
            "s3://reports/monthly/2026-01-31/ann/Umsatz Zürich.pdf"
        ]
    );
    let pdf = &objects[1];
    assert_eq!(pdf.bytes, pdf_bytes());
    assert_eq!(
        receipt.bytes,
        (support::HTML.len() + pdf_bytes().len()) as u64
    );
    assert_eq!(pdf.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(pdf.sse.as_deref(), Some("AES256"));
    assert_eq!(pdf.metadata["sha256"], pdf.sha256.as_str());
    assert_eq!(pdf.sha256, sha256_hex(&pdf_bytes()));
    assert_eq!(
        objects[0].content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn kms_encryption_is_requested() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(
        server
            .options(BUCKET)
            .with_sse(ServerSideEncryption::Kms)
            .with_kms_key_id("alias/mad-test"),
    );

    s3.deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();

    for object in server.objects(BUCKET) {
        assert_eq!(object.sse.as_deref(), Some("aws:kms"), "{}", object.key);
    }
}

#[tokio::test]
async fn hostile_values_stay_below_the_prefix() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options(BUCKET).with_prefix("out/{recipient.id}"));
    let ids = ["../../escape", "/abs", "..", "a/../../b", "C:\\x", "ok"];

    for id in ids {
        let d = delivery(
            recipient(id),
            vec![document(OutputFormat::Pdf, "../../x.pdf", pdf_bytes())],
        );
        s3.deliver(&d).await.unwrap();
    }

    let objects = server.objects(BUCKET);
    assert_eq!(objects.len(), ids.len());
    for object in &objects {
        // A recipient id that is only dots adds no level at all.
        let parts: Vec<&str> = object.key.split('/').collect();
        assert!(parts.len() == 2 || parts.len() == 3, "{}", object.key);
        assert_eq!(parts[0], "out", "{}", object.key);
        for part in &parts {
            assert!(
                !part.is_empty() && *part != "." && *part != "..",
                "{}",
                object.key
            );
        }
        conformance::assert_safe_name(parts[parts.len() - 1], "../../x.pdf");
    }
}

// ---- credentials ----------------------------------------------------------------------------

#[tokio::test]
async fn wrong_credentials_are_unauthenticated_and_never_shown() {
    let server = S3Server::start(&[BUCKET]);
    let wrong_secret = throwaway("wrong-secret");
    let wrong_key = throwaway("AKIDWRONG");
    let cases = [
        (server.key_id.clone(), wrong_secret.clone()),
        (wrong_key.clone(), server.secret.clone()),
    ];

    for (key_id, secret) in cases {
        let s3 = channel(server.options_with(BUCKET, &key_id, &secret));
        let err = s3
            .deliver(&report_delivery(recipient("ann")))
            .await
            .unwrap_err();

        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
        assert_eq!(err.backend(), Some("s3"));
        assert!(err.to_string().contains("access_key_id"), "{err}");
        let shown = format!("{err} {err:?} {s3:?}");
        for hidden in [&key_id, &secret, &server.secret] {
            assert!(!shown.contains(hidden.as_str()), "{shown}");
        }
    }
    assert!(server.objects(BUCKET).is_empty());
}

#[tokio::test]
async fn a_missing_bucket_is_not_found() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options("no-such-bucket"));

    let err = s3
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("bucket"), "{err}");
}

#[test]
fn unsafe_or_incomplete_options_are_refused() {
    let key = || SecretRef::Env("MAD_TEST_UNUSED_KEY".into());
    let cases = [
        S3Options::new("b")
            .with_endpoint("http://s3.example.com")
            .with_allow_http(true),
        S3Options::new("b").with_endpoint("http://127.0.0.1:9"),
        S3Options::new("b").with_allow_http(true),
        S3Options::new("b")
            .with_keys(key(), key())
            .with_environment_credentials(),
        S3Options::new("b"),
        S3Options::new("b").with_kms_key_id("alias/x"),
        S3Options::new(" "),
        S3Options::new("b").with_prefix("../{recipient.id}"),
        S3Options::new("b").with_prefix("/abs"),
    ];
    for options in cases {
        let err = S3Channel::new(options.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{options:?}: {err}");
        assert_eq!(err.backend(), Some("s3"), "{options:?}: {err}");
    }
}

#[test]
fn definitions_build_the_channel_and_reject_typos() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let ctx = BuildContext::new(dir.path());
    let key = support::secret_file(dir.path(), "AKIDEXAMPLE");
    let secret = support::secret_file(dir.path(), "definitions-secret-value");
    let options = serde_json::json!({
        "bucket": "reports",
        "prefix": "{recipient.id}",
        "region": "eu-central-1",
        "access_key_id": String::from(key),
        "secret_access_key": String::from(secret),
        "sse": "aws:kms",
        "kms_key_id": "alias/reports",
    });

    let built = registry.build_channel("s3", &options, &ctx).unwrap();
    let debug = format!("{built:?}");
    assert!(
        debug.contains("reports") && debug.contains("Kms"),
        "{debug}"
    );
    assert!(!debug.contains("definitions-secret-value"), "{debug}");
    assert!(!debug.contains("AKIDEXAMPLE"), "{debug}");

    let mut typo = options.clone();
    typo["buckt"] = "x".into();
    let err = registry.build_channel("s3", &typo, &ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let mut sse = options.clone();
    sse["sse"] = "sse-c".into();
    assert!(registry.build_channel("s3", &sse, &ctx).is_err());
}

// ---- faults ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_connection_cut_mid_upload_is_transient_and_leaves_nothing() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options(BUCKET).with_prefix("{recipient.id}"));

    // The second of two uploads is cut off: the first is rolled back.
    server.drop_uploads(1, 1);
    let err = s3
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(server.stats().1, 1, "the server cut one upload off");
    assert!(server.objects(BUCKET).is_empty(), "nothing half-delivered");
    let d = report_delivery(recipient("ann"));
    assert_eq!(s3.confirm(&d).await.unwrap(), None);

    // Trying again delivers both, whole.
    s3.deliver(&d).await.unwrap();
    let objects = server.objects(BUCKET);
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1].bytes, pdf_bytes());
}

#[tokio::test]
async fn a_throttled_upload_is_rate_limited_with_the_servers_wait() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options(BUCKET));
    server.throttle_uploads(1, 7);

    let err = s3
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(server.objects(BUCKET).is_empty());
}

#[tokio::test]
async fn a_store_that_is_not_there_is_transient() {
    let port = support::closed_port();
    let server = S3Server::start(&[BUCKET]);
    let options = server
        .options(BUCKET)
        .with_endpoint(format!("http://127.0.0.1:{port}"));
    let s3 = channel(options);

    let err = s3
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

// ---- confirm --------------------------------------------------------------------------------

#[tokio::test]
async fn confirm_tells_a_complete_delivery_from_a_missing_or_different_one() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = channel(server.options(BUCKET).with_prefix("{recipient.id}"));
    let d = report_delivery(recipient("ann"));

    assert_eq!(s3.confirm(&d).await.unwrap(), None, "nothing there yet");
    let receipt = s3.deliver(&d).await.unwrap();
    assert_eq!(s3.confirm(&d).await.unwrap(), Some(receipt));

    // Other bytes under the same names are not this delivery.
    let other = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Html, "Umsatz Zürich.html", support::HTML),
            document(
                OutputFormat::Pdf,
                "Umsatz Zürich.pdf",
                b"%PDF-other".to_vec(),
            ),
        ],
    );
    s3.deliver(&other).await.unwrap();
    assert_eq!(s3.confirm(&d).await.unwrap(), None);
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

fn task(channels: Vec<TaskChannel>, ids: &[&str]) -> Task {
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
    task.channels = channels;
    task
}

fn quick_retries(retries: u32) -> EngineOptions {
    EngineOptions {
        delivery_retries: retries,
        retry_delay: Duration::from_millis(20),
        ..EngineOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_refused_credentials_and_delivers_through_the_good_channel() {
    let server = S3Server::start(&[BUCKET]);
    let wrong = throwaway("wrong-secret");
    let good = Arc::new(channel(server.options(BUCKET).with_prefix("good")));
    let bad = Arc::new(channel(
        server
            .options_with(BUCKET, &server.key_id, &wrong)
            .with_prefix("bad"),
    ));
    let ids = ["ann", "bob", "cyd"];
    let channels = vec![
        TaskChannel::new(good).named("good"),
        TaskChannel::new(bad).named("bad"),
    ];

    let summary = Engine::new(quick_retries(3))
        .run(&task(channels, &ids))
        .await
        .unwrap();

    assert_eq!(summary.counts.failed, ids.len(), "{}", summary.human());
    for outcome in &summary.recipients {
        assert_eq!(outcome.receipts.len(), 1, "{}", summary.human());
        assert_eq!(outcome.receipts[0].channel, "good");
        assert_eq!(outcome.errors.len(), 1);
        assert_eq!(outcome.errors[0].kind, ErrorKind::Unauthenticated);
        assert_eq!(outcome.errors[0].channel.as_deref(), Some("bad"));
    }
    assert!(!summary.to_json().contains(&wrong));
    let keys: Vec<String> = server.objects(BUCKET).into_iter().map(|o| o.key).collect();
    assert_eq!(
        keys,
        [
            "good/Umsatz ann.pdf",
            "good/Umsatz bob.pdf",
            "good/Umsatz cyd.pdf"
        ]
    );
    assert_eq!(
        server.stats().0,
        6,
        "three uploads, three refused ones, none retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_retries_an_upload_cut_off_midway() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = Arc::new(channel(server.options(BUCKET)));
    server.drop_uploads(2, 0);

    let summary = Engine::new(quick_retries(3))
        .run(&task(vec![TaskChannel::new(s3)], &["ann"]))
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(server.stats(), (1, 2, 0));
    let objects = server.objects(BUCKET);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].bytes, pdf_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_without_retries_fails_the_cut_upload_cleanly() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = Arc::new(channel(server.options(BUCKET)));
    server.drop_uploads(1, 0);

    let summary = Engine::new(quick_retries(0))
        .run(&task(vec![TaskChannel::new(s3)], &["ann", "bob"]))
        .await
        .unwrap();

    assert_eq!(summary.counts.failed, 1, "{}", summary.human());
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    let failed = summary
        .recipients
        .iter()
        .find(|r| r.status == Status::Failed)
        .unwrap();
    assert_eq!(failed.errors[0].kind, ErrorKind::Transient);
    let objects = server.objects(BUCKET);
    assert_eq!(objects.len(), 1, "only the delivered recipient's object");
    assert_eq!(objects[0].bytes, pdf_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_confirms_an_interrupted_upload_instead_of_repeating_it() {
    let server = S3Server::start(&[BUCKET]);
    let s3 = Arc::new(channel(server.options(BUCKET).with_prefix("{run.id}")));
    let log = Arc::new(MemoryRunLog::new());
    let run = RunInfo::at("run-7", 1_767_225_600.0);
    let t = task(vec![TaskChannel::new(s3.clone())], &["ann", "bob"]);

    // An earlier process began ann's delivery, uploaded it, and died before recording it.
    log.start_run(&run, &t.name).await.unwrap();
    let key = DeliveryKey {
        run_id: run.id.clone(),
        recipient: "ann".into(),
        report: "Umsatz".into(),
        channel: "s3".into(),
    };
    log.begin(&key).await.unwrap();
    let mut interrupted = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "Umsatz ann.pdf", pdf_bytes())],
    );
    interrupted.run_id = run.id.clone();
    interrupted.placeholders =
        Arc::new((*interrupted.placeholders).clone().with("run.id", "run-7"));
    s3.deliver(&interrupted).await.unwrap();
    assert_eq!(server.stats().0, 1);

    let summary = Engine::new(quick_retries(0))
        .with_run_log(log)
        .run_as(&t, run)
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    assert_eq!(summary.counts.resumed, 1, "{}", summary.human());
    assert_eq!(
        server.stats().0,
        2,
        "ann's upload was confirmed, not repeated"
    );
    let keys: Vec<String> = server.objects(BUCKET).into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["run-7/Umsatz ann.pdf", "run-7/Umsatz bob.pdf"]);
}
