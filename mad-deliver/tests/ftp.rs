//! The FTP channel against a real FTP server (pyftpdlib, started by each test, plain or with
//! explicit TLS), with every file read back from the server's folder with std::fs.

mod conformance;
mod remote;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Delivery, Engine, EngineOptions, ErrorKind, Field, FieldKind, OnEmpty,
    OutputFormat, Registry, RenderJob, Renderer, ReportDef, Schema, Table, Task, TaskChannel,
    Value,
};
use mad_deliver::folder::IfExists;
use mad_deliver::ftp::{FtpChannel, FtpOptions, Security};

use conformance::{ArrivalLog, Arrived, Harness};
use remote::{
    FtpFixture as Fixture, FtpMode, arrived_below, big_bytes, files_below, pdf_delivery,
    temporary_files,
};
use support::{closed_port, delivery, document, pdf_bytes, recipient, the_one_refused, throwaway};

// ---- conformance ----------------------------------------------------------------------------

struct FtpHarness {
    fixture: Fixture,
    channel: Arc<FtpChannel>,
    log: ArrivalLog,
}

impl Harness for FtpHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        self.log.update(arrived_below(&self.fixture.reports()))
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.fixture.password.clone()]
    }
}

#[tokio::test]
async fn ftps_conformance() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let harness = FtpHarness {
        channel: Arc::new(fixture.channel()),
        fixture,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
    assert!(temporary_files(harness.fixture.server.root.path()).is_empty());
}

// ---- happy paths ----------------------------------------------------------------------------

async fn happy_path(mode: FtpMode) {
    let fixture = Fixture::start(mode);
    let channel = fixture.channel();
    let csv = "Region;Umsatz\r\nZürich;1\n".as_bytes().to_vec();
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "Umsatz Zürich.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "Umsatz Zürich.csv", csv.clone()),
        ],
    );

    let receipt = channel.deliver(&d).await.unwrap();

    let dir = fixture.reports().join("ann");
    assert_eq!(
        std::fs::read(dir.join("Umsatz Zürich.pdf")).unwrap(),
        pdf_bytes()
    );
    assert_eq!(
        std::fs::read(dir.join("Umsatz Zürich.csv")).unwrap(),
        csv,
        "binary mode: line endings arrive unchanged"
    );
    assert_eq!(receipt.channel, "ftp");
    assert_eq!(receipt.bytes, d.bytes());
    let port = fixture.server.port;
    assert_eq!(
        receipt.locations,
        [
            format!("ftp://127.0.0.1:{port}/reports/ann/Umsatz Zürich.pdf"),
            format!("ftp://127.0.0.1:{port}/reports/ann/Umsatz Zürich.csv"),
        ]
    );
    assert!(temporary_files(fixture.server.root.path()).is_empty());
}

#[tokio::test]
async fn explicit_tls_uploads_every_file_intact() {
    happy_path(FtpMode::ExplicitTls).await;
}

#[tokio::test]
async fn plain_ftp_on_this_machine_uploads_every_file_intact() {
    happy_path(FtpMode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_share_a_few_connections() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let channel =
        FtpChannel::new(fixture.options(&fixture.password).with_max_connections(2)).unwrap();
    let deliveries: Vec<Delivery> = (0..6)
        .map(|i| pdf_delivery(&format!("r{i}"), "report.pdf"))
        .collect();

    let results = futures::future::join_all(deliveries.iter().map(|d| channel.deliver(d))).await;
    for result in results {
        result.unwrap();
    }
    for more in &deliveries[..2] {
        let again = delivery(
            (*more.recipient).clone(),
            vec![document(OutputFormat::Csv, "more.csv", "x")],
        );
        channel.deliver(&again).await.unwrap();
    }

    assert_eq!(files_below(&fixture.reports()).len(), 8);
    let connections = fixture.server.connections();
    assert!(
        (1..=2).contains(&connections),
        "at most max_connections, reused afterwards: {connections}"
    );
}

#[tokio::test]
async fn a_relative_path_starts_in_the_login_folder() {
    let fixture = Fixture::start(FtpMode::Plain);
    let options = fixture
        .options(&fixture.password)
        .with_path("reports/monthly")
        .with_subfolder("{run.date}/{recipient.id}");
    std::fs::create_dir(fixture.reports().join("monthly")).unwrap();
    let channel = FtpChannel::new(options).unwrap();

    channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();

    assert_eq!(
        files_below(&fixture.reports()),
        ["monthly/2026-01-31/ann/r.pdf"]
    );
}

#[tokio::test]
async fn recipient_values_cannot_leave_the_base_folder() {
    let fixture = Fixture::start(FtpMode::Plain);
    let channel = fixture.channel();
    let mut evil = recipient("../..");
    evil.id = "../../etc".to_string();
    let d = delivery(
        evil,
        vec![document(OutputFormat::Pdf, "../../passwd", pdf_bytes())],
    );

    channel.deliver(&d).await.unwrap();

    let all = files_below(fixture.server.root.path());
    assert_eq!(all, ["reports/_._etc/_._passwd"]);
}

// ---- if_exists and confirm ------------------------------------------------------------------

#[tokio::test]
async fn if_exists_fail_overwrite_and_keep() {
    let fixture = Fixture::start(FtpMode::Plain);
    let options = |policy| fixture.options(&fixture.password).with_if_exists(policy);
    let target = fixture.reports().join("ann/r.pdf");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, "old").unwrap();
    let d = pdf_delivery("ann", "r.pdf");

    let err = FtpChannel::new(options(IfExists::Fail))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"old");

    let receipt = FtpChannel::new(options(IfExists::Keep))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(receipt.bytes, 0);
    assert_eq!(receipt.locations.len(), 1);
    assert_eq!(std::fs::read(&target).unwrap(), b"old");

    FtpChannel::new(options(IfExists::Overwrite))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), pdf_bytes());

    let err = FtpChannel::new(options(IfExists::Version)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("version"), "{err}");
    assert!(temporary_files(fixture.server.root.path()).is_empty());
}

#[tokio::test]
async fn two_recipients_never_share_a_file_in_one_run() {
    let fixture = Fixture::start(FtpMode::Plain);
    let ftp = FtpChannel::new(
        fixture
            .options(&fixture.password)
            .with_subfolder("shared")
            .with_if_exists(IfExists::Overwrite),
    )
    .unwrap();
    support::second_recipient_is_refused(&ftp).await;
    let kept = std::fs::read_to_string(fixture.reports().join("shared/Same Name.csv")).unwrap();
    assert_eq!(kept, "rows of east\n");
    assert!(temporary_files(fixture.server.root.path()).is_empty());
}

#[tokio::test]
async fn confirm_finds_a_complete_delivery_only() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let channel = fixture.channel();
    let done = pdf_delivery("ann", "r.pdf");
    let receipt = channel.deliver(&done).await.unwrap();

    let confirmed = channel.confirm(&done).await.unwrap().expect("delivered");
    assert_eq!(confirmed.locations, receipt.locations);
    assert_eq!(confirmed.bytes, receipt.bytes);

    assert_eq!(
        channel
            .confirm(&pdf_delivery("bob", "r.pdf"))
            .await
            .unwrap(),
        None
    );
    std::fs::write(fixture.reports().join("ann/r.pdf"), "half").unwrap();
    assert_eq!(
        channel.confirm(&done).await.unwrap(),
        None,
        "a file of the wrong size is not a delivery"
    );
}

// ---- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_is_unauthenticated_and_never_shown() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let wrong = throwaway("wrong-pw");
    let options = fixture.options(&wrong);
    let channel = FtpChannel::new(options.clone()).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("ftp"));
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
    assert!(files_below(&fixture.reports()).is_empty());
}

#[tokio::test]
async fn a_cut_data_connection_is_transient_and_leaves_nothing() {
    let fixture = Fixture::start_with(FtpMode::ExplicitTls, |c| {
        c.drop_after = 100_000;
        c.drop_count = 1;
    });
    let channel = fixture.channel();
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Csv, "big.csv", big_bytes())],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert!(err.kind().is_retryable(), "{err:?}");
    assert!(
        files_below(fixture.server.root.path()).is_empty(),
        "neither the file nor its temporary part is left: {:?}",
        files_below(fixture.server.root.path())
    );

    channel.deliver(&d).await.unwrap();
    assert_eq!(
        std::fs::read(fixture.reports().join("ann/big.csv")).unwrap(),
        big_bytes()
    );
}

#[tokio::test]
async fn untrusted_certificate_fails_without_sending() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let mut options = fixture.options(&fixture.password);
    options.ca_file = None;
    let channel = FtpChannel::new(options).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Delivery, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");
    assert!(files_below(&fixture.reports()).is_empty());
}

#[tokio::test]
async fn plain_text_to_a_tls_server_is_refused_clearly() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let mut options = fixture.options(&fixture.password);
    options.security = Security::None;
    options.ca_file = None;
    let channel = FtpChannel::new(options).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert!(!err.kind().is_retryable(), "{err}");
    assert!(!err.to_string().contains(&fixture.password), "{err}");
}

#[tokio::test]
async fn a_missing_base_folder_is_not_found() {
    let fixture = Fixture::start(FtpMode::Plain);
    let options = fixture.options(&fixture.password).with_path("/nowhere");
    let channel = FtpChannel::new(options).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("/nowhere"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_transient_quickly() {
    let options = FtpOptions::new("127.0.0.1", "u")
        .with_port(closed_port())
        .with_security(Security::None)
        .with_timeout_secs(10);
    let channel = FtpChannel::new(options).unwrap();
    let started = Instant::now();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let options = FtpOptions::new("127.0.0.1", "u")
        .with_port(listener.local_addr().unwrap().port())
        .with_security(Security::None)
        .with_timeout_secs(1);
    let channel = FtpChannel::new(options).unwrap();
    let started = Instant::now();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[test]
fn inconsistent_options_are_refused_when_built() {
    let remote_plain = FtpOptions::new("ftp.example.com", "u").with_security(Security::None);
    let err = FtpChannel::new(remote_plain.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("allow_insecure_remote"), "{err}");
    assert!(FtpChannel::new(remote_plain.with_allow_insecure_remote(true)).is_ok());

    let injected = FtpOptions::new("127.0.0.1", "u\r\nDELE x");
    assert_eq!(
        FtpChannel::new(injected).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );
    let climbing = FtpOptions::new("127.0.0.1", "u").with_subfolder("../{recipient.id}");
    assert_eq!(
        FtpChannel::new(climbing).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );

    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let literal = serde_json::json!({
        "host": "127.0.0.1", "username": "u", "password": "hunter2-literal"
    });
    let err = registry
        .build_channel("ftp", &literal, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(!err.to_string().contains("hunter2-literal"), "{err}");

    let typo = serde_json::json!({ "host": "127.0.0.1", "username": "u", "pasword": "env:X" });
    let err = registry
        .build_channel("ftp", &typo, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert!(err.to_string().contains("pasword"), "{err}");

    let relative_ca = serde_json::json!({
        "host": "127.0.0.1", "username": "u", "ca_file": "no-such-ca.pem"
    });
    let err = registry
        .build_channel("ftp", &relative_ca, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains(&*dir.path().join("no-such-ca.pem").to_string_lossy()),
        "ca_file is resolved against the definitions: {err}"
    );
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

fn task(channel: Arc<dyn Channel>, ids: &[&str], bytes: Vec<u8>) -> Task {
    let schema = Schema::new(vec![Field::new("Region", FieldKind::Text)]);
    let mut region = ColumnBuilder::default();
    region.push(Value::text("Zürich"));
    let table = Table::new(schema, vec![region.finish()]).unwrap();
    let mut report = ReportDef::new("Umsatz", "Umsatz für {recipient.name}");
    report.formats = vec![OutputFormat::Pdf];
    report.file_name = "Umsatz {recipient.id}".to_string();
    Task::new("monthly", Arc::new(TableSource::new("memory", table)))
        .with_report(report)
        .with_recipients(ids.iter().map(|id| recipient(id)))
        .with_channel(TaskChannel::new(channel))
        .with_renderer(Arc::new(FixedRenderer(OutputFormat::Pdf, bytes)))
        .with_on_empty(OnEmpty::Skip)
}

fn fast_retries() -> EngineOptions {
    EngineOptions {
        retry_delay: Duration::from_millis(50),
        ..EngineOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_login_and_delivers_the_rest() {
    let fixture = Fixture::start_with(FtpMode::ExplicitTls, |c| c.reject_logins = 1);
    let channel = Arc::new(fixture.channel());
    let ids = ["ann", "bob", "cyd", "dan"];

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(fast_retries()).run(&task(channel, &ids, pdf_bytes())),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    let refused = the_one_refused(&summary);
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    let files = files_below(&fixture.reports());
    assert_eq!(files.len(), 3, "{files:?}");
    for id in ids.iter().filter(|id| **id != refused.id) {
        let path = fixture.reports().join(id).join(format!("Umsatz {id}.pdf"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            pdf_bytes(),
            "{}",
            path.display()
        );
    }
    assert!(!summary.to_json().contains(&fixture.password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_retries_a_cut_upload_and_delivers_it_whole() {
    let fixture = Fixture::start_with(FtpMode::Plain, |c| {
        c.drop_after = 100_000;
        c.drop_count = 1;
    });
    let channel = Arc::new(fixture.channel());

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(fast_retries()).run(&task(channel, &["ann"], big_bytes())),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert!(
        fixture.server.connections() >= 2,
        "the first upload was cut and tried again"
    );
    assert_eq!(
        files_below(fixture.server.root.path()),
        ["reports/ann/Umsatz ann.pdf"]
    );
    assert_eq!(
        std::fs::read(fixture.reports().join("ann/Umsatz ann.pdf")).unwrap(),
        big_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_with_a_wrong_password_fails_everyone_cleanly() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let wrong = throwaway("wrong-pw");
    let channel = Arc::new(FtpChannel::new(fixture.options(&wrong)).unwrap());
    let ids = ["ann", "bob", "cyd"];

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::new(fast_retries()).run(&task(channel, &ids, pdf_bytes())),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    assert_eq!(summary.counts.failed, ids.len(), "{}", summary.human());
    for outcome in &summary.recipients {
        assert_eq!(outcome.errors[0].kind, ErrorKind::Unauthenticated);
    }
    assert!(!summary.to_json().contains(&wrong));
    assert!(files_below(&fixture.reports()).is_empty());
}

#[test]
fn a_channel_outliving_its_runtime_drops_cleanly() {
    let fixture = Fixture::start(FtpMode::ExplicitTls);
    let channel = fixture.channel();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    runtime
        .block_on(channel.deliver(&pdf_delivery("ann", "r.pdf")))
        .unwrap();
    drop(runtime);

    drop(channel); // its pooled connection was made in the runtime that is gone now
    assert_eq!(files_below(&fixture.reports()), ["ann/r.pdf"]);
}

/// A run log in which every delivery was started before and never finished, as after a crash.
#[derive(Debug, Default)]
struct CrashedRunLog {
    inner: mad_core::MemoryRunLog,
    seen: std::sync::Mutex<std::collections::HashSet<mad_core::DeliveryKey>>,
}

#[async_trait::async_trait]
impl mad_core::RunLog for CrashedRunLog {
    async fn start_run(
        &self,
        run: &mad_core::RunInfo,
        task: &str,
    ) -> mad_core::Result<mad_core::RunInfo> {
        self.inner.start_run(run, task).await
    }

    async fn begin(&self, key: &mad_core::DeliveryKey) -> mad_core::Result<mad_core::PriorAttempt> {
        self.inner.begin(key).await?;
        let first = self.seen.lock().unwrap().insert(key.clone());
        Ok(if first {
            mad_core::PriorAttempt::Interrupted
        } else {
            mad_core::PriorAttempt::None
        })
    }

    async fn finish(
        &self,
        key: &mad_core::DeliveryKey,
        outcome: &std::result::Result<mad_core::Receipt, mad_core::summary::Failure>,
    ) -> mad_core::Result<()> {
        self.inner.finish(key, outcome).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_confirms_what_arrived_and_uploads_the_rest_once() {
    let fixture = Fixture::start(FtpMode::Plain);
    let options = fixture
        .options(&fixture.password)
        .with_if_exists(IfExists::Fail);
    let channel = Arc::new(FtpChannel::new(options).unwrap());
    // The crashed attempt got ann's report onto the server, not bob's.
    channel
        .deliver(&pdf_delivery("ann", "Umsatz ann.pdf"))
        .await
        .unwrap();
    let engine = Engine::new(fast_retries()).with_run_log(Arc::new(CrashedRunLog::default()));

    let summary = engine
        .run(&task(channel, &["ann", "bob"], pdf_bytes()))
        .await
        .unwrap();

    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    assert_eq!(
        files_below(&fixture.reports()),
        ["ann/Umsatz ann.pdf", "bob/Umsatz bob.pdf"],
        "ann's file was confirmed, not uploaded again (if_exists = fail would have refused)"
    );
}
