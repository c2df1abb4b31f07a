//! SMTP benchmark: 1,000 recipients through the engine to the local SMTP server of the tests
//! (`testing/servers/smtp.py`), once in plain text and once with STARTTLS, each recipient
//! getting an HTML body and a PDF attachment. Prints e-mails per second.
//!
//!     cargo bench -p mad-deliver --bench smtp [-- RECIPIENTS]
//!
//! The server is a single Python process that writes every message to disk, so it sets the
//! pace as much as the channel does; compare runs on the same machine.

#![allow(clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    Engine, EngineOptions, Field, FieldKind, OnEmpty, OutputFormat, RenderJob, Renderer, ReportDef,
    Schema, Table, Task, TaskChannel, Value,
};
use mad_deliver::email::{BodyFormat, EmailChannel, EmailOptions, Security, SmtpOptions};

use support::{
    HTML, SmtpConfig, SmtpFaults, SmtpMode, SmtpServer, TestCertificates, pdf_bytes, recipient,
    secret_file, throwaway,
};

/// Returns the same bytes for every job, so the benchmark is about delivery.
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

fn task(channel: EmailChannel, recipients: usize) -> Task {
    let schema = Schema::new(vec![Field::new("Region", FieldKind::Text)]);
    let mut region = ColumnBuilder::default();
    region.push(Value::text("West"));
    let table = Table::new(schema, vec![region.finish()]).expect("a table");
    let mut report = ReportDef::new("Sales", "Sales for {recipient.name}");
    report.formats = vec![OutputFormat::Html, OutputFormat::Pdf];
    let mut renderers: BTreeMap<OutputFormat, Arc<dyn Renderer>> = BTreeMap::new();
    renderers.insert(
        OutputFormat::Html,
        Arc::new(FixedRenderer(OutputFormat::Html, HTML.as_bytes().to_vec())),
    );
    renderers.insert(
        OutputFormat::Pdf,
        Arc::new(FixedRenderer(OutputFormat::Pdf, pdf_bytes())),
    );
    let mut task = Task::new("smtp bench", Arc::new(TableSource::new("memory", table)))
        .with_report(report)
        .with_recipients((0..recipients).map(|i| recipient(&format!("r{i:05}"))))
        .with_channel(TaskChannel::new(Arc::new(channel)))
        .with_on_empty(OnEmpty::Skip);
    task.renderers = renderers;
    task
}

async fn round(mode: SmtpMode, recipients: usize) {
    let certificates = TestCertificates::generate();
    let secrets = tempfile::tempdir().expect("a temporary folder");
    let user = throwaway("user");
    let password = throwaway("pw");
    let server = SmtpServer::start(SmtpConfig {
        mode,
        certificates: Some(&certificates),
        user: &user,
        password: &password,
        faults: SmtpFaults::default(),
    });
    let security = match mode {
        SmtpMode::Plain => Security::None,
        _ => Security::Starttls,
    };
    let mut smtp = SmtpOptions::new("127.0.0.1")
        .with_port(server.port)
        .with_security(security)
        .with_credentials(&user, secret_file(secrets.path(), &password))
        .with_max_connections(8);
    if mode != SmtpMode::Plain {
        smtp = smtp.with_ca_file(&certificates.ca);
    }
    let options = EmailOptions::new("Reports <reports@example.com>")
        .with_subject("{report.name} for {recipient.name}")
        .with_body_format(BodyFormat::Html)
        .with_smtp(smtp);
    let channel = EmailChannel::new(options).expect("an e-mail channel");
    let task = task(channel, recipients);

    let started = Instant::now();
    let summary = Engine::new(EngineOptions::default())
        .run(&task)
        .await
        .expect("a run");
    let seconds = started.elapsed().as_secs_f64();

    assert_eq!(summary.counts.delivered, recipients, "{}", summary.human());
    let stats = server.stats();
    println!(
        "{:<9} {recipients} e-mails in {seconds:.2} s: {:.0} e-mails/s over {} connections",
        format!("{mode:?}"),
        recipients as f64 / seconds,
        stats.connections
    );
}

fn main() {
    let recipients = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    for mode in [SmtpMode::Plain, SmtpMode::Starttls] {
        runtime.block_on(round(mode, recipients));
    }
}
