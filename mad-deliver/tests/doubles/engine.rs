//! Runs a channel through the engine: a task with a few recipients, a fixed document per
//! format, and quick retries.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mad_core::source::TableSource;
use mad_core::table::ColumnBuilder;
use mad_core::{
    Channel, Engine, EngineOptions, Field, FieldKind, OnEmpty, OutputFormat, RenderJob, Renderer,
    ReportDef, RunInfo, RunSummary, Schema, Table, Task, TaskChannel, Value,
};

use super::Auth;
use crate::support::{pdf_bytes, recipient, the_one_refused};

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

/// The report's name; its file name is `Umsatz {recipient.id}`.
pub const REPORT: &str = "Umsatz";

/// A task sending one `format` document of `bytes` to each of `ids` through `channels`.
pub fn task(
    channels: Vec<TaskChannel>,
    ids: &[&str],
    format: OutputFormat,
    bytes: Vec<u8>,
) -> Task {
    let schema = Schema::new(vec![Field::new("Region", FieldKind::Text)]);
    let mut region = ColumnBuilder::default();
    region.push(Value::text("Zürich"));
    let table = Table::new(schema, vec![region.finish()]).unwrap();
    let mut report = ReportDef::new(REPORT, "Umsatz für {recipient.name}");
    report.formats = vec![format];
    report.file_name = "Umsatz {recipient.id}".to_string();
    let mut task = Task::new("monthly", Arc::new(TableSource::new("memory", table)))
        .with_report(report)
        .with_recipients(ids.iter().map(|id| recipient(id)))
        .with_renderer(Arc::new(FixedRenderer(format, bytes)))
        .with_on_empty(OnEmpty::Skip);
    task.channels = channels;
    task
}

/// An engine that retries twice, quickly unless the server asks for a wait.
pub fn engine() -> Engine {
    Engine::new(EngineOptions {
        delivery_retries: 2,
        retry_delay: Duration::from_millis(20),
        max_retry_delay: Duration::from_secs(5),
        ..EngineOptions::default()
    })
}

/// Runs `task` as run `run-1`, failing the test after a minute.
pub async fn run(engine: &Engine, task: &Task) -> RunSummary {
    tokio::time::timeout(
        Duration::from_secs(60),
        engine.run_as(task, RunInfo::at("run-1", 1_769_839_200.0)),
    )
    .await
    .expect("the run finishes")
    .expect("the run starts")
}

/// Sends a PDF to each of `ids` through `channel` with the first token request refused
/// (`auth` is the double's sign-in), and checks that exactly that recipient failed, as
/// unauthenticated. The summary is returned for the channel's own checks.
pub async fn run_with_one_refused_sign_in(
    auth: &Auth,
    channel: Arc<dyn Channel>,
    ids: &[&str],
) -> RunSummary {
    auth.refuse_next.store(1, Ordering::SeqCst);
    let task = task(
        vec![TaskChannel::new(channel)],
        ids,
        OutputFormat::Pdf,
        pdf_bytes(),
    );

    let summary = run(&engine(), &task).await;

    the_one_refused(&summary);
    summary
}
