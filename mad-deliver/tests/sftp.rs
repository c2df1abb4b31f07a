//! The SFTP channel against OpenSSH's sshd (key logins, started by each test with keys made
//! for it) and an in-process SSH server handing SFTP to OpenSSH's `sftp-server` (password
//! logins), with every file read back from the server's folder with std::fs.

mod conformance;
mod remote;
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    BuildContext, Channel, Engine, EngineOptions, ErrorKind, Field, FieldKind, OnEmpty,
    OutputFormat, Registry, RenderJob, Renderer, ReportDef, Schema, Table, Task, TaskChannel,
    Value,
};
use mad_deliver::folder::IfExists;
use mad_deliver::sftp::{SftpChannel, SftpOptions};

use conformance::{ArrivalLog, Arrived, Harness};
use remote::{
    CuttingProxy, KeyPair, PasswordSshServer, Sshd, arrived_below, big_bytes, files_below,
    pdf_delivery, temporary_files,
};
use support::{
    closed_port, delivery, document, pdf_bytes, recipient, secret_file, the_one_refused, throwaway,
};

/// sshd, and the secrets folder with its client key.
struct Fixture {
    sshd: Sshd,
    secrets: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Self {
        let sshd = Sshd::start();
        std::fs::create_dir(sshd.root.path().join("reports")).unwrap();
        Fixture {
            sshd,
            secrets: tempfile::tempdir().unwrap(),
        }
    }

    /// The server's `reports` folder on disk.
    fn reports(&self) -> PathBuf {
        self.sshd.root.path().join("reports")
    }

    /// Options logging in with the test's key into `reports/{recipient.id}`, the host key
    /// listed in a known_hosts file.
    fn options(&self) -> SftpOptions {
        let key = std::fs::read_to_string(&self.sshd.client_key.private).unwrap();
        SftpOptions::new("127.0.0.1", &self.sshd.user)
            .with_port(self.sshd.port)
            .with_private_key(secret_file(self.secrets.path(), &key))
            .with_known_hosts(self.sshd.known_hosts(self.secrets.path()))
            .with_path(format!(
                "{}/reports",
                self.sshd.remote_root.trim_end_matches('/')
            ))
            .with_subfolder("{recipient.id}")
            .with_timeout_secs(20)
    }

    fn channel(&self) -> SftpChannel {
        SftpChannel::new(self.options()).unwrap()
    }
}

// ---- conformance ----------------------------------------------------------------------------

struct SftpHarness {
    fixture: Fixture,
    channel: Arc<SftpChannel>,
    log: ArrivalLog,
}

impl Harness for SftpHarness {
    fn channel(&self) -> Arc<dyn Channel> {
        self.channel.clone()
    }

    fn arrived(&self) -> Vec<Arrived> {
        self.log.update(arrived_below(&self.fixture.reports()))
    }

    fn secrets(&self) -> Vec<String> {
        let key = std::fs::read_to_string(&self.fixture.sshd.client_key.private).unwrap();
        // A line from the middle of the private key: never shown anywhere.
        let lines: Vec<&str> = key.lines().collect();
        vec![lines[lines.len() / 2].to_string()]
    }
}

#[tokio::test]
async fn sftp_conformance() {
    let fixture = Fixture::start();
    let harness = SftpHarness {
        channel: Arc::new(fixture.channel()),
        fixture,
        log: ArrivalLog::default(),
    };
    conformance::run(&harness).await;
    assert!(temporary_files(harness.fixture.sshd.root.path()).is_empty());
}

// ---- happy paths ----------------------------------------------------------------------------

#[tokio::test]
async fn key_login_uploads_every_file_intact() {
    let fixture = Fixture::start();
    let channel = fixture.channel();
    let d = delivery(
        recipient("ann"),
        vec![
            document(OutputFormat::Pdf, "Umsatz Zürich.pdf", pdf_bytes()),
            document(OutputFormat::Csv, "big.csv", big_bytes()),
        ],
    );

    let receipt = channel.deliver(&d).await.unwrap();

    let dir = fixture.reports().join("ann");
    assert_eq!(
        std::fs::read(dir.join("Umsatz Zürich.pdf")).unwrap(),
        pdf_bytes()
    );
    assert_eq!(std::fs::read(dir.join("big.csv")).unwrap(), big_bytes());
    assert_eq!(receipt.channel, "sftp");
    assert_eq!(receipt.bytes, d.bytes());
    assert!(
        receipt.locations[0].starts_with(&format!("sftp://127.0.0.1:{}/", fixture.sshd.port)),
        "{receipt:?}"
    );
    assert!(receipt.locations[0].ends_with("/reports/ann/Umsatz Zürich.pdf"));
    assert!(temporary_files(fixture.sshd.root.path()).is_empty());
}

#[tokio::test]
async fn password_login_uploads_intact() {
    let user = throwaway("user");
    let password = throwaway("pw");
    let server = PasswordSshServer::start(&user, &password).await;
    let secrets = tempfile::tempdir().unwrap();
    let options = server.options(&user, &password, secrets.path());
    let channel = SftpChannel::new(options.clone()).unwrap();

    channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.root.path().join("ann/r.pdf")).unwrap(),
        pdf_bytes()
    );
    assert_eq!(files_below(server.root.path()), ["ann/r.pdf"]);
}

#[tokio::test]
async fn wrong_password_is_unauthenticated_and_never_shown() {
    let user = throwaway("user");
    let password = throwaway("pw");
    let wrong = throwaway("wrong-pw");
    let server = PasswordSshServer::start(&user, &password).await;
    let secrets = tempfile::tempdir().unwrap();
    let options = server.options(&user, &wrong, secrets.path());
    let channel = SftpChannel::new(options.clone()).unwrap();

    let err = channel
        .deliver(&pdf_delivery("bob", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert_eq!(err.backend(), Some("sftp"));
    assert!(
        err.to_string().contains("bob"),
        "names the recipient: {err}"
    );
    assert!(err.to_string().contains(&user), "names the user: {err}");
    let shown = format!("{err} {err:?} {channel:?} {options:?}");
    for secret in [&wrong, &password] {
        assert!(
            !shown.contains(secret.as_str()),
            "a password shows: {shown}"
        );
    }
    assert!(files_below(server.root.path()).is_empty());
}

#[tokio::test]
async fn an_encrypted_key_needs_its_passphrase() {
    let fixture = Fixture::start();
    let passphrase = throwaway("phrase");
    let encrypted = KeyPair::generate(fixture.secrets.path(), "encrypted", &passphrase);
    let key = std::fs::read_to_string(&encrypted.private).unwrap();
    let key_ref = secret_file(fixture.secrets.path(), &key);

    let without = fixture.options().with_private_key(key_ref.clone());
    let err = SftpChannel::new(without).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("passphrase"), "{err}");

    let with = fixture
        .options()
        .with_private_key(key_ref)
        .with_private_key_passphrase(secret_file(fixture.secrets.path(), &passphrase));
    let channel = SftpChannel::new(with).unwrap();
    assert!(!format!("{channel:?}").contains(&passphrase));
}

#[tokio::test]
async fn connections_are_reused_between_deliveries() {
    let fixture = Fixture::start();
    let proxy = CuttingProxy::start(fixture.sshd.port, 0, 0);
    let mut options = fixture.options();
    options.port = Some(proxy.port);
    let known = fixture.secrets.path().join("proxy_known_hosts");
    std::fs::write(
        &known,
        format!("{}\n", fixture.sshd.host_key.known_hosts_line(proxy.port)),
    )
    .unwrap();
    let channel = SftpChannel::new(options.with_known_hosts(known)).unwrap();

    for id in ["ann", "bob", "cyd"] {
        channel.deliver(&pdf_delivery(id, "r.pdf")).await.unwrap();
    }

    assert_eq!(files_below(&fixture.reports()).len(), 3);
    assert_eq!(
        proxy.connections(),
        1,
        "one SSH connection served all three"
    );
}

// ---- if_exists and confirm ------------------------------------------------------------------

#[tokio::test]
async fn if_exists_fail_overwrite_and_keep() {
    let fixture = Fixture::start();
    let options = |policy| fixture.options().with_if_exists(policy);
    let target = fixture.reports().join("ann/r.pdf");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, "old").unwrap();
    let d = pdf_delivery("ann", "r.pdf");

    let err = SftpChannel::new(options(IfExists::Fail))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"old");

    let receipt = SftpChannel::new(options(IfExists::Keep))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(receipt.bytes, 0);
    assert_eq!(std::fs::read(&target).unwrap(), b"old");

    SftpChannel::new(options(IfExists::Overwrite))
        .unwrap()
        .deliver(&d)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), pdf_bytes());

    let err = SftpChannel::new(options(IfExists::Version)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(temporary_files(fixture.sshd.root.path()).is_empty());
}

#[tokio::test]
async fn confirm_finds_a_complete_delivery_only() {
    let fixture = Fixture::start();
    let channel = fixture.channel();
    let done = pdf_delivery("ann", "r.pdf");
    let receipt = channel.deliver(&done).await.unwrap();

    let confirmed = channel.confirm(&done).await.unwrap().expect("delivered");
    assert_eq!(confirmed.locations, receipt.locations);

    assert_eq!(
        channel
            .confirm(&pdf_delivery("bob", "r.pdf"))
            .await
            .unwrap(),
        None
    );
    std::fs::write(fixture.reports().join("ann/r.pdf"), "half").unwrap();
    assert_eq!(channel.confirm(&done).await.unwrap(), None);
}

#[tokio::test]
async fn two_recipients_never_share_a_file_in_one_run_or_its_resume() {
    let fixture = Fixture::start();
    let shared = || {
        SftpChannel::new(
            fixture
                .options()
                .with_subfolder("shared")
                .with_if_exists(IfExists::Overwrite),
        )
        .unwrap()
    };

    support::second_recipient_is_refused(&shared()).await;
    support::second_recipient_is_refused_after_a_resume(&shared(), &shared()).await;

    let kept = std::fs::read_to_string(fixture.reports().join("shared/Same Name.csv")).unwrap();
    assert_eq!(kept, "rows of east\n");
    assert_eq!(files_below(&fixture.reports()), ["shared/Same Name.csv"]);
}

// ---- host keys ------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_host_key_is_refused_with_its_fingerprint() {
    let fixture = Fixture::start();
    let mut options = fixture.options();
    options.known_hosts = None;
    let channel = SftpChannel::new(options.clone()).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let fingerprint = fingerprint_of(&fixture.sshd.host_key.private);
    assert!(
        err.to_string().contains(&fingerprint),
        "{err} / {fingerprint}"
    );
    assert!(files_below(&fixture.reports()).is_empty());

    let other = KeyPair::generate(fixture.secrets.path(), "other_host", "");
    let wrong_list = fixture.secrets.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong_list,
        format!("{}\n", other.known_hosts_line(fixture.sshd.port)),
    )
    .unwrap();
    let err = SftpChannel::new(options.clone().with_known_hosts(&wrong_list))
        .unwrap()
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("differs"), "a changed key: {err}");

    let trusting = options.with_trust_unknown_host_key_dangerous(true);
    SftpChannel::new(trusting)
        .unwrap()
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap();
}

/// The SHA-256 fingerprint of a key as `ssh-keygen -l` prints it.
fn fingerprint_of(key: &std::path::Path) -> String {
    let output = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

// ---- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_the_server_does_not_know_is_unauthenticated() {
    let fixture = Fixture::start();
    let stranger = KeyPair::generate(fixture.secrets.path(), "stranger", "");
    let key = std::fs::read_to_string(&stranger.private).unwrap();
    let options = fixture
        .options()
        .with_private_key(secret_file(fixture.secrets.path(), &key));
    let channel = SftpChannel::new(options).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    let middle = key.lines().nth(2).unwrap();
    assert!(!format!("{err} {err:?} {channel:?}").contains(middle));
}

#[tokio::test]
async fn a_connection_cut_mid_upload_is_transient_and_leaves_nothing() {
    let fixture = Fixture::start();
    let proxy = CuttingProxy::start(fixture.sshd.port, 300_000, 1);
    let known = fixture.secrets.path().join("proxy_known_hosts");
    std::fs::write(
        &known,
        format!("{}\n", fixture.sshd.host_key.known_hosts_line(proxy.port)),
    )
    .unwrap();
    let mut options = fixture.options().with_known_hosts(known);
    options.port = Some(proxy.port);
    let channel = SftpChannel::new(options).unwrap();
    let d = delivery(
        recipient("ann"),
        vec![document(OutputFormat::Csv, "big.csv", big_bytes())],
    );

    let err = channel.deliver(&d).await.unwrap_err();

    assert_eq!(proxy.cut.load(Ordering::SeqCst), 1);
    assert!(err.kind().is_retryable(), "{err:?}");
    let left = files_below(fixture.sshd.root.path());
    assert!(
        left.is_empty(),
        "neither the file nor its temporary part is left: {left:?}"
    );

    channel.deliver(&d).await.unwrap();
    assert_eq!(
        std::fs::read(fixture.reports().join("ann/big.csv")).unwrap(),
        big_bytes()
    );
}

#[tokio::test]
async fn a_missing_base_folder_is_not_found() {
    let fixture = Fixture::start();
    let options = fixture.options().with_path(format!(
        "{}/nowhere",
        fixture.sshd.remote_root.trim_end_matches('/')
    ));
    let channel = SftpChannel::new(options).unwrap();

    let err = channel
        .deliver(&pdf_delivery("ann", "r.pdf"))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_transient_quickly() {
    let secrets = tempfile::tempdir().unwrap();
    let options = SftpOptions::new("127.0.0.1", "u")
        .with_port(closed_port())
        .with_password(secret_file(secrets.path(), "x"))
        .with_timeout_secs(10);
    let channel = SftpChannel::new(options).unwrap();
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
    let secrets = tempfile::tempdir().unwrap();
    let options = SftpOptions::new("127.0.0.1", "u")
        .with_port(listener.local_addr().unwrap().port())
        .with_password(secret_file(secrets.path(), "x"))
        .with_timeout_secs(1);
    let channel = SftpChannel::new(options).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "x");

    let nothing = SftpOptions::new("127.0.0.1", "u");
    let err = SftpChannel::new(nothing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("private_key"), "{err}");

    let missing_list = SftpOptions::new("127.0.0.1", "u")
        .with_password(password.clone())
        .with_known_hosts(dir.path().join("no_known_hosts"));
    assert_eq!(
        SftpChannel::new(missing_list).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let both = SftpOptions::new("127.0.0.1", "u")
        .with_password(password.clone())
        .with_known_hosts(dir.path())
        .with_trust_unknown_host_key_dangerous(true);
    assert_eq!(
        SftpChannel::new(both).unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );

    let garbage_key = SftpOptions::new("127.0.0.1", "u")
        .with_private_key(secret_file(dir.path(), "not a key at all"));
    let err = SftpChannel::new(garbage_key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(!err.to_string().contains("not a key at all"), "{err}");

    let mut registry = Registry::new();
    mad_deliver::register(&mut registry);
    let literal = serde_json::json!({
        "host": "127.0.0.1", "username": "u", "password": "hunter2-literal"
    });
    let err = registry
        .build_channel("sftp", &literal, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(!err.to_string().contains("hunter2-literal"), "{err}");

    let relative = serde_json::json!({
        "host": "127.0.0.1", "username": "u", "password": "env:MAD_TEST_UNSET_SFTP",
        "known_hosts": "known_hosts"
    });
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    let err = registry
        .build_channel("sftp", &relative, &BuildContext::new(dir.path()))
        .unwrap_err();
    assert!(
        err.to_string().contains("MAD_TEST_UNSET_SFTP"),
        "known_hosts was found relative to the definitions; the secret is what is missing: {err}"
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
    for channel in channels {
        task = task.with_channel(channel);
    }
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_records_one_refused_login_and_delivers_the_rest() {
    let user = throwaway("user");
    let password = throwaway("pw");
    let server = PasswordSshServer::start_refusing(&user, &password, 1).await;
    let secrets = tempfile::tempdir().unwrap();
    let options = server.options(&user, &password, secrets.path());
    let channel = Arc::new(SftpChannel::new(options).unwrap());
    let ids = ["ann", "bob", "cyd", "dan"];
    let engine = Engine::new(EngineOptions {
        retry_delay: Duration::from_millis(50),
        ..EngineOptions::default()
    });

    let summary = tokio::time::timeout(
        Duration::from_secs(90),
        engine.run(&task(vec![TaskChannel::new(channel)], &ids)),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    let refused = the_one_refused(&summary);
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    for id in ids.iter().filter(|id| **id != refused.id) {
        let path = server.root.path().join(id).join(format!("Umsatz {id}.pdf"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            pdf_bytes(),
            "{}",
            path.display()
        );
    }
    assert!(!summary.to_json().contains(&password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_with_a_wrong_password_fails_everyone_cleanly() {
    let user = throwaway("user");
    let password = throwaway("pw");
    let wrong = throwaway("wrong-pw");
    let server = PasswordSshServer::start(&user, &password).await;
    let secrets = tempfile::tempdir().unwrap();
    let options = server.options(&user, &wrong, secrets.path());
    let channel = Arc::new(SftpChannel::new(options).unwrap());
    let ids = ["ann", "bob", "cyd"];
    let engine = Engine::new(EngineOptions {
        retry_delay: Duration::from_millis(50),
        ..EngineOptions::default()
    });

    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        engine.run(&task(vec![TaskChannel::new(channel)], &ids)),
    )
    .await
    .expect("the run finishes")
    .unwrap();

    assert_eq!(summary.counts.failed, ids.len(), "{}", summary.human());
    for outcome in &summary.recipients {
        assert_eq!(outcome.errors[0].kind, ErrorKind::Unauthenticated);
    }
    let json = summary.to_json();
    assert!(
        !json.contains(&wrong) && !json.contains(&password),
        "{json}"
    );
    assert!(files_below(server.root.path()).is_empty());
}

#[test]
fn a_channel_outliving_its_runtime_drops_cleanly() {
    let fixture = Fixture::start();
    let channel = fixture.channel();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    runtime
        .block_on(channel.deliver(&pdf_delivery("ann", "r.pdf")))
        .unwrap();
    drop(runtime);

    drop(channel); // its pooled session was made in the runtime that is gone now
    assert_eq!(files_below(&fixture.reports()), ["ann/r.pdf"]);
}
