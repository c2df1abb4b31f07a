//! Test support: deliveries to send, throwaway credentials and certificates, the local SMTP
//! server, and an independent MIME reader.
#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mad_core::{Delivery, Document, OutputFormat, Placeholders, Recipient, ReportDef, SecretRef};
use mad_deliver::email::{EmailChannel, EmailOptions, Security, SmtpOptions};

/// The one recipient of `summary` that failed, checking that it failed as unauthenticated
/// (a run with one refused sign-in).
#[allow(dead_code)]
pub fn the_one_refused(summary: &mad_core::RunSummary) -> &mad_core::RecipientOutcome {
    let failed: Vec<_> = summary
        .recipients
        .iter()
        .filter(|r| r.status == mad_core::Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{}", summary.human());
    assert_eq!(
        failed[0].errors[0].kind,
        mad_core::ErrorKind::Unauthenticated
    );
    failed[0]
}

/// A delivery to `id` of one CSV named `Same Name.csv` holding `rows of {id}`: what a file
/// name pattern without the recipient gives every recipient.
#[allow(dead_code)]
pub fn same_name_delivery(id: &str) -> Delivery {
    delivery(
        recipient(id),
        vec![document(
            OutputFormat::Csv,
            "Same Name.csv",
            format!("rows of {id}\n"),
        )],
    )
}

/// Delivers `same_name_delivery("east")` twice through `channel` (a retry may replace its own
/// file), then west's, which must be refused naming east; returns the refusal's message.
#[allow(dead_code)]
pub async fn second_recipient_is_refused(channel: &dyn mad_core::Channel) -> String {
    channel.deliver(&same_name_delivery("east")).await.unwrap();
    channel.deliver(&same_name_delivery("east")).await.unwrap();
    let err = channel
        .deliver(&same_name_delivery("west"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), mad_core::ErrorKind::AlreadyExists, "{err}");
    let message = err.to_string();
    assert!(message.contains("recipient 'east'"), "{message}");
    message
}

/// The same refusal across processes: `first` delivers east's report in one attempt of a run;
/// `resumed`, a new channel of the resumed attempt, hears of it only as the engine tells it
/// from the run log, and must refuse west's report for the same target.
#[allow(dead_code)]
pub async fn second_recipient_is_refused_after_a_resume(
    first: &dyn mad_core::Channel,
    resumed: &dyn mad_core::Channel,
) {
    let receipt = first.deliver(&same_name_delivery("east")).await.unwrap();
    resumed.delivered_earlier("run-1", "east", SUBJECT, &receipt);
    let err = resumed
        .deliver(&same_name_delivery("west"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), mad_core::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("recipient 'east'"), "{err}");
}

/// What a cloud drive promises for one file name two recipients share: replacing, the second
/// is refused in one run and after a resume, and the first keeps its file; renaming, each gets
/// a file of its own. `channel(subfolder, rename)` builds a fresh channel with that subfolder
/// and `if_exists` (`rename`, else `replace`); `stored(subfolder)` reads back the shared file.
#[allow(dead_code)]
pub async fn a_shared_name_is_kept_apart(
    channel: impl Fn(&str, bool) -> Arc<dyn mad_core::Channel>,
    stored: impl Fn(&str) -> Vec<u8>,
) {
    second_recipient_is_refused(channel("shared", false).as_ref()).await;
    second_recipient_is_refused_after_a_resume(
        channel("shared", false).as_ref(),
        channel("shared", false).as_ref(),
    )
    .await;
    assert_eq!(stored("shared"), b"rows of east\n");

    let renaming = channel("renamed", true);
    for id in ["east", "west"] {
        renaming.deliver(&same_name_delivery(id)).await.unwrap();
    }
}

/// The PDF the tests attach: a header, every byte value, a footer.
pub fn pdf_bytes() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(4096));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

pub const HTML: &str = "<html><body><h1>Umsatz Zürich – Łódź</h1><p>1.234,50 €</p></body></html>";

pub const SUBJECT: &str = "Umsatz Zürich – Łódź";

pub fn document(format: OutputFormat, file_name: &str, bytes: impl Into<Vec<u8>>) -> Document {
    Document::new(format, file_name, bytes::Bytes::from(bytes.into()))
}

/// The documents of a delivery holding one PDF named `file_name`.
pub fn pdf(file_name: &str) -> Vec<Document> {
    vec![document(OutputFormat::Pdf, file_name, pdf_bytes())]
}

/// A recipient with an address at the test domain.
pub fn recipient(id: &str) -> Recipient {
    Recipient::new(id, format!("Recipient {id}")).with_email(format!("{id}@example.com"))
}

/// A delivery of `documents` to `recipient`, with the placeholders the engine would set.
pub fn delivery(recipient: Recipient, documents: Vec<Document>) -> Delivery {
    let report = ReportDef::new(SUBJECT, "Umsatz für {recipient.name}");
    let placeholders = Placeholders::new()
        .with("recipient.id", &recipient.id)
        .with("recipient.name", &recipient.name)
        .with(
            "recipient.email",
            recipient.email.clone().unwrap_or_default(),
        )
        .with("report.name", &report.name)
        .with("run.id", "run-1")
        .with("run.date", "2026-01-31")
        .with("run.time", "06:00:00")
        .with("task.name", "monthly");
    Delivery {
        run_id: "run-1".to_string(),
        task: "monthly".to_string(),
        recipient: Arc::new(recipient),
        report: Arc::new(report),
        documents: documents.into_iter().map(Arc::new).collect(),
        placeholders: Arc::new(placeholders),
    }
}

/// The usual delivery: an HTML and a PDF version of the report.
pub fn report_delivery(recipient: Recipient) -> Delivery {
    delivery(
        recipient,
        vec![
            document(OutputFormat::Html, "Umsatz Zürich.html", HTML),
            document(OutputFormat::Pdf, "Umsatz Zürich.pdf", pdf_bytes()),
        ],
    )
}

/// A random string, for throwaway user names and passwords made at test time.
pub fn throwaway(prefix: &str) -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!(
        "{prefix}-{:016x}{:08x}",
        hasher.finish(),
        std::process::id()
    )
}

/// A file holding `secret`, and the reference definitions would use for it.
pub fn secret_file(dir: &Path, secret: &str) -> SecretRef {
    let path = dir.join(throwaway("secret"));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    SecretRef::File(path)
}

/// A private CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files.
pub struct TestCertificates {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCertificates {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mad test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "mad test server");
        let cert = params.signed_by(&key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        TestCertificates {
            ca: write("ca.pem", ca_cert.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server-key.pem", key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// The Python interpreter with the test servers' packages.
pub fn python() -> PathBuf {
    let path = std::env::var_os("MAD_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "no Python for the test servers at {}: run scripts/setup-test-env (or set MAD_TEST_PYTHON)",
        path.display()
    );
    path
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    Starttls,
    Tls,
    Plain,
}

/// How to start the SMTP server.
pub struct SmtpConfig<'a> {
    pub mode: SmtpMode,
    pub certificates: Option<&'a TestCertificates>,
    pub user: &'a str,
    pub password: &'a str,
    pub faults: SmtpFaults,
}

/// What the SMTP server does wrong on purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpFaults {
    /// Refuse this many AUTH attempts first, whatever the credentials.
    pub reject_auth: u32,
    /// Answer the first this many messages with 451 once their data is in.
    pub defer_data: u32,
    /// Cut the connection in the middle of the first this many messages' data.
    pub drop_data: u32,
    /// Keep the first this many messages but answer each only `slow_seconds` later.
    pub slow_data: u32,
    pub slow_seconds: f64,
    /// Refuse messages larger than this with 552.
    pub size_limit: Option<u64>,
}

/// What the SMTP server counted (`stats.json` in its folder).
#[derive(Debug, Default)]
pub struct SmtpStats {
    pub connections: u64,
    /// RCPT commands per address, refused ones included.
    pub rcpt: std::collections::BTreeMap<String, u64>,
    pub data: u64,
    pub deferred: u64,
    pub dropped: u64,
}

/// A message the server received.
pub struct Received {
    pub raw: Vec<u8>,
    pub envelope: serde_json::Value,
}

/// The SMTP server of `testing/servers/smtp.py`, running until dropped.
pub struct SmtpServer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(config: SmtpConfig<'_>) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let script = repo_root().join("testing/servers/smtp.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .arg("--mode")
            .arg(match config.mode {
                SmtpMode::Starttls => "starttls",
                SmtpMode::Tls => "tls",
                SmtpMode::Plain => "plain",
            })
            .arg("--maildir")
            .arg(maildir.path())
            .arg("--reject-auth")
            .arg(config.faults.reject_auth.to_string())
            .arg("--defer-data")
            .arg(config.faults.defer_data.to_string())
            .arg("--drop-data")
            .arg(config.faults.drop_data.to_string())
            .arg("--slow-data")
            .arg(config.faults.slow_data.to_string())
            .arg("--slow-seconds")
            .arg(config.faults.slow_seconds.to_string())
            .env("MAD_SMTP_USER", config.user)
            .env("MAD_SMTP_PASSWORD", config.password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(limit) = config.faults.size_limit {
            command.arg("--size-limit").arg(limit.to_string());
        }
        if let Some(certificates) = config.certificates {
            command
                .arg("--cert")
                .arg(&certificates.cert)
                .arg("--key")
                .arg(&certificates.key);
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {}: {e}; run scripts/setup-test-env",
                script.display()
            )
        });
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();

        let (sender, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = ready
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP test server did not report READY (got {line:?}); is aiosmtpd \
                 installed? Run scripts/setup-test-env"
            );
        };
        SmtpServer {
            child,
            stdin,
            port,
            maildir,
        }
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut stems: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        stems.sort();
        stems
            .into_iter()
            .map(|eml| Received {
                raw: std::fs::read(&eml).unwrap(),
                envelope: serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).unwrap(),
                )
                .unwrap(),
            })
            .collect()
    }

    /// What the server counted so far.
    pub fn stats(&self) -> SmtpStats {
        let Ok(bytes) = std::fs::read(self.maildir.path().join("stats.json")) else {
            return SmtpStats::default();
        };
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let count = |name: &str| json[name].as_u64().unwrap_or(0);
        SmtpStats {
            connections: count("connections"),
            rcpt: json["rcpt"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            data: count("data"),
            deferred: count("deferred"),
            dropped: count("dropped"),
        }
    }

    /// Waits until at least `n` messages have arrived (they are saved before the server
    /// answers, so this returns at once after a successful send).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received();
            if received.len() >= n || Instant::now() > deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A message as an independent MIME parser reads it.
pub struct Parsed {
    pub message_id: String,
    pub reply_to: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub from: String,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    /// (file name, bytes), inline parts left out
    pub attachments: Vec<(String, Vec<u8>)>,
    pub inline: Vec<InlinePart>,
}

/// A part shown inside the HTML body, referred to by its Content-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePart {
    pub content_id: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// The subtype of the multipart that holds it (`related` for a proper inline image).
    pub parent: String,
}

pub fn parse_message(raw: &[u8]) -> Parsed {
    use mail_parser::{MessageParser, MimeHeaders};

    let message = MessageParser::default().parse(raw).expect("a MIME message");
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let mut parents = std::collections::HashMap::new();
    for part in &message.parts {
        if let mail_parser::PartType::Multipart(children) = &part.body {
            let subtype = part
                .content_type()
                .and_then(|ct| ct.subtype())
                .unwrap_or_default()
                .to_string();
            for child in children {
                parents.insert(*child, subtype.clone());
            }
        }
    }
    let inline: Vec<InlinePart> = message
        .parts
        .iter()
        .enumerate()
        .filter_map(|(i, part)| {
            let content_id = part.content_id()?.to_string();
            let ct = part.content_type()?;
            Some(InlinePart {
                content_id,
                media_type: format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()),
                bytes: part.contents().to_vec(),
                parent: parents.get(&(i as u32)).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Parsed {
        message_id: message.message_id().unwrap_or_default().to_string(),
        reply_to: addresses(message.reply_to()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        bcc: addresses(message.bcc()),
        from: addresses(message.from()).join(","),
        subject: message.subject().unwrap_or_default().to_string(),
        html: body_of(message.html_bodies(), "html"),
        text: body_of(message.text_bodies(), "plain"),
        attachments: message
            .attachments()
            .filter(|a| a.content_id().is_none())
            .map(|a| {
                (
                    a.attachment_name().unwrap_or_default().to_string(),
                    a.contents().to_vec(),
                )
            })
            .collect(),
        inline,
    }
}

/// The first body part of type text/`subtype`, decoded.
fn body_of<'a>(
    parts: impl Iterator<Item = &'a mail_parser::MessagePart<'a>>,
    subtype: &str,
) -> Option<String> {
    use mail_parser::MimeHeaders;

    parts
        .filter(|p| {
            p.content_type()
                .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some(subtype))
        })
        .find_map(|p| p.text_contents().map(str::to_string))
}

/// An SMTP server, the throwaway credentials it accepts and the CA that signed its certificate.
pub struct SmtpFixture {
    pub certificates: TestCertificates,
    pub secrets: tempfile::TempDir,
    pub user: String,
    pub password: String,
    pub server: SmtpServer,
}

impl SmtpFixture {
    pub fn start(mode: SmtpMode) -> Self {
        SmtpFixture::with_faults(mode, SmtpFaults::default())
    }

    pub fn with_faults(mode: SmtpMode, faults: SmtpFaults) -> Self {
        let certificates = TestCertificates::generate();
        let user = throwaway("user");
        let password = throwaway("pw");
        let server = SmtpServer::start(SmtpConfig {
            mode,
            certificates: (mode != SmtpMode::Plain).then_some(&certificates),
            user: &user,
            password: &password,
            faults,
        });
        SmtpFixture {
            certificates,
            secrets: tempfile::tempdir().unwrap(),
            user,
            password,
            server,
        }
    }

    pub fn smtp(&self, security: Security, password: &str) -> SmtpOptions {
        SmtpOptions::new("127.0.0.1")
            .with_port(self.server.port)
            .with_security(security)
            .with_credentials(&self.user, secret_file(self.secrets.path(), password))
            .with_ca_file(&self.certificates.ca)
            .with_timeout_secs(20)
    }

    pub fn channel(&self, options: EmailOptions, security: Security) -> EmailChannel {
        EmailChannel::new(options.with_smtp(self.smtp(security, &self.password))).unwrap()
    }
}
