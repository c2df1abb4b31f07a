//! The run engine over an in-memory source, a renderer that writes rows as text and a channel
//! that keeps what it receives: grouping, skipping, failure isolation and no widening.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mad_core::source::TableSource;
use mad_core::{
    Channel, ChannelCapabilities, ColumnBuilder, ColumnDef, DataSource, Delivery, Engine, Error,
    ErrorKind, FetchRequest, Field, FieldKind, Filter, FilterSet, Layout, LayoutEvent,
    OutputFormat, Receipt, Recipient, RenderJob, Renderer, ReportDef, Result, Schema,
    SourceCapabilities, Status, Table, Task, TaskChannel, Value,
};

fn orders() -> Table {
    let schema = Schema::new(vec![
        Field::new("Region", FieldKind::Text),
        Field::new("State", FieldKind::Text),
        Field::new("Sales", FieldKind::Number),
    ]);
    let rows = [
        ("East", "New York", 10.0),
        ("East", "Vermont", 5.0),
        ("West", "California", 7.0),
        ("West", "Oregon", 1.5),
        ("South", "Texas", 2.0),
    ];
    let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
    for (r, s, v) in rows {
        cols[0].push(Value::text(r));
        cols[1].push(Value::text(s));
        cols[2].push(Value::Number(v));
    }
    Table::new(
        schema,
        cols.into_iter().map(ColumnBuilder::finish).collect(),
    )
    .unwrap()
}

/// Writes "title|state=sales;..." so tests can read back exactly which rows were rendered.
#[derive(Debug)]
struct RowsAsText;

impl Renderer for RowsAsText {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        let layout = Layout::new(job.report, job.table)?;
        let mut out = job.placeholders.render(&job.report.title)?;
        out.push('|');
        layout.walk(|e| {
            if let LayoutEvent::Row(r) = e {
                out.push_str(&format!(
                    "{}={};",
                    layout.value(r, 0).as_text().unwrap(),
                    layout.value(r, 1).as_number().unwrap()
                ));
            }
        });
        Ok(out.into_bytes())
    }
}

#[derive(Debug, Default)]
struct Outbox {
    name: String,
    received: Mutex<Vec<(String, String)>>,
    fail_for: Option<String>,
    /// Delivers on the calling thread too, as a channel writing local files does.
    blocking: bool,
    /// The threads deliveries were made on.
    threads: Mutex<Vec<String>>,
}

impl Outbox {
    fn take(&self, delivery: &Delivery) -> Result<Receipt> {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().unwrap().push(thread);
        if self.fail_for.as_deref() == Some(delivery.recipient.id.as_str()) {
            return Err(Error::new(ErrorKind::Unauthenticated, "wrong password"));
        }
        let doc = &delivery.documents[0];
        let text = String::from_utf8(doc.bytes.to_vec()).unwrap();
        self.received
            .lock()
            .unwrap()
            .push((delivery.recipient.id.clone(), text));
        Ok(Receipt {
            channel: self.name.clone(),
            locations: vec![doc.file_name.clone()],
            bytes: doc.bytes.len() as u64,
        })
    }

    /// Whether every delivery was made on a render thread.
    fn all_on_render_threads(&self) -> bool {
        let threads = self.threads.lock().unwrap();
        !threads.is_empty() && threads.iter().all(|t| t.starts_with("mad-cpu"))
    }
}

#[async_trait]
impl Channel for Outbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            blocking: self.blocking,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.take(delivery)
    }

    fn deliver_blocking(&self, delivery: &Delivery) -> Result<Receipt> {
        assert!(self.blocking, "only a blocking channel is asked to block");
        self.take(delivery)
    }
}

/// Counts fetches on top of an in-memory source.
#[derive(Debug)]
struct Counting {
    inner: TableSource,
    fetches: Mutex<usize>,
}

#[async_trait]
impl DataSource for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
    }

    async fn fields(&self) -> Result<Vec<Field>> {
        self.inner.fields().await
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Table> {
        *self.fetches.lock().unwrap() += 1;
        self.inner.fetch(request).await
    }

    async fn evaluate(
        &self,
        request: FetchRequest<'_>,
        expressions: &[String],
    ) -> Result<Vec<Value>> {
        self.inner.evaluate(request, expressions).await
    }
}

fn report() -> Arc<ReportDef> {
    let mut r = ReportDef::new("sales", "Sales {Region}");
    r.columns = vec![ColumnDef::new("State"), ColumnDef::new("Sales")];
    r.sort = vec![mad_core::SortKey::asc("State")];
    r.formats = vec![OutputFormat::Csv];
    r.file_name = "{recipient.id}".into();
    Arc::new(r)
}

fn task(recipients: Vec<Recipient>, outbox: Arc<Outbox>) -> (Task, Arc<Counting>) {
    let source = Arc::new(Counting {
        inner: TableSource::new("orders", orders()),
        fetches: Mutex::new(0),
    });
    let task = Task::new("t", source.clone())
        .with_report(report())
        .with_recipients(recipients)
        .with_channel(TaskChannel::new(outbox))
        .with_renderer(Arc::new(RowsAsText));
    (task, source)
}

fn region(id: &str, regions: &[&str]) -> Recipient {
    Recipient::new(id, id).with_filter(Filter::new("Region", regions.iter().copied()))
}

fn outbox(fail_for: Option<&str>) -> Arc<Outbox> {
    Arc::new(Outbox {
        name: "outbox".into(),
        fail_for: fail_for.map(str::to_string),
        ..Default::default()
    })
}

/// An outbox delivering on the calling thread when `blocking`: the engine then delivers on
/// the render thread, right after rendering.
fn outbox_in(blocking: bool, fail_for: Option<&str>) -> Arc<Outbox> {
    Arc::new(Outbox {
        name: "outbox".into(),
        fail_for: fail_for.map(str::to_string),
        blocking,
        ..Default::default()
    })
}

#[tokio::test]
async fn each_recipient_gets_only_their_rows_and_equal_filters_share_a_fetch() {
    for blocking in [false, true] {
        let out = outbox_in(blocking, None);
        let (task, source) = task(
            vec![
                region("ann", &["East"]),
                region("bob", &["West"]),
                region("cy", &["East"]),
                region("dee", &["West", "South"]),
            ],
            out.clone(),
        );
        let summary = Engine::default().run(&task).await.unwrap();
        assert_eq!(summary.counts.delivered, 4, "{}", summary.human());
        assert_eq!(
            *source.fetches.lock().unwrap(),
            3,
            "ann and cy share a fetch"
        );
        assert_eq!(summary.counts.fetches, 3);
        let received = out.received.lock().unwrap().clone();
        let of = |id: &str| received.iter().find(|(r, _)| r == id).unwrap().1.clone();
        assert_eq!(of("ann"), "Sales East|New York=10;Vermont=5;");
        assert_eq!(of("cy"), of("ann"));
        assert_eq!(of("bob"), "Sales West|California=7;Oregon=1.5;");
        assert_eq!(
            of("dee"),
            "Sales South, West|California=7;Oregon=1.5;Texas=2;"
        );
        assert_eq!(out.all_on_render_threads(), blocking);
    }
}

#[tokio::test]
async fn value_absent_from_data_is_skipped_with_reason_never_widened() {
    let out = outbox(None);
    let (task, _) = task(
        vec![region("ann", &["East"]), region("nemo", &["Atlantis"])],
        out.clone(),
    );
    let summary = Engine::default().run(&task).await.unwrap();
    let nemo = summary.outcome("nemo").unwrap();
    assert_eq!(nemo.status, Status::Skipped);
    assert!(
        nemo.reason.as_deref().unwrap().contains("Atlantis"),
        "{nemo:?}"
    );
    assert_eq!(out.received.lock().unwrap().len(), 1);
    assert_eq!(summary.counts.delivered, 1);
    assert_eq!(summary.counts.skipped, 1);
}

#[tokio::test]
async fn empty_intersection_with_task_filter_skips() {
    let out = outbox(None);
    let (mut task, source) = task(vec![region("ann", &["East"])], out.clone());
    task.filters = FilterSet::from_filters([Filter::new("Region", ["West"])]);
    let summary = Engine::default().run(&task).await.unwrap();
    let ann = summary.outcome("ann").unwrap();
    assert_eq!(ann.status, Status::Skipped);
    assert!(
        ann.reason
            .as_deref()
            .unwrap()
            .contains("no value in common"),
        "{ann:?}"
    );
    assert_eq!(*source.fetches.lock().unwrap(), 0, "nothing is fetched");
    assert!(out.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn filter_on_missing_field_fails_that_recipient_only() {
    let out = outbox(None);
    let (task, _) = task(
        vec![
            Recipient::new("odd", "odd").with_filter(Filter::new("Country", ["US"])),
            region("ann", &["East"]),
        ],
        out.clone(),
    );
    let summary = Engine::default().run(&task).await.unwrap();
    let odd = summary.outcome("odd").unwrap();
    assert_eq!(odd.status, Status::Failed);
    assert_eq!(odd.errors[0].kind, ErrorKind::InvalidConfig);
    assert!(odd.errors[0].message.contains("'Country'"));
    assert_eq!(summary.outcome("ann").unwrap().status, Status::Delivered);
}

#[tokio::test]
async fn one_failed_delivery_does_not_stop_the_others() {
    for blocking in [false, true] {
        let out = outbox_in(blocking, Some("bob"));
        let (task, _) = task(
            vec![
                region("ann", &["East"]),
                region("bob", &["West"]),
                region("cy", &["South"]),
            ],
            out.clone(),
        );
        let summary = Engine::default().run(&task).await.unwrap();
        let bob = summary.outcome("bob").unwrap();
        assert_eq!(bob.status, Status::Failed);
        assert_eq!(bob.errors[0].kind, ErrorKind::Unauthenticated);
        assert_eq!(bob.errors[0].channel.as_deref(), Some("outbox"));
        assert_eq!(summary.counts.delivered, 2);
        let json = summary.to_json();
        assert!(json.contains("\"unauthenticated\""), "{json}");
        assert_eq!(out.all_on_render_threads(), blocking);
    }
}

#[tokio::test]
async fn burst_makes_one_report_per_value() {
    let out = outbox(None);
    let (mut task, _) = task(vec![], out.clone());
    task.burst = Some("State".into());
    task.filters = FilterSet::from_filters([Filter::new("Region", ["East", "West"])]);
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.recipients, 4);
    assert_eq!(summary.counts.delivered, 4);
    let mut received = out.received.lock().unwrap().clone();
    received.sort();
    assert_eq!(
        received[0],
        ("California".into(), "Sales East, West|California=7;".into())
    );
    assert_eq!(received.len(), 4);
}

#[tokio::test]
async fn a_recipient_in_a_burst_gets_one_report_per_value() {
    let out = outbox(None);
    let (mut task, _) = task(vec![region("ann", &["East", "West"])], out.clone());
    task.burst = Some("State".into());
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(summary.counts.deliveries, 4, "{}", summary.human());
    assert_eq!(summary.counts.resumed, 0);
    let mut received: Vec<String> = out
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, text)| text.clone())
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            "Sales East, West|California=7;",
            "Sales East, West|New York=10;",
            "Sales East, West|Oregon=1.5;",
            "Sales East, West|Vermont=5;",
        ]
    );
}

#[tokio::test]
async fn a_report_no_channel_takes_is_skipped_with_the_reason() {
    let out = outbox(None);
    let task = Task::new("t", Arc::new(TableSource::new("orders", orders())))
        .with_report(report())
        .with_recipients(vec![region("ann", &["East"])])
        .with_channel(TaskChannel::new(out.clone()).with_formats(vec![OutputFormat::Pdf]))
        .with_renderer(Arc::new(RowsAsText));
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.skipped, 1, "{}", summary.human());
    let reason = summary.recipients[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("no channel") && reason.contains("csv"),
        "{reason}"
    );
    assert!(out.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn two_recipients_with_one_id_are_refused_before_anything_is_sent() {
    let out = outbox(None);
    let (task, _) = task(
        vec![region("ann", &["East"]), region("ann", &["West"])],
        out.clone(),
    );
    let err = Engine::default().run(&task).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("'ann'"), "{err}");
    assert!(out.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn task_without_channels_is_refused() {
    let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
    task.channels.clear();
    let err = Engine::default().run(&task).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn expressions_fill_placeholders_per_recipient() {
    let out = outbox(None);
    let (mut task, _) = task(
        vec![region("ann", &["East"]), region("bob", &["West"])],
        out.clone(),
    );
    let mut r = (*task.reports[0]).clone();
    r.title = "Sales {Region}: {total} in {orders} rows".into();
    r.expressions.insert(
        "total".into(),
        mad_core::report::ExpressionDef::Formatted {
            expr: "Sum([Sales])".into(),
            format: Some("#,##0.00".into()),
        },
    );
    r.expressions.insert(
        "orders".into(),
        mad_core::report::ExpressionDef::Plain("=Count(State)".into()),
    );
    task.reports = vec![Arc::new(r)];
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    let received = out.received.lock().unwrap().clone();
    let of = |id: &str| received.iter().find(|(r, _)| r == id).unwrap().1.clone();
    assert!(
        of("ann").starts_with("Sales East: 15.00 in 2 rows|"),
        "{}",
        of("ann")
    );
    assert!(
        of("bob").starts_with("Sales West: 8.50 in 2 rows|"),
        "{}",
        of("bob")
    );
}

#[tokio::test]
async fn a_retried_run_delivers_nothing_twice() {
    for blocking in [false, true] {
        let out = outbox_in(blocking, None);
        let (task, _) = task(
            vec![region("ann", &["East"]), region("bob", &["West"])],
            out.clone(),
        );
        let engine = Engine::default();
        let run = mad_core::RunInfo::at("run-1", 1_700_000_000.0);
        let first = engine.run_as(&task, run.clone()).await.unwrap();
        assert_eq!(first.counts.delivered, 2);
        let again = engine.run_as(&task, run).await.unwrap();
        assert_eq!(again.counts.delivered, 2);
        assert_eq!(again.counts.resumed, 2);
        assert!(
            again
                .human()
                .contains("2 deliveries (2 by an earlier attempt of this run)"),
            "{}",
            again.human()
        );
        assert_eq!(out.received.lock().unwrap().len(), 2, "nothing sent twice");
    }
}

#[tokio::test]
async fn an_interrupted_delivery_is_reported_not_repeated_unless_asked() {
    for blocking in [false, true] {
        use mad_core::runlog::{DeliveryKey, MemoryRunLog, RunLog};

        let out = outbox_in(blocking, None);
        let (task, _) = task(
            vec![region("ann", &["East"]), region("bob", &["West"])],
            out.clone(),
        );
        let log = Arc::new(MemoryRunLog::new());
        let run = mad_core::RunInfo::at("run-2", 1_700_000_000.0);
        // An earlier process started ann's delivery and died before recording its outcome.
        log.start_run(&run, "t").await.unwrap();
        let key = DeliveryKey {
            run_id: "run-2".into(),
            recipient: "ann".into(),
            report: "sales".into(),
            channel: "outbox".into(),
        };
        log.begin(&key).await.unwrap();

        let engine = Engine::default().with_run_log(log.clone());
        let summary = engine.run_as(&task, run.clone()).await.unwrap();
        let ann = summary.outcome("ann").unwrap();
        assert_eq!(ann.status, Status::Failed);
        assert!(ann.errors[0].message.contains("interrupted"), "{ann:?}");
        assert_eq!(summary.outcome("bob").unwrap().status, Status::Delivered);
        assert_eq!(out.received.lock().unwrap().len(), 1);

        let options = mad_core::EngineOptions {
            interrupted: mad_core::engine::InterruptedPolicy::Resend,
            ..Default::default()
        };
        log.begin(&key).await.unwrap(); // interrupted again
        let summary = Engine::new(options)
            .with_run_log(log)
            .run_as(&task, run)
            .await
            .unwrap();
        assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
        assert_eq!(summary.counts.resumed, 1, "bob was already delivered");
        assert_eq!(out.received.lock().unwrap().len(), 2);
    }
}

/// Finds every interrupted delivery complete, and remembers what it is told was delivered
/// earlier in the run.
#[derive(Debug, Default)]
struct FindsEverything {
    told: Mutex<Vec<(String, String, Vec<String>)>>,
}

#[async_trait]
impl Channel for FindsEverything {
    fn name(&self) -> &str {
        "outbox"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities::default()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        Ok(Receipt {
            channel: self.name().into(),
            locations: vec![format!("{} now", delivery.recipient.id)],
            bytes: 1,
        })
    }

    fn delivered_earlier(&self, _run: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.told.lock().unwrap().push((
            recipient.into(),
            report.into(),
            receipt.locations.clone(),
        ));
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        Ok(Some(Receipt {
            channel: self.name().into(),
            locations: vec![format!("{} before", delivery.recipient.id)],
            bytes: 1,
        }))
    }
}

#[tokio::test]
async fn an_interrupted_delivery_found_complete_holds_its_targets_for_the_run() {
    use mad_core::runlog::{DeliveryKey, MemoryRunLog, RunLog};

    let channel = Arc::new(FindsEverything::default());
    let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
    task.channels = vec![TaskChannel::new(channel.clone())];
    let log = Arc::new(MemoryRunLog::new());
    let run = mad_core::RunInfo::at("run-3", 1_700_000_000.0);
    log.start_run(&run, "t").await.unwrap();
    log.begin(&DeliveryKey {
        run_id: "run-3".into(),
        recipient: "ann".into(),
        report: "sales".into(),
        channel: "outbox".into(),
    })
    .await
    .unwrap();

    let summary = Engine::default()
        .with_run_log(log)
        .run_as(&task, run)
        .await
        .unwrap();

    assert_eq!(summary.counts.resumed, 1, "{}", summary.human());
    assert_eq!(
        *channel.told.lock().unwrap(),
        [(
            "ann".to_string(),
            "sales".to_string(),
            vec!["ann before".to_string()]
        )],
        "the channel hears that ann's targets are taken, as for a delivery the log lists"
    );
}

/// Marks documents as protected by prefixing the password's length; refuses CSV.
#[derive(Debug)]
struct MarkProtector;

impl mad_core::Protector for MarkProtector {
    fn protect(
        &self,
        document: &mad_core::Document,
        passwords: &mad_core::Passwords,
    ) -> Result<Vec<u8>> {
        let open = passwords.open.as_ref().unwrap();
        let mut out = format!("locked{}|", open.expose().len()).into_bytes();
        out.extend_from_slice(&document.bytes);
        Ok(out)
    }

    fn bundle(&self, documents: &[mad_core::Document], _: &mad_core::Passwords) -> Result<Vec<u8>> {
        Ok(format!("zip of {}", documents.len()).into_bytes())
    }
}

#[tokio::test]
async fn protection_uses_each_recipients_secret_and_fails_closed_without_one() {
    use mad_core::report::{PasswordDef, Protection};

    let out = outbox(None);
    let mut ann = region("ann", &["East"]);
    ann.secrets
        .insert("pin".into(), mad_core::Secret::new("1234"));
    let bob = region("bob", &["West"]); // no secret
    let (mut task, _) = task(vec![ann, bob], out.clone());
    let mut r = (*task.reports[0]).clone();
    r.protection = Some(Protection {
        open_password: Some(PasswordDef::Recipient {
            recipient_secret: "pin".into(),
        }),
        edit_password: None,
        bundle: false,
    });
    task.reports = vec![Arc::new(r)];
    task.protector = Some(Arc::new(MarkProtector));
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.outcome("ann").unwrap().status, Status::Delivered);
    let bob = summary.outcome("bob").unwrap();
    assert_eq!(bob.status, Status::Failed);
    assert!(bob.errors[0].message.contains("no secret 'pin'"), "{bob:?}");
    let received = out.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].1.starts_with("locked4|Sales East"),
        "{received:?}"
    );
}

/// Fails with a transient error a given number of times, then delivers.
#[derive(Debug)]
struct Flaky {
    failures_left: Mutex<u32>,
    attempts: Mutex<u32>,
    blocking: bool,
}

impl Flaky {
    fn attempt(&self) -> Result<Receipt> {
        *self.attempts.lock().unwrap() += 1;
        let mut left = self.failures_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Err(Error::new(ErrorKind::RateLimited, "slow down")
                .with_retry_after(std::time::Duration::from_millis(5)));
        }
        Ok(Receipt {
            channel: "flaky".into(),
            locations: vec![],
            bytes: 0,
        })
    }
}

#[async_trait]
impl Channel for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            blocking: self.blocking,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, _: &Delivery) -> Result<Receipt> {
        self.attempt()
    }

    fn deliver_blocking(&self, _: &Delivery) -> Result<Receipt> {
        self.attempt()
    }
}

/// Keeps what it is sent but loses the answer to the first attempt, as a server does when the
/// connection drops after the upload; it can look for what arrived.
#[derive(Debug, Default)]
struct LosesFirstAnswer {
    kept: Mutex<Vec<String>>,
    can_confirm: bool,
}

#[async_trait]
impl Channel for LosesFirstAnswer {
    fn name(&self) -> &str {
        "loses-first-answer"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities::default()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let mut kept = self.kept.lock().unwrap();
        kept.push(delivery.recipient.id.clone());
        if kept.len() == 1 {
            return Err(Error::new(ErrorKind::Timeout, "no answer"));
        }
        Ok(Receipt {
            channel: self.name().into(),
            locations: vec![format!("copy {}", kept.len())],
            bytes: 1,
        })
    }

    async fn confirm(&self, delivery: &Delivery) -> Result<Option<Receipt>> {
        if !self.can_confirm {
            return Err(Error::unsupported("test", "confirm"));
        }
        let kept = self.kept.lock().unwrap();
        Ok(kept.contains(&delivery.recipient.id).then(|| Receipt {
            channel: self.name().into(),
            locations: vec!["copy 1".into()],
            bytes: 1,
        }))
    }
}

#[tokio::test]
async fn a_lost_answer_is_looked_for_before_sending_again() {
    for can_confirm in [true, false] {
        let channel = Arc::new(LosesFirstAnswer {
            can_confirm,
            ..Default::default()
        });
        let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
        task.channels = vec![TaskChannel::new(channel.clone())];
        let summary = Engine::new(mad_core::EngineOptions {
            retry_delay: std::time::Duration::from_millis(1),
            ..Default::default()
        })
        .run(&task)
        .await
        .unwrap();
        assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
        // A channel that can look finds the first copy and is not sent a second; one that
        // cannot is sent again, as before.
        let copies = if can_confirm { 1 } else { 2 };
        assert_eq!(channel.kept.lock().unwrap().len(), copies, "{can_confirm}");
        let receipt = &summary.recipients[0].receipts[0];
        assert_eq!(receipt.locations, [format!("copy {copies}")]);
    }
}

#[tokio::test]
async fn retryable_errors_are_retried_then_given_up() {
    let options = || mad_core::EngineOptions {
        retry_delay: std::time::Duration::from_millis(1),
        delivery_retries: 2,
        ..Default::default()
    };
    // A blocking channel's first attempt is made on the render thread, its retries after.
    let cases = [(2, true, 3), (5, false, 3)];
    for (blocking, (failures, delivered, attempts)) in [false, true]
        .into_iter()
        .flat_map(|b| cases.map(|c| (b, c)))
    {
        let flaky = Arc::new(Flaky {
            failures_left: Mutex::new(failures),
            attempts: Mutex::new(0),
            blocking,
        });
        let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
        task.channels = vec![TaskChannel::new(flaky.clone())];
        let summary = Engine::new(options()).run(&task).await.unwrap();
        assert_eq!(
            summary.counts.delivered == 1,
            delivered,
            "{}",
            summary.human()
        );
        assert_eq!(*flaky.attempts.lock().unwrap(), attempts);
        if !delivered {
            assert_eq!(summary.recipients[0].errors[0].kind, ErrorKind::RateLimited);
        }
    }
}

/// Writes the recipient's name, as a template file may.
#[derive(Debug)]
struct RecipientName;

impl Renderer for RecipientName {
    fn format(&self) -> OutputFormat {
        OutputFormat::Html
    }

    fn capabilities(&self) -> mad_core::RendererCapabilities {
        mad_core::RendererCapabilities {
            templates: true,
            ..Default::default()
        }
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        let name = job.placeholders.get("recipient.name").unwrap_or_default();
        Ok(name.as_bytes().to_vec())
    }
}

#[tokio::test]
async fn a_templated_report_is_rendered_per_placeholder_values() {
    let out = outbox(None);
    let (mut task, _) = task(
        vec![region("ann", &["East"]), region("cy", &["East"])],
        out.clone(),
    );
    let mut report = (*task.reports[0]).clone();
    report.template = Some("body.html".into());
    report.formats = vec![OutputFormat::Html];
    task.reports = vec![Arc::new(report)];
    task.renderers = [(
        OutputFormat::Html,
        Arc::new(RecipientName) as Arc<dyn Renderer>,
    )]
    .into();
    let summary = Engine::default().run(&task).await.unwrap();

    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    let mut received = out.received.lock().unwrap().clone();
    received.sort();
    assert_eq!(
        received,
        [("ann".into(), "ann".into()), ("cy".into(), "cy".into())]
    );
}

/// Prints the filters the render was given, as the renderers print them in a cover line.
#[derive(Debug)]
struct FiltersLine;

impl Renderer for FiltersLine {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        Ok(job.filters.to_string().into_bytes())
    }
}

#[tokio::test]
async fn a_shared_render_shows_the_filters_every_member_has_not_the_first_ones_own() {
    let out = outbox(None);
    let (mut task, _) = task(
        vec![
            region("ann", &["East", "West"]),
            region("cy", &["East", "South"]),
        ],
        out.clone(),
    );
    let mut report = (*task.reports[0]).clone();
    report.filters = FilterSet::from_filters([Filter::new("Region", ["East"])]);
    task.reports = vec![Arc::new(report)];
    task.renderers = [(
        OutputFormat::Csv,
        Arc::new(FiltersLine) as Arc<dyn Renderer>,
    )]
    .into();

    let summary = Engine::default().run(&task).await.unwrap();

    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    let received = out.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    for (recipient, text) in &received {
        assert_eq!(text, "Region = East", "{recipient}");
    }
}

#[tokio::test]
async fn charts_or_a_template_no_renderer_can_make_are_refused_not_left_out() {
    let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
    let mut report = (*task.reports[0]).clone();
    report.charts = vec![mad_core::ChartDef::new(
        mad_core::ChartKind::Bar,
        "Region",
        "Sales",
    )];
    task.reports = vec![Arc::new(report.clone())];
    let err = Engine::default().run(&task).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string()
            .contains("none of its formats (csv) draws charts"),
        "{err}"
    );

    report.charts.clear();
    report.template = Some("body.html".into());
    report.formats = vec![OutputFormat::Html];
    task.reports = vec![Arc::new(report)];
    task.renderers = [(
        OutputFormat::Html,
        Arc::new(WithPicture) as Arc<dyn Renderer>,
    )]
    .into();
    let err = Engine::default().run(&task).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("fills no templates"), "{err}");
}

/// Renders the rows as text and returns a picture beside them, as the HTML renderer does.
#[derive(Debug)]
struct WithPicture;

impl Renderer for WithPicture {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        RowsAsText.render(job)
    }

    fn render_document(&self, job: &RenderJob<'_>) -> Result<mad_core::Rendered> {
        Ok(mad_core::Rendered {
            bytes: b"<img src=\"cid:picture@test\">".to_vec(),
            inline: vec![mad_core::InlinePart {
                content_id: "picture@test".into(),
                media_type: "image/png".into(),
                bytes: format!("picture of {}", job.table.len())
                    .into_bytes()
                    .into(),
            }],
        })
    }
}

/// Keeps every document it receives.
#[derive(Debug, Default)]
struct Keeper(Mutex<Vec<Arc<mad_core::Document>>>);

#[async_trait]
impl Channel for Keeper {
    fn name(&self) -> &str {
        "keeper"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities::default()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.0
            .lock()
            .unwrap()
            .extend(delivery.documents.iter().cloned());
        Ok(Receipt {
            channel: "keeper".into(),
            locations: Vec::new(),
            bytes: delivery.bytes(),
        })
    }
}

#[tokio::test]
async fn inline_parts_of_a_render_reach_the_channel() {
    let keeper = Arc::new(Keeper::default());
    let (mut task, _) = task(vec![region("ann", &["East"])], outbox(None));
    task.channels = vec![TaskChannel::new(keeper.clone())];
    task.renderers = [(
        OutputFormat::Csv,
        Arc::new(WithPicture) as Arc<dyn Renderer>,
    )]
    .into();
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());

    let documents = keeper.0.lock().unwrap().clone();
    assert_eq!(documents.len(), 1);
    assert_eq!(&documents[0].bytes[..], b"<img src=\"cid:picture@test\">");
    assert_eq!(documents[0].inline.len(), 1);
    assert_eq!(documents[0].inline[0].content_id, "picture@test");
    assert_eq!(&documents[0].inline[0].bytes[..], b"picture of 2");
    assert!(format!("{:?}", documents[0]).contains("picture@test"));
}

#[tokio::test]
async fn run_date_and_time_are_on_each_recipients_wall_clock() {
    let out = outbox(None);
    let zoned = |id: &str, zone: &str| {
        let mut r = region(id, &["East"]);
        r.time_zone = Some(zone.into());
        r
    };
    let (mut task, _) = task(
        vec![
            zoned("berlin", "Europe/Berlin"),
            zoned("new-york", "america/new_york"),
            region("utc", &["East"]),
        ],
        out.clone(),
    );
    let mut r = (*task.reports[0]).clone();
    r.title = "{run.date} {run.time} {run.zone}".into();
    task.reports = vec![Arc::new(r)];
    // 01:30 UTC on the night Europe moves its clocks forward (at 01:00 UTC).
    let run = mad_core::RunInfo::at("run-dst", 1_774_747_800.0);
    let summary = Engine::default().run_as(&task, run).await.unwrap();
    assert_eq!(summary.counts.delivered, 3, "{}", summary.human());
    let received = out.received.lock().unwrap().clone();
    let title = |id: &str| {
        let text = &received.iter().find(|(r, _)| r == id).unwrap().1;
        text.split('|').next().unwrap().to_string()
    };
    assert_eq!(title("berlin"), "2026-03-29 03:30:00 Europe/Berlin");
    assert_eq!(title("new-york"), "2026-03-28 21:30:00 America/New_York");
    assert_eq!(title("utc"), "2026-03-29 01:30:00 UTC");
}

#[tokio::test]
async fn a_wrong_locale_or_time_zone_fails_that_recipient_and_serves_the_others() {
    let out = outbox(None);
    let mut typo_zone = region("mars", &["East"]);
    typo_zone.time_zone = Some("Europe/Berlln".into());
    let mut not_a_tag = region("country", &["West"]);
    not_a_tag.locale = Some("Germany".into());
    let mut fine = region("swiss", &["West"]);
    fine.locale = Some("de-CH".into());
    fine.time_zone = Some("Europe/Zurich".into());
    let (task, _) = task(vec![typo_zone, not_a_tag, fine], out.clone());
    let summary = Engine::default().run(&task).await.unwrap();
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert_eq!(summary.counts.failed, 2, "{}", summary.human());
    let failure = |id: &str| {
        let r = summary.recipients.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.errors.len(), 1, "one error per recipient: {:?}", r.errors);
        assert_eq!(r.errors[0].kind, ErrorKind::InvalidConfig);
        r.errors[0].message.clone()
    };
    let zone = failure("mars");
    assert!(
        zone.contains("'Europe/Berlln' is not a known time zone"),
        "{zone}"
    );
    assert!(zone.contains("recipient 'mars'"), "{zone}");
    let locale = failure("country");
    assert!(locale.contains("'Germany' is not a locale"), "{locale}");
    let received = out.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "swiss");
}

/// Records, in order, what the engine tells it an earlier attempt delivered and what it
/// delivers.
#[derive(Debug, Default)]
struct Remembering {
    inner: Outbox,
    events: Mutex<Vec<String>>,
}

#[async_trait]
impl Channel for Remembering {
    fn name(&self) -> &str {
        "outbox"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities::default()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.events
            .lock()
            .unwrap()
            .push(format!("deliver {}", delivery.recipient.id));
        self.inner.deliver(delivery).await
    }

    fn delivered_earlier(&self, run_id: &str, recipient: &str, report: &str, receipt: &Receipt) {
        self.events.lock().unwrap().push(format!(
            "earlier {run_id} {recipient} {report} {:?}",
            receipt.locations
        ));
    }
}

#[tokio::test]
async fn a_resumed_run_tells_channels_what_was_delivered_before_delivering() {
    use mad_core::runlog::MemoryRunLog;
    let log = Arc::new(MemoryRunLog::new());
    let run = mad_core::RunInfo::at("run-r", 1_700_000_000.0);
    let first = Arc::new(Remembering {
        inner: Outbox {
            name: "outbox".into(),
            fail_for: Some("bob".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let (mut task, _) = task(
        vec![region("ann", &["East"]), region("bob", &["West"])],
        outbox(None),
    );
    task.channels = vec![TaskChannel::new(first.clone())];
    let engine = Engine::default().with_run_log(log.clone());
    let summary = engine.run_as(&task, run.clone()).await.unwrap();
    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    assert!(
        first
            .events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.starts_with("deliver")),
        "a new run has no past"
    );

    // The resumed attempt, with a fresh channel as a new process would have.
    let resumed = Arc::new(Remembering {
        inner: Outbox {
            name: "outbox".into(),
            ..Default::default()
        },
        ..Default::default()
    });
    task.channels = vec![TaskChannel::new(resumed.clone())];
    let summary = engine.run_as(&task, run).await.unwrap();
    assert_eq!(summary.counts.delivered, 2, "{}", summary.human());
    assert_eq!(
        *resumed.events.lock().unwrap(),
        [r#"earlier run-r ann sales ["ann.csv"]"#, "deliver bob"]
    );
}

/// Asserts that the run log holds the outbox delivery of report "sales" to `recipient` in
/// `run` as failed, not as started (which a resumed run would take for a delivery that may have
/// arrived), and leaves it so. Deliveries on the render thread are begun before rendering, so
/// a failure before they are made must still be recorded.
async fn assert_recorded_failed(log: &mad_core::runlog::MemoryRunLog, run: &str, recipient: &str) {
    use mad_core::runlog::{DeliveryKey, PriorAttempt, RunLog};

    let key = DeliveryKey::new(run, recipient, "sales", None, "outbox");
    let prior = log.begin(&key).await.unwrap();
    let PriorAttempt::Failed(failure) = prior else {
        panic!("{recipient}: {prior:?}");
    };
    log.finish(&key, &Err(failure)).await.unwrap();
}

/// Renders as [`RowsAsText`] does, but fails for one recipient while `failing` is set.
#[derive(Debug)]
struct FailingFor {
    id: &'static str,
    failing: std::sync::atomic::AtomicBool,
}

impl Renderer for FailingFor {
    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }

    fn render(&self, job: &RenderJob<'_>) -> Result<Vec<u8>> {
        let failing = self.failing.load(std::sync::atomic::Ordering::SeqCst);
        if failing && job.placeholders.render("{recipient.id}")? == self.id {
            return Err(Error::new(ErrorKind::Render, "the renderer broke"));
        }
        RowsAsText.render(job)
    }
}

#[tokio::test]
async fn a_report_that_fails_to_render_is_recorded_failed_and_made_when_the_run_resumes() {
    use mad_core::runlog::MemoryRunLog;

    for blocking in [false, true] {
        let out = outbox_in(blocking, None);
        let renderer = Arc::new(FailingFor {
            id: "bob",
            failing: true.into(),
        });
        let (task, _) = task(
            vec![region("ann", &["East"]), region("bob", &["West"])],
            out.clone(),
        );
        let task = task.with_renderer(renderer.clone());
        let log = Arc::new(MemoryRunLog::new());
        let engine = Engine::default().with_run_log(log.clone());
        let run = mad_core::RunInfo::at("run-3", 1_700_000_000.0);

        let first = engine.run_as(&task, run.clone()).await.unwrap();
        let bob = first.outcome("bob").unwrap();
        assert_eq!(bob.status, Status::Failed, "{}", first.human());
        assert_eq!(bob.errors[0].kind, ErrorKind::Render);
        assert_eq!(first.outcome("ann").unwrap().status, Status::Delivered);
        assert_eq!(out.received.lock().unwrap().len(), 1);
        if blocking {
            assert_recorded_failed(&log, "run-3", "bob").await;
        }

        renderer
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let again = engine.run_as(&task, run).await.unwrap();
        assert_eq!(again.counts.delivered, 2, "{}", again.human());
        assert_eq!(again.counts.resumed, 1, "ann was delivered before");
        let received = out.received.lock().unwrap().clone();
        assert_eq!(received.len(), 2, "bob once, ann not again: {received:?}");
        assert_eq!(received[1].0, "bob");
        assert_eq!(out.all_on_render_threads(), blocking);
    }
}

/// A channel delivering on the calling thread that panics for one recipient.
#[derive(Debug, Default)]
struct PanicsFor {
    inner: Outbox,
    id: &'static str,
}

#[async_trait]
impl Channel for PanicsFor {
    fn name(&self) -> &str {
        "outbox"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            blocking: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        self.deliver_blocking(delivery)
    }

    fn deliver_blocking(&self, delivery: &Delivery) -> Result<Receipt> {
        if delivery.recipient.id == self.id {
            panic!("the channel broke for {}", self.id);
        }
        self.inner.take(delivery)
    }
}

#[tokio::test]
async fn a_panic_in_one_recipients_delivery_on_the_render_thread_spares_the_others() {
    use mad_core::runlog::MemoryRunLog;

    let panicky = Arc::new(PanicsFor {
        inner: Outbox {
            name: "outbox".into(),
            ..Default::default()
        },
        id: "bob",
    });
    let keeper = Arc::new(Keeper::default());
    // ann and bob share one render.
    let (mut task, _) = task(
        vec![region("ann", &["East"]), region("bob", &["East"])],
        outbox(None),
    );
    task.channels = vec![
        TaskChannel::new(panicky.clone()),
        TaskChannel::new(keeper.clone()),
    ];
    let log = Arc::new(MemoryRunLog::new());
    let engine = Engine::default().with_run_log(log);
    let run = mad_core::RunInfo::at("run-p", 1_700_000_000.0);

    let summary = engine.run_as(&task, run.clone()).await.unwrap();
    let ann = summary.outcome("ann").unwrap();
    assert_eq!(ann.status, Status::Delivered, "{}", summary.human());
    assert_eq!(ann.receipts.len(), 2);
    let bob = summary.outcome("bob").unwrap();
    assert_eq!(
        bob.receipts.len(),
        1,
        "the keeper still took bob's: {bob:?}"
    );
    assert_eq!(bob.errors.len(), 1);
    assert_eq!(bob.errors[0].channel.as_deref(), Some("outbox"));
    assert!(bob.errors[0].message.contains("panicked"), "{bob:?}");
    assert!(
        bob.errors[0].message.contains("may have arrived"),
        "{bob:?}"
    );
    assert_eq!(keeper.0.lock().unwrap().len(), 2);

    // Resumed: ann is not written again, and bob's unsure delivery is not repeated blindly.
    let again = engine.run_as(&task, run).await.unwrap();
    let written: Vec<String> = panicky
        .inner
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(written, ["ann"], "{}", again.human());
    assert_eq!(keeper.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_file_name_that_cannot_be_made_is_recorded_failed_and_made_when_the_run_resumes() {
    use mad_core::runlog::MemoryRunLog;

    for blocking in [false, true] {
        let out = outbox_in(blocking, None);
        let (mut task, _) = task(
            vec![Recipient::new("all", "all"), region("ann", &["East"])],
            out.clone(),
        );
        let mut r = (*task.reports[0]).clone();
        r.title = "Sales".into();
        // "all" has no Region filter, so no value for its file name.
        r.file_name = "{Region}".into();
        task.reports = vec![Arc::new(r)];
        let log = Arc::new(MemoryRunLog::new());
        let engine = Engine::default().with_run_log(log.clone());
        let run = mad_core::RunInfo::at("run-f", 1_700_000_000.0);

        let first = engine.run_as(&task, run.clone()).await.unwrap();
        assert_eq!(first.outcome("all").unwrap().status, Status::Failed);
        assert_eq!(first.outcome("ann").unwrap().status, Status::Delivered);
        if blocking {
            assert_recorded_failed(&log, "run-f", "all").await;
        }

        task.recipients[0] = Arc::new(region("all", &["West"]));
        let again = engine.run_as(&task, run).await.unwrap();
        assert_eq!(
            again.outcome("all").unwrap().status,
            Status::Delivered,
            "{}",
            again.human()
        );
        assert_eq!(out.received.lock().unwrap().len(), 2, "ann once, all once");
    }
}

#[tokio::test]
async fn a_report_whose_expressions_fail_does_not_stop_a_report_sharing_its_fetch() {
    for blocking in [false, true] {
        let out = outbox_in(blocking, None);
        let (mut task, _) = task(
            vec![region("ann", &["East"]), region("cy", &["East"])],
            out.clone(),
        );
        let mut broken = (*task.reports[0]).clone();
        broken.name = "broken".into();
        broken.expressions.insert(
            "total".into(),
            mad_core::report::ExpressionDef::Plain("Sum([NoSuchField])".into()),
        );
        let fine = (*task.reports[0]).clone();
        task.reports = vec![Arc::new(broken), Arc::new(fine)];

        let summary = Engine::default().run(&task).await.unwrap();
        for id in ["ann", "cy"] {
            let outcome = summary.outcome(id).unwrap();
            assert_eq!(outcome.receipts.len(), 1, "{}", summary.human());
            assert_eq!(outcome.errors.len(), 1, "{}", summary.human());
            assert_eq!(outcome.errors[0].report.as_deref(), Some("broken"));
        }
        let mut received: Vec<String> = out
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect();
        received.sort();
        assert_eq!(received, ["ann", "cy"], "'sales' for each, once");
    }
}
