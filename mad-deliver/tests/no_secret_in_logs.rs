//! No credential shows in what is logged at trace level, by mad or by the crates under it, nor
//! in the `Debug` and `Display` output of channels, options and errors: every channel that
//! signs in delivers once with the right credentials and once with a wrong one against its
//! local server or double, with a subscriber catching every `tracing` event and every `log`
//! record of the test process.

#[allow(dead_code)] // only for the remote servers' types
mod conformance;
mod doubles;
mod remote;
mod s3_server;
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use mad_core::{Channel, Delivery, ErrorKind, OutputFormat};
use mad_deliver::email::{EmailChannel, EmailOptions, Security};
use mad_deliver::ftp::FtpChannel;
use mad_deliver::s3::S3Channel;
use mad_deliver::sftp::SftpChannel;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::util::SubscriberInitExt;

use remote::{FtpFixture, FtpMode, PasswordSshServer};
use s3_server::S3Server;
use support::{SmtpFixture, SmtpMode, delivery, document, recipient, report_delivery, throwaway};

// ---- catching the logs ----------------------------------------------------------------------

/// Everything logged in this process so far.
fn logs() -> String {
    let buffer = LOGS.get_or_init(install_subscriber);
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// A global subscriber at TRACE writing every event and span into a buffer, which also takes
/// the records of the `log` facade that lettre, suppaftp, russh and reqwest use.
fn install_subscriber() -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&buffer);
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_writer(move || BufferWriter(Arc::clone(&writer)))
        .finish()
        .try_init()
        .expect("the only subscriber of this test process");
    buffer
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts catching, before a test's first connection.
fn catch_logs() {
    let _ = logs();
}

/// The ways `secret` can show: as itself, and inside base64 at any of the three alignments
/// (SMTP AUTH PLAIN and LOGIN, HTTP Basic) whatever comes before and after it.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    for shift in 0..3 {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(secret.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let skip = if shift == 0 { 0 } else { 4 };
        let stable = &encoded[skip..encoded.len().saturating_sub(4)];
        forms.push(stable.to_string());
    }
    forms
}

/// Checks that no form of any of `secrets` is in the logs or in `shown`.
fn assert_hidden(secrets: &[String], shown: &str) {
    let logs = logs();
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !logs.contains(&form),
                "a secret ({form}) is in the logs:\n{logs}"
            );
            assert!(!shown.contains(&form), "a secret ({form}) shows: {shown}");
        }
    }
}

#[test]
fn the_subscriber_sees_everything() {
    catch_logs();
    assert_eq!(
        tracing::level_filters::STATIC_MAX_LEVEL,
        tracing::level_filters::LevelFilter::TRACE
    );
    let marker = throwaway("trace-marker");
    tracing::trace!(target: "some_dependency", "{marker}");
    assert!(logs().contains(&marker));

    // suppaftp's `no-log` feature compiles the `log` facade off for the whole build; should it
    // ever be on, its records must arrive here too.
    let marker = throwaway("log-marker");
    tracing_log::log::trace!(target: "some_dependency", "{marker}");
    if tracing_log::log::STATIC_MAX_LEVEL != tracing_log::log::LevelFilter::Off {
        assert!(logs().contains(&marker));
    }
}

#[test]
fn a_secret_is_found_in_every_form() {
    let secret = throwaway("pw");
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{secret}"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ab:{secret}"));
    let login = base64::engine::general_purpose::STANDARD.encode(&secret);
    for shown in [
        format!("PASS {secret}"),
        format!("AUTH PLAIN {plain}"),
        format!("Authorization: Basic {basic}"),
        format!("334 {login}"),
    ] {
        let found =
            std::panic::catch_unwind(|| assert_hidden(std::slice::from_ref(&secret), &shown));
        assert!(found.is_err(), "{shown}");
    }
}

// ---- a delivery with the right credentials, then with a wrong one ----------------------------

/// Delivers `d` through `right`, then through `wrong`, which must be refused as
/// unauthenticated; returns the `Display` and `Debug` output of both channels and the error.
async fn deliver_then_refuse(right: &dyn Channel, wrong: &dyn Channel, d: &Delivery) -> String {
    right.deliver(d).await.unwrap();
    let err = wrong.deliver(d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    format!("{err} {err:?} {right:?} {wrong:?}")
}

fn small(id: &str) -> Delivery {
    report_delivery(recipient(id))
}

/// A document large enough for the cloud channels to use an upload session.
fn session_sized(id: &str) -> Delivery {
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    delivery(
        recipient(id),
        vec![document(OutputFormat::Pdf, "big.pdf", bytes)],
    )
}

#[tokio::test]
async fn smtp_auth() {
    catch_logs();
    let fixture = SmtpFixture::start(SmtpMode::Starttls);
    let wrong = throwaway("wrong-pw");
    let options = || EmailOptions::new("Reports <reports@example.com>");
    let right = fixture.channel(options(), Security::Starttls);
    let wrong_options = options().with_smtp(fixture.smtp(Security::Starttls, &wrong));
    let refused = EmailChannel::new(wrong_options.clone()).unwrap();

    let shown = deliver_then_refuse(&right, &refused, &small("ann")).await;

    assert_eq!(fixture.server.wait_for(1).len(), 1);
    assert_hidden(
        &[fixture.password.clone(), wrong],
        &format!("{shown} {wrong_options:?}"),
    );
}

async fn ftp_login(mode: FtpMode) {
    catch_logs();
    let fixture = FtpFixture::start(mode);
    let wrong = throwaway("wrong-pw");
    let wrong_options = fixture.options(&wrong);
    let refused = FtpChannel::new(wrong_options.clone()).unwrap();

    let shown = deliver_then_refuse(&fixture.channel(), &refused, &small("ann")).await;

    assert_hidden(
        &[fixture.password.clone(), wrong],
        &format!("{shown} {wrong_options:?}"),
    );
}

#[tokio::test]
async fn ftps_login() {
    ftp_login(FtpMode::ExplicitTls).await;
}

#[tokio::test]
async fn plain_ftp_login() {
    ftp_login(FtpMode::Plain).await;
}

#[tokio::test]
async fn sftp_password_login() {
    catch_logs();
    let user = throwaway("user");
    let password = throwaway("pw");
    let wrong = throwaway("wrong-pw");
    let server = PasswordSshServer::start(&user, &password).await;
    let secrets = tempfile::tempdir().unwrap();
    let right = SftpChannel::new(server.options(&user, &password, secrets.path())).unwrap();
    let wrong_options = server.options(&user, &wrong, secrets.path());
    let refused = SftpChannel::new(wrong_options.clone()).unwrap();

    let shown = deliver_then_refuse(&right, &refused, &small("ann")).await;

    assert_hidden(&[password, wrong], &format!("{shown} {wrong_options:?}"));
}

#[tokio::test]
async fn s3_keys() {
    catch_logs();
    let server = S3Server::start(&["reports"]);
    let wrong = throwaway("wrong-secret");
    let right = S3Channel::new(server.options("reports").with_prefix("{recipient.id}")).unwrap();
    let wrong_options = server.options_with("reports", &server.key_id, &wrong);
    let refused = S3Channel::new(wrong_options.clone()).unwrap();

    let shown = deliver_then_refuse(&right, &refused, &small("ann")).await;

    assert_hidden(
        &[server.secret.clone(), wrong],
        &format!("{shown} {wrong_options:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_client_secret() {
    use doubles::graph::{FRAGMENT_UNIT, Fixture};

    catch_logs();
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let right = fixture.channel(
        fixture
            .options()
            .with_simple_upload_max(100_000)
            .with_chunk_size(FRAGMENT_UNIT),
    );
    let refused = fixture.channel(fixture.options_with_secret(&wrong));

    right.deliver(&session_sized("bob")).await.unwrap();
    let shown = deliver_then_refuse(right.as_ref(), refused.as_ref(), &small("ann")).await;

    let mut secrets = vec![fixture.secret.clone(), wrong];
    secrets.extend(fixture.double.state.auth.issued());
    assert!(!secrets[2..].is_empty(), "the double issued access tokens");
    assert_hidden(&secrets, &shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_refresh_token() {
    use doubles::dropbox::Fixture;

    catch_logs();
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let right = fixture.channel(fixture.options().with_simple_upload_max(100_000));
    let refused = fixture.channel(fixture.options_with_secret(&wrong));

    right.deliver(&session_sized("bob")).await.unwrap();
    let shown = deliver_then_refuse(right.as_ref(), refused.as_ref(), &small("ann")).await;

    let mut secrets = vec![fixture.secret.clone(), fixture.refresh.clone(), wrong];
    secrets.extend(fixture.double.state.auth.issued());
    assert!(secrets.len() > 3, "the double issued access tokens");
    assert_hidden(&secrets, &shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_client_credentials() {
    use doubles::r#box::Fixture;

    catch_logs();
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let right = fixture.channel(fixture.options());
    let refused = fixture.channel(fixture.options_with_secret(&wrong));

    let shown = deliver_then_refuse(right.as_ref(), refused.as_ref(), &small("ann")).await;

    let mut secrets = vec![fixture.secret.clone(), fixture.refresh.clone(), wrong];
    secrets.extend(fixture.double.state.auth.issued());
    assert!(secrets.len() > 3, "the double issued access tokens");
    assert_hidden(&secrets, &shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdrive_refresh_token() {
    use doubles::gdrive::Fixture;

    catch_logs();
    let fixture = Fixture::start();
    let wrong = throwaway("wrong-secret");
    let right = fixture.channel(fixture.options().with_simple_upload_max(100_000));
    let refused = fixture.channel(fixture.options_with_secret(&wrong));

    right.deliver(&session_sized("bob")).await.unwrap();
    let shown = deliver_then_refuse(right.as_ref(), refused.as_ref(), &small("ann")).await;

    let mut secrets = vec![fixture.secret.clone(), fixture.refresh.clone(), wrong];
    secrets.extend(fixture.double.state.auth.issued());
    assert!(secrets.len() > 3, "the double issued access tokens");
    assert_hidden(&secrets, &shown);
}
