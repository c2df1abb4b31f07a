//! The e-mail channel against a real SMTP server (aiosmtpd, started by each test) and a pickup
//! folder, with every message read back by an independent MIME parser.

mod conformance;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Engine, EngineOptions, ErrorKind, Field, FieldKind, OnEmpty,
    OutputFormat, Recipient, Registry, RenderJob, Renderer, ReportDef, Schema, Status, Table, Task,
    TaskChannel, Value,
};
use mad_deliver::email::{BodyFormat, EmailChannel, EmailOptions, Security, SmtpOptions};

use conformance::{ArrivalLog, Arrived, Harness};
use support::{
    HTML, SUBJECT, SmtpConfig, SmtpMode, SmtpServer, TestCertificates, closed_port, delivery,
    document, parse_message, pdf_bytes, recipient, report_delivery, secret_file, throwaway,
};

const FROM: &str = "Reports <reports@example.com>";

/// A server and the throwaway credentials it accepts.
struct Fixture {
    certificates: TestCertificates,
    secrets: tempfile::TempDir,
    user: String,
    password: String,
    server: SmtpServer,
}

impl Fixture {
    fn start(mode: SmtpMode, reject_auth: u32) -> Self {
        let certificates = TestCertificates::generate();
        let user = throwaway("user");
        let password = throwaway("pw");
        let server = SmtpServer::start(SmtpConfig {
            mode,
            certificates: (mode != SmtpMode::Plain).then_some(&certificates),
            user: &user,
            password: &password,
            reject_auth,
        });
        Fixture {
            certificates,
            secrets: tempfile::tempdir().unwrap(),
            user,
            password,
            server,
        }
    }

    fn smtp(&self, security: Security, password: &str) -> SmtpOptions {
        SmtpOptions::new("127.0.0.1")
            .with_port(self.server.port)
            .with_security(security)
            .with_credentials(&self.user, secret_file(self.secrets.path(), password))
            .with_ca_file(&self.certificates.ca)
            .with_timeout_secs(20)
    }

    fn channel(&self, options: EmailOptions, security: Security) -> EmailChannel {
        EmailChannel::new(options.with_smtp(self.smtp(security, &self.password))).unwrap()
    }
}

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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
    let fixture = Fixture::start(mode, 0);
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
    let fixture = Fixture::start(SmtpMode::Plain, 0);
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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
    let fixture = Fixture::start(SmtpMode::Tls, 0);
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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
        .with_recipients(ids.iter().map(|id| recipient(id)))
        .with_channel(TaskChannel::new(channel))
        .with_on_empty(OnEmpty::Skip);
    task.renderers = renderers;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_login_and_delivers_the_rest() {
    let fixture = Fixture::start(SmtpMode::Starttls, 1);
    let channel = Arc::new(fixture.channel(html_options(), Security::Starttls));
    let ids = ["ann", "bob", "cyd", "dan"];

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(EngineOptions::default()).run(&task(channel, &ids)),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    let failed: Vec<_> = summary
        .recipients
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{}", summary.human());
    assert_eq!(failed[0].errors[0].kind, ErrorKind::Unauthenticated);
    assert_eq!(failed[0].errors[0].channel.as_deref(), Some("email"));
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    let received = fixture.server.wait_for(3);
    assert_eq!(received.len(), 3);
    for message in &received {
        let to = parse_message(&message.raw).to.remove(0);
        assert_ne!(to, format!("{}@example.com", failed[0].id));
        assert_report_message(&message.raw, &to);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_with_a_wrong_password_fails_everyone_cleanly() {
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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

#[test]
fn a_channel_outliving_its_runtime_drops_cleanly() {
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
    let fixture = Fixture::start(SmtpMode::Starttls, 0);
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
