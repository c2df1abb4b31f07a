//! The e-mail channel against a real SMTP server (aiosmtpd, started by each test) and a pickup
//! folder, with every message read back by an independent MIME parser.

mod conformance;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mad_core::runlog::{DeliveryKey, MemoryRunLog, RunLog};
use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Engine, EngineOptions, ErrorKind, Field, FieldKind, OnEmpty,
    OutputFormat, Recipient, Registry, RenderJob, Renderer, ReportDef, Schema, Status, Table, Task,
    TaskChannel, Value,
};
use mad_core::{Delivery, RunInfo};
use mad_deliver::email::{BodyFormat, EmailChannel, EmailOptions, Security, SmtpOptions};
use mad_deliver::hub::{Hub, HubOptions};

use conformance::{ArrivalLog, Arrived, Harness};
use support::{
    HTML, Received, SUBJECT, SmtpFaults, SmtpFixture as Fixture, SmtpMode, closed_port, delivery,
    document, parse_message, pdf_bytes, recipient, report_delivery, secret_file, the_one_refused,
    throwaway,
};

const FROM: &str = "Reports <reports@example.com>";

fn html_options() -> EmailOptions {
    EmailOptions::new(FROM).with_body_format(BodyFormat::Html)
}

/// Checks one received message of a `report_delivery` sent with `html_options`.
fn assert_report_message(raw: &[u8], to: &str) {
    let parsed = parse_message(raw);
    assert_eq!(parsed.to, [to]);
    assert_eq!(parsed.from, "reports@example.com");
    assert_eq!(parsed.subject, SUBJECT);
    let html = parsed.html.expect("an HTML body");
    assert_eq!(html.trim_end(), HTML);
    assert_eq!(
        parsed.attachments,
        [("Umsatz Zürich.pdf".to_string(), pdf_bytes())],
        "the PDF is attached byte for byte, the HTML is the body and not attached"
    );
}

// ---- conformance ----------------------------------------------------------------------------

struct PickupHarness {
    dir: tempfile::TempDir,
    channel: Arc<EmailChannel>,
    log: ArrivalLog,
}

impl Harness for PickupHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let messages = eml_files(self.dir.path())
            .into_iter()
            .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()));
        self.log.update(attachments_of(messages))
    }
}

struct SmtpHarness {
    fixture: Fixture,
    channel: Arc<EmailChannel>,
    log: ArrivalLog,
}

impl Harness for SmtpHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        let messages = self
            .fixture
            .server
            .received()
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("{i:06}"), r.raw));
        self.log.update(attachments_of(messages))
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.fixture.password.clone()]
    }
}

fn eml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in &files {
        assert_eq!(
            f.extension().and_then(|e| e.to_str()),
            Some("eml"),
            "only finished messages in the pickup folder: {}",
            f.display()
        );
    }
    files
}

fn attachments_of(messages: impl Iterator<Item = (String, Vec<u8>)>) -> Vec<(String, Arrived)> {
    messages
        .flat_map(|(key, raw)| {
            parse_message(&raw)
                .attachments
                .into_iter()
                .enumerate()
                .map(move |(i, (name, bytes))| (format!("{key}#{i:03}"), Arrived { name, bytes }))
        })
        .collect()
}

#[tokio::test]
async fn pickup_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let channel = EmailChannel::new(EmailOptions::new(FROM).with_pickup(dir.path())).unwrap();
    let harness = PickupHarness {
        dir,
        channel: Arc::new(channel),
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

#[tokio::test]
async fn smtp_conformance() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(EmailOptions::new(FROM), Security::Starttls);
    let harness = SmtpHarness {
        channel: Arc::new(channel),
        fixture,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

// ---- happy paths ----------------------------------------------------------------------------

async fn send_many(channel: &EmailChannel, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let deliveries: Vec<_> = ids
        .iter()
        .map(|id| report_delivery(recipient(id)))
        .collect();
    let results = futures::future::join_all(deliveries.iter().map(|d| channel.deliver(d))).await;
    for result in results {
        let receipt = result.unwrap();
        assert_eq!(receipt.channel, "email");
        assert!(
            receipt.locations[0].starts_with('<'),
            "a message id: {receipt:?}"
        );
    }
    ids.iter().map(|id| format!("{id}@example.com")).collect()
}

async fn happy_path(mode: SmtpMode, security: Security, n: usize) {
    let fixture = Fixture::start(mode);
    let channel = fixture.channel(html_options(), security);

    let mut expected = send_many(&channel, n).await;

    let received = fixture.server.wait_for(n);
    assert_eq!(received.len(), n, "the server counted every message");
    let mut seen = Vec::new();
    for message in &received {
        assert_eq!(message.envelope["login"], fixture.user.as_str());
        let to = parse_message(&message.raw).to.remove(0);
        assert_report_message(&message.raw, &to);
        seen.push(to);
    }
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_delivers_every_message_intact() {
    happy_path(SmtpMode::Starttls, Security::Starttls, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivers_every_message_intact() {
    happy_path(SmtpMode::Tls, Security::Tls, 4).await;
}

#[tokio::test]
async fn plain_local_server_without_tls() {
    let fixture = Fixture::start(SmtpMode::Plain);
    let options = SmtpOptions::new("localhost")
        .with_port(fixture.server.port)
        .with_security(Security::None)
        .with_credentials(
            &fixture.user,
            secret_file(fixture.secrets.path(), &fixture.password),
        );
    let channel = EmailChannel::new(html_options().with_smtp(options)).unwrap();

    channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();

    assert_report_message(&fixture.server.wait_for(1)[0].raw, "ann@example.com");
}

#[tokio::test]
async fn bcc_goes_in_the_envelope_not_the_header() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(html_options(), Security::Starttls);
    let mut ann = recipient("ann");
    ann.cc = vec!["boss@example.com".into()];
    ann.bcc = vec!["audit@example.com".into()];

    channel.deliver(&report_delivery(ann)).await.unwrap();

    let received = fixture.server.wait_for(1);
    let rcpt: Vec<&str> = received[0].envelope["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        rcpt,
        ["ann@example.com", "boss@example.com", "audit@example.com"]
    );
    let parsed = parse_message(&received[0].raw);
    assert_eq!(parsed.cc, ["boss@example.com"]);
    assert!(
        parsed.bcc.is_empty(),
        "Bcc is not shown to the other recipients"
    );
}

// ---- pickup ---------------------------------------------------------------------------------

#[tokio::test]
async fn pickup_writes_a_complete_eml() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let channel = EmailChannel::new(html_options().with_pickup(&outbox)).unwrap();
    let mut ann = recipient("ann");
    ann.bcc = vec!["audit@example.com".into()];

    let receipt = channel.deliver(&report_delivery(ann)).await.unwrap();

    let files = eml_files(&outbox);
    assert_eq!(files.len(), 1);
    assert_eq!(receipt.locations, [files[0].display().to_string()]);
    let raw = std::fs::read(&files[0]).unwrap();
    assert_eq!(receipt.bytes, raw.len() as u64);
    assert_report_message(&raw, "ann@example.com");
    assert_eq!(
        parse_message(&raw).bcc,
        ["audit@example.com"],
        "a pickup file keeps Bcc, its only record of those recipients"
    );
}

#[test]
fn pickup_is_the_default_relative_to_the_definitions() {
    let base = tempfile::tempdir().unwrap();
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let options = serde_json::json!({ "from": "reports@example.com" });

    let built = registry
        .build_channel("email", &options, &BuildContext::new(base.path()))
        .unwrap();

    let debug = format!("{built:?}");
    assert!(
        debug.contains(&*base.path().join("outbox").to_string_lossy()),
        "{debug}"
    );
}

// ---- options --------------------------------------------------------------------------------

#[tokio::test]
async fn text_body_and_chosen_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmailOptions::new(FROM)
        .with_subject("{report.name} – {recipient.name}")
        .with_body("Hallo {recipient.name},\nanbei der Bericht.")
        .with_attach(vec![OutputFormat::Csv])
        .with_reply_to("help@example.com")
        .with_pickup(dir.path());
    let channel = EmailChannel::new(options).unwrap();
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "r.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "r.csv", "Region;Umsatz\nZürich;1\n"),
        ],
    );

    channel.deliver(&d).await.unwrap();

    let parsed = parse_message(&std::fs::read(&eml_files(dir.path())[0]).unwrap());
    assert_eq!(parsed.subject, format!("{SUBJECT} – Recipient ann"));
    assert_eq!(
        parsed.text.unwrap().replace("\r\n", "\n").trim_end(),
        "Hallo Recipient ann,\nanbei der Bericht."
    );
    assert!(parsed.html.is_none());
    assert_eq!(
        parsed.attachments,
        [(
            "r.csv".to_string(),
            b"Region;Umsatz\nZ\xc3\xbcrich;1\n".to_vec()
        )]
    );
}

#[tokio::test]
async fn a_recipient_name_cannot_add_headers() {
    let dir = tempfile::tempdir().unwrap();
    let options = html_options()
        .with_subject("Report for {recipient.name}")
        .with_pickup(dir.path());
    let channel = EmailChannel::new(options).unwrap();
    let mut ann = recipient("ann");
    ann.name = "Ann\r\nBcc: thief@example.com".into();

    channel.deliver(&report_delivery(ann)).await.unwrap();

    let raw = std::fs::read(&eml_files(dir.path())[0]).unwrap();
    let parsed = parse_message(&raw);
    assert!(parsed.bcc.is_empty());
    assert_eq!(parsed.to, ["ann@example.com"]);
    assert_eq!(parsed.subject, "Report for Ann  Bcc: thief@example.com");
    assert!(!String::from_utf8_lossy(&raw).contains("\nBcc: thief"));

    let mut bob = recipient("bob");
    bob.cc = vec!["\"Evil\r\nBcc: thief@example.com\" <evil@example.com>".into()];
    let err = channel.deliver(&report_delivery(bob)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        !err.to_string().contains('\n'),
        "the message stays on one line: {err}"
    );
}

#[tokio::test]
async fn unusable_deliveries_are_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let channel =
        |options: EmailOptions| EmailChannel::new(options.with_pickup(dir.path())).unwrap();

    let mut nobody = Recipient::new("r-17", "Nobody");
    nobody.email = None;
    let err = channel(html_options())
        .deliver(&report_delivery(nobody))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.to_string().contains("r-17"),
        "names the recipient: {err}"
    );

    let bad = Recipient::new("r-18", "Bad").with_email("not an address");
    let err = channel(html_options())
        .deliver(&report_delivery(bad))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("r-18"), "{err}");

    let pdf_only = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Pdf, "r.pdf", pdf_bytes())],
    );
    let err = channel(html_options())
        .deliver(&pdf_only)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("html"), "{err}");

    let err = channel(EmailOptions::new(FROM).with_attach(vec![OutputFormat::Xlsx]))
        .deliver(&pdf_only)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("xlsx"), "{err}");
    assert!(eml_files(dir.path()).is_empty(), "nothing was written");
}

#[test]
fn inconsistent_options_are_refused_when_built() {
    let dir = tempfile::tempdir().unwrap();
    let both = EmailOptions::new(FROM)
        .with_pickup(dir.path())
        .with_smtp(SmtpOptions::new("127.0.0.1"));
    assert_eq!(
        EmailChannel::new(both).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );

    let bad_from = EmailOptions::new("reports at example").with_pickup(dir.path());
    let err = EmailChannel::new(bad_from).unwrap_err();
    assert!(err.to_string().contains("from"), "{err}");

    let bad_subject = EmailOptions::new(FROM)
        .with_subject("{report.name")
        .with_pickup(dir.path());
    assert_eq!(
        EmailChannel::new(bad_subject).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );

    let remote_plain = SmtpOptions::new("mail.example.com").with_security(Security::None);
    let err = EmailChannel::new(EmailOptions::new(FROM).with_smtp(remote_plain)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);

    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let literal = serde_json::json!({
        "from": FROM,
        "smtp": { "host": "127.0.0.1", "username": "u", "password": "hunter2-literal" }
    });
    let err = registry
        .build_channel("email", &literal, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(!err.to_string().contains("hunter2-literal"), "{err}");

    let missing_secret = serde_json::json!({
        "from": FROM,
        "smtp": { "host": "127.0.0.1", "username": "u", "password": "file:no-such-secret" }
    });
    let err = registry
        .build_channel("email", &missing_secret, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

// ---- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_is_unauthenticated_and_never_shown() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let wrong = throwaway("wrong-pw");
    let options = html_options().with_smtp(fixture.smtp(Security::Starttls, &wrong));
    let channel = EmailChannel::new(options.clone()).unwrap();

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("smtp"));
    assert!(
        err.to_string().contains("ann"),
        "names the recipient: {err}"
    );
    let shown = format!("{err} {err:?} {channel:?} {options:?}");
    for secret in [&wrong, &fixture.password] {
        assert!(
            !shown.contains(secret.as_str()),
            "a password shows: {shown}"
        );
    }
    assert!(fixture.server.received().is_empty());
}

#[tokio::test]
async fn missing_credentials_are_unauthenticated() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let smtp = SmtpOptions::new("127.0.0.1")
        .with_port(fixture.server.port)
        .with_ca_file(&fixture.certificates.ca);
    let channel = EmailChannel::new(html_options().with_smtp(smtp)).unwrap();

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
}

#[tokio::test]
async fn untrusted_certificate_fails_without_sending() {
    let fixture = Fixture::start(SmtpMode::Tls);
    let mut smtp = fixture.smtp(Security::Tls, &fixture.password);
    smtp.ca_file = None;
    let channel = EmailChannel::new(html_options().with_smtp(smtp)).unwrap();

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Delivery, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");
    assert!(fixture.server.received().is_empty());
}

#[tokio::test]
async fn server_replies_map_to_kinds() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(html_options(), Security::Starttls);

    let rejected = Recipient::new("x", "X").with_email("reject-x@example.com");
    let err = channel
        .deliver(&report_delivery(rejected))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Delivery, "{err}");
    assert!(err.to_string().contains("550"), "{err}");

    let deferred = Recipient::new("y", "Y").with_email("defer-y@example.com");
    let err = channel
        .deliver(&report_delivery(deferred))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");

    // The pool recovers: the next message goes through on the same channel.
    channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    assert_eq!(fixture.server.wait_for(1).len(), 1);
}

#[tokio::test]
async fn unreachable_server_is_transient_quickly() {
    let smtp = SmtpOptions::new("127.0.0.1")
        .with_port(closed_port())
        .with_security(Security::Starttls)
        .with_timeout_secs(10);
    let channel = EmailChannel::new(html_options().with_smtp(smtp)).unwrap();
    let started = Instant::now();

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.kind().is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let smtp = SmtpOptions::new("127.0.0.1")
        .with_port(port)
        .with_timeout_secs(1);
    let channel = EmailChannel::new(html_options().with_smtp(smtp)).unwrap();
    let started = Instant::now();

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

// ---- through the engine ---------------------------------------------------------------------

/// Returns the same bytes for every job, so the test is about delivery.
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
    let recipients = ids.iter().map(|id| recipient(id)).collect();
    task_with(vec![TaskChannel::new(channel)], recipients)
}

fn task_with(channels: Vec<TaskChannel>, recipients: Vec<Recipient>) -> Task {
    let schema = Schema::new(vec![Field::new("Region", FieldKind::Text)]);
    let mut region = ColumnBuilder::default();
    region.push(Value::text("Zürich"));
    region.push(Value::text("Łódź"));
    let table = Table::new(schema, vec![region.finish()]).unwrap();
    let mut report = ReportDef::new(SUBJECT, "Umsatz für {recipient.name}");
    report.formats = vec![OutputFormat::Html, OutputFormat::Pdf];
    report.file_name = "Umsatz Zürich".to_string();
    let mut renderers: BTreeMap<OutputFormat, Arc<dyn Renderer>> = BTreeMap::new();
    renderers.insert(
        OutputFormat::Html,
        Arc::new(FixedRenderer(OutputFormat::Html, HTML.as_bytes().to_vec())),
    );
    renderers.insert(
        OutputFormat::Pdf,
        Arc::new(FixedRenderer(OutputFormat::Pdf, pdf_bytes())),
    );
    let mut task = Task::new("monthly", Arc::new(TableSource::new("memory", table)))
        .with_report(report)
        .with_recipients(recipients)
        .with_on_empty(OnEmpty::Skip);
    task.channels = channels;
    task.renderers = renderers;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_login_and_delivers_the_rest() {
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            reject_auth: 1,
            ..SmtpFaults::default()
        },
    );
    let channel = Arc::new(fixture.channel(html_options(), Security::Starttls));
    let ids = ["ann", "bob", "cyd", "dan"];

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(EngineOptions::default()).run(&task(channel, &ids)),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    let refused = the_one_refused(&summary);
    assert_eq!(refused.errors[0].channel.as_deref(), Some("email"));
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    let received = fixture.server.wait_for(3);
    assert_eq!(received.len(), 3);
    for message in &received {
        let to = parse_message(&message.raw).to.remove(0);
        assert_ne!(to, format!("{}@example.com", refused.id));
        assert_report_message(&message.raw, &to);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_with_a_wrong_password_fails_everyone_cleanly() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let wrong = throwaway("wrong-pw");
    let options = html_options().with_smtp(fixture.smtp(Security::Starttls, &wrong));
    let channel = Arc::new(EmailChannel::new(options).unwrap());
    let ids = ["ann", "bob", "cyd"];

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(EngineOptions::default()).run(&task(channel, &ids)),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    assert_eq!(summary.counts.failed, ids.len(), "{}", summary.human());
    for outcome in &summary.recipients {
        assert_eq!(outcome.status, Status::Failed);
        assert_eq!(outcome.errors[0].kind, ErrorKind::Unauthenticated);
        assert!(!outcome.errors[0].message.contains(&wrong));
    }
    assert!(!summary.to_json().contains(&wrong));
    assert!(fixture.server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_sends_one_message_per_value_and_keeps_one_hub_copy_each() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let email: Arc<dyn Channel> = Arc::new(
        EmailChannel::new(
            html_options()
                .with_subject("{report.name}: {burst}")
                .with_pickup(&outbox),
        )
        .unwrap(),
    );
    let hub: Arc<dyn Channel> = Arc::new(
        Hub::open(HubOptions::new(
            dir.path().join("index.sqlite"),
            dir.path().join("documents"),
        ))
        .unwrap(),
    );
    let channels = vec![TaskChannel::new(email), TaskChannel::new(hub.clone())];
    let task = task_with(channels, vec![recipient("ann")]).with_burst("Region");

    let summary = Engine::new(EngineOptions::default())
        .run(&task)
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(summary.counts.failed, 0, "{}", summary.human());
    let mut subjects = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let parsed = parse_message(&std::fs::read(entry.unwrap().path()).unwrap());
        subjects.push(parsed.subject);
        ids.insert(parsed.message_id);
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [format!("{SUBJECT}: Zürich"), format!("{SUBJECT}: Łódź")],
        "one message per value, none lost"
    );
    assert_eq!(ids.len(), 2, "each value's message has its own Message-ID");
    let hub = Hub::open(HubOptions::new(
        dir.path().join("index.sqlite"),
        dir.path().join("documents"),
    ))
    .unwrap();
    assert_eq!(
        hub.list("ann").await.unwrap().len(),
        4,
        "two documents per value"
    );
}

#[test]
fn a_channel_outliving_its_runtime_drops_cleanly() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(html_options(), Security::Starttls);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    runtime
        .block_on(channel.deliver(&report_delivery(recipient("ann"))))
        .unwrap();
    drop(runtime);

    drop(channel); // its connection pool was made in the runtime that is gone now
    assert_eq!(fixture.server.received().len(), 1);
}

#[tokio::test]
async fn one_connection_serves_consecutive_messages() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(html_options(), Security::Starttls);

    for id in ["ann", "bob", "cyd"] {
        channel
            .deliver(&report_delivery(recipient(id)))
            .await
            .unwrap();
        // lettre hands a connection back to its pool in a task of its own.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let connections: Vec<_> = fixture
        .server
        .wait_for(3)
        .iter()
        .map(|m| m.envelope["connection"].clone())
        .collect();
    assert_eq!(connections.len(), 3);
    assert!(connections[0].is_u64());
    assert!(
        connections.iter().all(|c| *c == connections[0]),
        "the pooled connection is reused: {connections:?}"
    );
}

// ---- addresses, templates and inline images -------------------------------------------------

fn rcpt_tos(message: &Received) -> Vec<String> {
    message.envelope["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn copies_of_recipient_and_channel_reach_the_envelope_once() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let options = html_options()
        .with_reply_to("Help Desk <help@example.com>")
        .with_cc("controller@example.com")
        .with_bcc("archive@example.com")
        .with_bcc("Boss@example.com"); // also the recipient's Cc: sent once, as a Cc
    let channel = fixture.channel(options, Security::Starttls);
    let mut ann = recipient("ann");
    ann.cc = vec!["boss@example.com".into()];
    ann.bcc = vec!["audit@example.com".into()];

    channel.deliver(&report_delivery(ann)).await.unwrap();

    let received = fixture.server.wait_for(1);
    assert_eq!(
        rcpt_tos(&received[0]),
        [
            "ann@example.com",
            "boss@example.com",
            "controller@example.com",
            "audit@example.com",
            "archive@example.com"
        ]
    );
    let parsed = parse_message(&received[0].raw);
    assert_eq!(parsed.to, ["ann@example.com"]);
    assert_eq!(parsed.cc, ["boss@example.com", "controller@example.com"]);
    assert!(parsed.bcc.is_empty());
    assert_eq!(parsed.reply_to, ["help@example.com"]);
    let raw = String::from_utf8_lossy(&received[0].raw);
    assert!(
        !raw.contains("archive@") && !raw.contains("audit@"),
        "blind copies are only in the envelope"
    );
}

const LOGO: &[u8] = b"\x89PNG\r\n\x1a\n logo pixels";
const CHART: &[u8] = b"\x89PNG\r\n\x1a\n chart pixels";

/// An HTML report with a chart embedded as a `data:` URL, as the HTML renderer writes it.
fn chart_delivery(ann: Recipient) -> Delivery {
    let chart = base64::engine::general_purpose::STANDARD.encode(CHART);
    let html = format!(
        "<html><body><h1>Umsatz</h1><img alt=\"chart\" src=\"data:image/png;base64,{chart}\"></body></html>"
    );
    let mut d = delivery(
        ann,
        vec![
            document(OutputFormat::Html, "Umsatz.html", html),
            document(OutputFormat::Pdf, "Umsatz.pdf", pdf_bytes()),
        ],
    );
    Arc::make_mut(&mut d.placeholders).set("Region", "Zürich & Łódź");
    d
}

#[tokio::test]
async fn html_template_shows_logo_and_chart_inline() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, LOGO).unwrap();
    let template = dir.path().join("report.html");
    std::fs::write(
        &template,
        "<html><body><img src=\"{{ images.logo }}\">\n\
         <p>Dear {{ recipient.attributes.salutation }} {{ recipient.name }},</p>\n\
         <p>{{ Region }}</p>\n{{ report_html }}\n\
         {% if hub_link %}<a href=\"{{ hub_link }}\">download</a>{% endif %}</body></html>",
    )
    .unwrap();
    let options = html_options()
        .with_subject("{report.name} for {recipient.salutation} {recipient.name}")
        .with_body("Dear {recipient.salutation} {recipient.name}, the report is attached.")
        .with_body_template(&template)
        .with_logo(&logo);
    let channel = fixture.channel(options, Security::Starttls);
    let mut ann = recipient("ann");
    ann.name = "Ann <b>&</b> Co".into();
    ann.attributes.insert("salutation".into(), "Dr.".into());

    channel.deliver(&chart_delivery(ann)).await.unwrap();

    let parsed = parse_message(&fixture.server.wait_for(1)[0].raw);
    assert_eq!(parsed.subject, format!("{SUBJECT} for Dr. Ann <b>&</b> Co"));
    let html = parsed.html.expect("an HTML body");
    assert!(
        html.contains("<p>Dear Dr. Ann &lt;b&gt;&amp;&lt;&#x2f;b&gt; Co,</p>"),
        "values are HTML-escaped: {html}"
    );
    assert!(html.contains("<p>Zürich &amp; Łódź</p>"), "{html}");
    assert!(
        html.contains("<h1>Umsatz</h1>"),
        "the report's HTML is kept: {html}"
    );
    assert!(html.contains("<img src=\"cid:logo\">"), "{html}");
    assert!(html.contains("src=\"cid:image-1\""), "{html}");
    assert!(!html.contains("data:image"), "{html}");
    assert!(
        !html.contains("download"),
        "no hub link when the documents fit"
    );
    assert_eq!(
        parsed.text.unwrap().trim_end(),
        "Dear Dr. Ann <b>&</b> Co, the report is attached.",
        "the plain-text alternative is not escaped"
    );

    let mut inline = parsed.inline.clone();
    inline.sort_by(|a, b| b.content_id.cmp(&a.content_id));
    let summary: Vec<(&str, &str, &[u8], &str)> = inline
        .iter()
        .map(|p| {
            (
                p.content_id.as_str(),
                p.media_type.as_str(),
                p.bytes.as_slice(),
                p.parent.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("logo", "image/png", LOGO, "related"),
            ("image-1", "image/png", CHART, "related"),
        ]
    );
    assert_eq!(
        parsed.attachments,
        [("Umsatz.pdf".to_string(), pdf_bytes())],
        "the images are inline parts, not attachments"
    );
}

#[tokio::test]
async fn logo_is_left_out_when_the_body_does_not_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, LOGO).unwrap();
    let outbox = dir.path().join("outbox");
    let options = html_options().with_logo(&logo).with_pickup(&outbox);
    let channel = EmailChannel::new(options).unwrap();

    channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();

    let raw = std::fs::read(&eml_files(&outbox)[0]).unwrap();
    assert!(parse_message(&raw).inline.is_empty());
    assert_report_message(&raw, "ann@example.com");
}

#[tokio::test]
async fn text_template_is_not_escaped_and_unknown_names_fail() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("body.txt");
    std::fs::write(
        &template,
        "Hello {{ recipient.name }},\n{% for k, v in recipient.attributes|items %}{{ k }}={{ v }}\n{% endfor %}",
    )
    .unwrap();
    let options = EmailOptions::new(FROM)
        .with_body_template(&template)
        .with_pickup(dir.path().join("outbox"));
    let channel = EmailChannel::new(options.clone()).unwrap();
    let mut ann = recipient("ann");
    ann.name = "Ann & <Co>".into();
    ann.attributes.insert("team".into(), "R&D".into());

    channel.deliver(&report_delivery(ann)).await.unwrap();

    let raw = std::fs::read(&eml_files(&dir.path().join("outbox"))[0]).unwrap();
    let text = parse_message(&raw).text.unwrap().replace("\r\n", "\n");
    assert_eq!(text.trim_end(), "Hello Ann & <Co>,\nteam=R&D");

    std::fs::write(&template, "Hello {{ recipent.name }}").unwrap();
    let channel = EmailChannel::new(options.clone()).unwrap();
    let err = channel
        .deliver(&report_delivery(recipient("bob")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("body.txt"), "{err}");

    std::fs::write(&template, "{% if %}").unwrap();
    let err = EmailChannel::new(options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("body.txt line 1"), "{err}");
}

// ---- pace and connections -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_rate_is_limited_per_server() {
    let fixture = Fixture::start(SmtpMode::Plain);
    let smtp = SmtpOptions::new("127.0.0.1")
        .with_port(fixture.server.port)
        .with_security(Security::None)
        .with_credentials(
            &fixture.user,
            secret_file(fixture.secrets.path(), &fixture.password),
        )
        .with_max_per_minute(600); // one message every 100 ms
    // Two channels on the same server share its pace.
    let a = EmailChannel::new(html_options().with_smtp(smtp.clone())).unwrap();
    let b = EmailChannel::new(html_options().with_subject("B").with_smtp(smtp)).unwrap();
    let deliveries: Vec<Delivery> = (0..6)
        .map(|i| report_delivery(recipient(&format!("r{i}"))))
        .collect();
    let started = Instant::now();

    let sends = deliveries.iter().enumerate().map(|(i, d)| {
        if i % 2 == 0 {
            a.deliver(d)
        } else {
            b.deliver(d)
        }
    });
    for result in futures::future::join_all(sends).await {
        result.unwrap();
    }

    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500),
        "6 messages at 10 per second take at least 0.5 s, took {elapsed:?}"
    );
    assert_eq!(fixture.server.wait_for(6).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reuses_a_capped_number_of_connections() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let smtp = fixture
        .smtp(Security::Starttls, &fixture.password)
        .with_max_connections(2);
    let channel = |subject: &str| -> Arc<dyn Channel> {
        let options = html_options().with_subject(subject).with_smtp(smtp.clone());
        Arc::new(EmailChannel::new(options).unwrap())
    };
    let channels = vec![
        TaskChannel::new(channel("A")).named("mail-a"),
        TaskChannel::new(channel("B")).named("mail-b"),
    ];
    let recipients: Vec<Recipient> = (0..12).map(|i| recipient(&format!("r{i}"))).collect();

    let summary = Engine::new(EngineOptions::default())
        .run(&task_with(channels, recipients))
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 12, "{}", summary.human());
    assert_eq!(fixture.server.wait_for(24).len(), 24);
    let connections = fixture.server.stats().connections;
    assert!(
        (1..=2).contains(&connections),
        "24 messages over at most 2 connections, shared by both channels: {connections}"
    );
}

// ---- size limit -----------------------------------------------------------------------------

#[tokio::test]
async fn too_large_message_fails_naming_size_and_limit() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let smtp = fixture
        .smtp(Security::Starttls, &fixture.password)
        .with_max_message_bytes(4_000);
    let channel = EmailChannel::new(html_options().with_smtp(smtp)).unwrap();
    assert_eq!(channel.capabilities().max_bytes, Some(4_000));

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Delivery, "{err}");
    let text = err.to_string();
    assert!(text.contains("4000 bytes"), "names the limit: {text}");
    assert!(text.contains("hub_link"), "names the fallback: {text}");
    assert!(text.contains("ann"), "names the recipient: {text}");
    let size: u64 = text
        .split("the message is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("names the size: {text}"));
    assert!(size > 4_000, "{text}");
    assert_eq!(fixture.server.stats().connections, 0, "nothing was sent");

    // A small message on the same channel still goes.
    let small = delivery(
        recipient("bob"),
        vec![
            document(OutputFormat::Html, "r.html", HTML),
            document(OutputFormat::Csv, "r.csv", "a;b\n"),
        ],
    );
    channel.deliver(&small).await.unwrap();
    assert_eq!(fixture.server.wait_for(1).len(), 1);
}

/// The hub copies of the usual delivery to `ann`, as a hub at `HUB_BASE` names them: what
/// the e-mail links to must be what the hub serves, and only to ann.
async fn ann_hub_copies(dir: &Path) -> (Hub, Vec<String>) {
    let hub = Hub::open(
        HubOptions::new(dir.join("index.sqlite"), dir.join("documents")).with_link_base(HUB_BASE),
    )
    .unwrap();
    let receipt = hub
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    assert_eq!(receipt.locations.len(), 2);
    (hub, receipt.locations)
}

/// Fetches what a link points to, as ann and as someone else.
async fn follow(hub: &Hub, link: &str) -> Vec<u8> {
    let id = link.strip_prefix(&format!("{HUB_BASE}/")).unwrap();
    assert!(hub.fetch("bob", id).await.is_err(), "only ann may fetch it");
    hub.fetch("ann", id).await.unwrap().to_vec()
}

const HUB_BASE: &str = "https://hub.example.com/files";

#[tokio::test]
async fn too_large_message_links_to_the_hub_copy() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let dir = tempfile::tempdir().unwrap();
    let (hub, copies) = ann_hub_copies(dir.path()).await;
    let smtp = fixture
        .smtp(Security::Starttls, &fixture.password)
        .with_max_message_bytes(4_000);
    let options = html_options()
        .with_body("Your report {report.name}.")
        .with_hub_link(format!("{HUB_BASE}/"))
        .with_smtp(smtp);
    let channel = EmailChannel::new(options).unwrap();
    assert_eq!(channel.capabilities().max_bytes, None);

    let receipt = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();

    let received = fixture.server.wait_for(1);
    assert_eq!(received.len(), 1);
    let arrived = received[0].raw.len() as u64;
    assert!(
        (receipt.bytes..=receipt.bytes + 2).contains(&arrived),
        "the receipt counts the message (the server may add a final line break): {} vs {arrived}",
        receipt.bytes
    );
    assert!(receipt.bytes <= 4_000);
    let parsed = parse_message(&received[0].raw);
    assert!(parsed.attachments.is_empty(), "no attachments");
    let html = parsed.html.unwrap();
    assert!(
        html.contains(HTML.trim_end_matches("</body></html>")),
        "{html}"
    );
    let text = parsed.text.unwrap();
    assert!(
        text.starts_with(&format!("Your report {SUBJECT}.")),
        "{text}"
    );
    // Each document's link is its copy in the hub, and following it gives its bytes.
    let documents = report_delivery(recipient("ann")).documents;
    for (copy, document) in copies.iter().zip(&documents) {
        assert!(html.contains(&format!("<a href=\"{copy}\">")), "{html}");
        assert!(
            text.contains(&format!("{}: {copy}", document.file_name)),
            "{text}"
        );
        assert_eq!(follow(&hub, copy).await, document.bytes.to_vec());
    }
}

#[tokio::test]
async fn a_server_refusing_the_size_gets_the_link_or_a_clear_error() {
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            size_limit: Some(5_000),
            ..SmtpFaults::default()
        },
    );
    let plain = fixture.channel(html_options(), Security::Starttls);
    let err = plain
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Delivery, "{err}");
    assert!(err.to_string().contains("552"), "{err}");
    assert!(fixture.server.received().is_empty());

    let linking = fixture.channel(html_options().with_hub_link(HUB_BASE), Security::Starttls);
    linking
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let received = fixture.server.wait_for(1);
    assert_eq!(received.len(), 1);
    let parsed = parse_message(&received[0].raw);
    assert!(parsed.attachments.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let (_hub, copies) = ann_hub_copies(dir.path()).await;
    let html = parsed.html.unwrap();
    assert!(copies.iter().all(|c| html.contains(c.as_str())), "{html}");
}

#[test]
fn hub_link_needs_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = EmailOptions::new(FROM).with_pickup(dir.path());
    options.fallback = mad_deliver::email::Fallback::HubLink;
    let err = EmailChannel::new(options.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("hub_link_base"), "{err}");

    options.hub_link_base = Some("ftp://hub.example.com".into());
    let err = EmailChannel::new(options).unwrap_err();
    assert!(err.to_string().contains("http"), "{err}");
}

#[tokio::test]
async fn conformance_with_a_size_limit() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let smtp = fixture
        .smtp(Security::Starttls, &fixture.password)
        .with_max_message_bytes(64 * 1024);
    let channel = EmailChannel::new(EmailOptions::new(FROM).with_smtp(smtp)).unwrap();
    let harness = SmtpHarness {
        channel: Arc::new(channel),
        fixture,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
}

// ---- temporary and permanent failures -------------------------------------------------------

fn retrying_engine() -> Engine {
    Engine::new(EngineOptions {
        delivery_retries: 3,
        retry_delay: Duration::from_millis(50),
        ..EngineOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_is_retried_by_the_engine_and_arrives_once() {
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            defer_data: 1,
            ..SmtpFaults::default()
        },
    );
    let channel = Arc::new(fixture.channel(html_options(), Security::Starttls));

    let summary = retrying_engine()
        .run(&task(channel, &["ann"]))
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    let stats = fixture.server.stats();
    assert_eq!(stats.deferred, 1);
    assert_eq!(stats.data, 2, "one refused attempt, one accepted");
    let received = fixture.server.wait_for(1);
    assert_eq!(received.len(), 1);
    assert_report_message(&received[0].raw, "ann@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_550_is_recorded_as_permanent_without_retries() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = Arc::new(fixture.channel(html_options(), Security::Starttls));
    let refused = Recipient::new("x", "X").with_email("reject-x@example.com");
    let recipients = vec![recipient("ann"), refused];

    let summary = retrying_engine()
        .run(&task_with(vec![TaskChannel::new(channel)], recipients))
        .await
        .unwrap();

    let x = summary.recipients.iter().find(|r| r.id == "x").unwrap();
    assert_eq!(x.status, Status::Failed);
    assert_eq!(x.errors[0].kind, ErrorKind::Delivery);
    assert!(
        x.errors[0].message.contains("550"),
        "{}",
        x.errors[0].message
    );
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(
        fixture.server.stats().rcpt.get("reject-x@example.com"),
        Some(&1),
        "a permanent refusal is not tried again"
    );
}

#[tokio::test]
async fn a_connection_cut_mid_message_is_transient_and_not_delivered() {
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            drop_data: 1,
            ..SmtpFaults::default()
        },
    );
    let channel = fixture.channel(html_options(), Security::Starttls);

    let err = channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(fixture.server.stats().dropped, 1);
    assert!(fixture.server.received().is_empty(), "nothing half sent");

    // The cut connection is not reused: the next message goes over a new one, intact.
    channel
        .deliver(&report_delivery(recipient("ann")))
        .await
        .unwrap();
    let received = fixture.server.wait_for(1);
    assert_eq!(received.len(), 1);
    assert_report_message(&received[0].raw, "ann@example.com");
    assert_eq!(fixture.server.stats().connections, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_retries_cut_connections_and_delivers_each_message_once() {
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            drop_data: 2,
            ..SmtpFaults::default()
        },
    );
    let channel = Arc::new(fixture.channel(html_options(), Security::Starttls));
    let ids = ["ann", "bob", "cyd"];

    let summary = retrying_engine().run(&task(channel, &ids)).await.unwrap();

    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    assert_eq!(fixture.server.stats().dropped, 2);
    let received = fixture.server.wait_for(3);
    let mut to: Vec<String> = received
        .iter()
        .map(|m| {
            assert_report_message(&m.raw, &parse_message(&m.raw).to[0]);
            parse_message(&m.raw).to.remove(0)
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["ann@example.com", "bob@example.com", "cyd@example.com"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_too_slow_to_confirm_gets_the_message_once_not_again() {
    // The server keeps the message at once but confirms it only after the channel gave up:
    // sending again would make a second copy.
    let fixture = Fixture::with_faults(
        SmtpMode::Starttls,
        SmtpFaults {
            slow_data: 1,
            slow_seconds: 3.0,
            ..SmtpFaults::default()
        },
    );
    let channel: Arc<dyn Channel> = Arc::new(
        EmailChannel::new(
            html_options().with_smtp(
                fixture
                    .smtp(Security::Starttls, &fixture.password)
                    .with_timeout_secs(1),
            ),
        )
        .unwrap(),
    );
    let task = task(channel, &["ann"]);
    let log = Arc::new(MemoryRunLog::new());
    let run = RunInfo::at("run-slow", 1_780_000_000.0);

    let summary = retrying_engine()
        .with_run_log(log.clone())
        .run_as(&task, run.clone())
        .await
        .unwrap();

    assert_eq!(summary.counts.failed, 1, "{}", summary.human());
    let error = &summary.recipients[0].errors[0];
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert!(
        error.message.contains("may have arrived"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("--resend-interrupted"),
        "{}",
        error.message
    );
    assert_eq!(fixture.server.wait_for(1).len(), 1);
    assert_eq!(
        fixture.server.stats().data,
        1,
        "not sent again by the retries"
    );

    // Resuming the run does not send it again either: its outcome is still unknown.
    let again = retrying_engine()
        .with_run_log(log)
        .run_as(&task, run)
        .await
        .unwrap();
    assert_eq!(again.counts.failed, 1, "{}", again.human());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fixture.server.stats().data, 1);
    assert_eq!(fixture.server.received().len(), 1);
}

// ---- message ids and confirmation -----------------------------------------------------------

#[tokio::test]
async fn message_ids_follow_the_delivery() {
    let fixture = Fixture::start(SmtpMode::Starttls);
    let channel = fixture.channel(html_options(), Security::Starttls);
    let first = report_delivery(recipient("ann"));
    let mut next_run = report_delivery(recipient("ann"));
    next_run.run_id = "run-2".into();

    let a = channel.deliver(&first).await.unwrap();
    let b = channel.deliver(&first).await.unwrap();
    let c = channel.deliver(&next_run).await.unwrap();

    let ids: Vec<String> = fixture
        .server
        .wait_for(3)
        .iter()
        .map(|m| format!("<{}>", parse_message(&m.raw).message_id))
        .collect();
    assert_eq!(ids, [&*a.locations[0], &b.locations[0], &c.locations[0]]);
    assert_eq!(ids[0], ids[1], "a duplicate carries the same Message-ID");
    assert_ne!(ids[0], ids[2]);
    assert!(ids[0].ends_with("@example.com>"), "{}", ids[0]);

    let err = channel.confirm(&first).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[tokio::test]
async fn pickup_confirms_complete_messages_only() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let channel = EmailChannel::new(html_options().with_pickup(&outbox)).unwrap();
    let d = report_delivery(recipient("ann"));
    assert_eq!(channel.confirm(&d).await.unwrap(), None);

    let receipt = channel.deliver(&d).await.unwrap();
    assert_eq!(channel.confirm(&d).await.unwrap(), Some(receipt.clone()));
    assert_eq!(
        channel.deliver(&d).await.unwrap(),
        receipt,
        "no second message"
    );
    assert_eq!(eml_files(&outbox).len(), 1);

    // A message cut short is not complete: it is not confirmed, and delivering replaces it.
    let path = &eml_files(&outbox)[0];
    let raw = std::fs::read(path).unwrap();
    std::fs::write(path, &raw[..raw.len() - 40]).unwrap();
    assert_eq!(channel.confirm(&d).await.unwrap(), None);
    assert_eq!(
        channel.deliver(&d).await.unwrap().locations,
        receipt.locations
    );
    assert_report_message(&std::fs::read(path).unwrap(), "ann@example.com");

    // Another channel's message for the same delivery is a file of its own.
    let other =
        EmailChannel::new(html_options().with_subject("Other").with_pickup(&outbox)).unwrap();
    assert_eq!(other.confirm(&d).await.unwrap(), None);
    other.deliver(&d).await.unwrap();
    assert_eq!(eml_files(&outbox).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_confirms_instead_of_sending_twice() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let channel: Arc<dyn Channel> =
        Arc::new(EmailChannel::new(html_options().with_pickup(&outbox)).unwrap());
    let task = task(channel, &["ann", "bob"]);
    let run = RunInfo::at("run-7", 1_780_000_000.0);
    Engine::new(EngineOptions::default())
        .run_as(&task, run.clone())
        .await
        .unwrap();
    assert_eq!(eml_files(&outbox).len(), 2);

    // A fresh run log where both deliveries were begun and never finished: the process died.
    let log = Arc::new(MemoryRunLog::new());
    log.start_run(&run, &task.name).await.unwrap();
    for id in ["ann", "bob"] {
        log.begin(&DeliveryKey {
            run_id: run.id.clone(),
            recipient: id.into(),
            report: SUBJECT.into(),
            channel: "email".into(),
        })
        .await
        .unwrap();
    }
    std::fs::remove_file(&eml_files(&outbox)[0]).unwrap();

    let summary = Engine::new(EngineOptions::default())
        .with_run_log(log)
        .run_as(&task, run)
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    assert_eq!(summary.counts.resumed, 1, "one confirmed, one sent again");
    assert_eq!(eml_files(&outbox).len(), 2);
}

#[test]
fn debug_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = throwaway("pw");
    let smtp = SmtpOptions::new("127.0.0.1")
        .with_credentials("reports", secret_file(dir.path(), &password))
        .with_max_per_minute(60)
        .with_max_message_bytes(10_000);
    let options = html_options().with_smtp(smtp);
    let channel = EmailChannel::new(options.clone()).unwrap();
    let shown = format!("{channel:?} {options:?}");
    assert!(!shown.contains(&password), "{shown}");
    assert!(shown.contains("max_per_minute"), "{shown}");
}
