//! The run engine: from a task to delivered documents and a summary.
//!
//! 1. Expand the task into units: one per recipient (or per burst value), each with its
//!    effective filters (task ∩ recipient ∩ burst value).
//! 2. Group units by what they need fetched (effective filters ∩ report filters, the report's
//!    query, the identity) and fetch once per group.
//! 3. Render once per distinct content (report, format, and the placeholder values the
//!    report's content uses) on a bounded CPU pool.
//! 4. Deliver each recipient's documents to every channel, with a concurrency limit. Channels
//!    that deliver on the calling thread (files on a local disk) get them on the render
//!    thread, right after rendering.
//!
//! One recipient's failure is recorded and the run goes on.

mod deliver;

use deliver::{HereDelivery, HereOutcome, Member, Progress};

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::channel::{Channel, Delivery, Receipt};
use crate::cpu::CpuPool;
use crate::error::{Error, ErrorKind, Result};
use crate::filter::{FieldFilter, Filter, FilterSet};
use crate::format::{Locale, display};
use crate::placeholder::Placeholders;
use crate::recipient::Recipient;
use crate::render::{Document, InlinePart, Passwords, Protector, RenderJob, Renderer};
use crate::report::{OutputFormat, PasswordDef, Protection, ReportDef};
pub use crate::runlog::RunInfo;
use crate::runlog::{DeliveryKey, MemoryRunLog, PriorAttempt, RunLog};
use crate::secret::Secret;
use crate::source::{DataSource, FetchRequest, Query};
use crate::summary::{Counts, Durations, Failure, RecipientOutcome, RunSummary, Status, millis};
use crate::table::Table;
use crate::value::{NumberFormat, Value};

/// One format of a rendered report: its bytes and the parts they refer to.
type RenderedFormat = (OutputFormat, bytes::Bytes, Vec<InlinePart>);

/// What to do when a recipient's filters select no rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnEmpty {
    /// Skip the recipient and record why.
    #[default]
    Skip,
    /// Render and deliver a report that says there is no data.
    Render,
}

/// A channel of a task, optionally limited to some formats.
#[derive(Debug, Clone)]
pub struct TaskChannel {
    /// The name deliveries are recorded under (the definition's name); two channels of one
    /// task must have different names.
    pub name: String,
    pub channel: Arc<dyn Channel>,
    /// The formats this channel receives; all of the report's formats when absent.
    pub formats: Option<Vec<OutputFormat>>,
}

impl TaskChannel {
    /// The channel under its own name.
    pub fn new(channel: Arc<dyn Channel>) -> Self {
        TaskChannel {
            name: channel.name().to_string(),
            channel,
            formats: None,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_formats(mut self, formats: Vec<OutputFormat>) -> Self {
        self.formats = Some(formats);
        self
    }

    fn accepts(&self, format: OutputFormat) -> bool {
        self.formats.as_ref().is_none_or(|f| f.contains(&format))
    }
}

/// A task ready to run: resolved sources, reports, recipients, channels and renderers.
///
/// Build one with [`Task::new`] and the `with_*` methods (or from definitions with
/// [`crate::Runtime::task`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Task {
    pub name: String,
    pub source: Arc<dyn DataSource>,
    pub reports: Vec<Arc<ReportDef>>,
    pub recipients: Vec<Arc<Recipient>>,
    /// Produce one report per value of this field (per recipient, when recipients are given).
    pub burst: Option<String>,
    /// Filters that apply to every recipient.
    pub filters: FilterSet,
    pub channels: Vec<TaskChannel>,
    pub renderers: BTreeMap<OutputFormat, Arc<dyn Renderer>>,
    /// Puts passwords on documents of reports that ask for protection.
    pub protector: Option<Arc<dyn Protector>>,
    pub on_empty: OnEmpty,
}

impl Task {
    /// A task reading `source`, with no reports, recipients or channels yet.
    pub fn new(name: impl Into<String>, source: Arc<dyn DataSource>) -> Self {
        Task {
            name: name.into(),
            source,
            reports: Vec::new(),
            recipients: Vec::new(),
            burst: None,
            filters: FilterSet::all(),
            channels: Vec::new(),
            renderers: BTreeMap::new(),
            protector: None,
            on_empty: OnEmpty::default(),
        }
    }

    pub fn with_report(mut self, report: impl Into<Arc<ReportDef>>) -> Self {
        self.reports.push(report.into());
        self
    }

    pub fn with_recipient(mut self, recipient: impl Into<Arc<Recipient>>) -> Self {
        self.recipients.push(recipient.into());
        self
    }

    pub fn with_recipients<R: Into<Arc<Recipient>>>(
        mut self,
        recipients: impl IntoIterator<Item = R>,
    ) -> Self {
        self.recipients
            .extend(recipients.into_iter().map(Into::into));
        self
    }

    /// One report per value of `field` (per recipient, when there are recipients).
    pub fn with_burst(mut self, field: impl Into<String>) -> Self {
        self.burst = Some(field.into());
        self
    }

    pub fn with_filters(mut self, filters: FilterSet) -> Self {
        self.filters = filters;
        self
    }

    pub fn with_channel(mut self, channel: impl Into<TaskChannel>) -> Self {
        self.channels.push(channel.into());
        self
    }

    pub fn with_renderer(mut self, renderer: Arc<dyn Renderer>) -> Self {
        self.renderers.insert(renderer.format(), renderer);
        self
    }

    /// The renderers and the protector of `registry`.
    pub fn with_registry(mut self, registry: &crate::registry::Registry) -> Self {
        self.renderers.extend(registry.renderers().clone());
        self.protector = registry.protector().cloned().or(self.protector);
        self
    }

    pub fn with_protector(mut self, protector: Arc<dyn Protector>) -> Self {
        self.protector = Some(protector);
        self
    }

    pub fn with_on_empty(mut self, on_empty: OnEmpty) -> Self {
        self.on_empty = on_empty;
        self
    }
}

impl From<Arc<dyn Channel>> for TaskChannel {
    fn from(channel: Arc<dyn Channel>) -> Self {
        TaskChannel::new(channel)
    }
}

/// Limits and switches for runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Documents rendered at once (CPU-bound work).
    pub render_threads: usize,
    /// Filter sets fetched and processed at once.
    pub fetch_concurrency: usize,
    /// Deliveries in flight at once.
    pub delivery_concurrency: usize,
    /// Fixed timestamps and ids in outputs, for comparing files.
    pub deterministic: bool,
    /// What to do with a delivery whose earlier attempt was interrupted and whose channel
    /// cannot tell whether it arrived.
    pub interrupted: InterruptedPolicy,
    /// How often a delivery that failed with a retryable error (timeout, rate limit, transient
    /// failure) is tried again, with exponential backoff from `retry_delay`.
    pub delivery_retries: u32,
    pub retry_delay: Duration,
    /// The longest wait between tries of the engine's own backoff.
    pub max_retry_delay: Duration,
    /// The longest wait a server may ask for (`Retry-After`, or a wait in its error body)
    /// that the engine honours in full before trying again; a longer one is cut to this.
    /// Separate from `max_retry_delay`, since trying before the server's wait is over only
    /// earns another refusal (Dropbox asks for 300 seconds at times).
    pub max_server_wait: Duration,
}

/// What to do with a delivery an earlier, interrupted attempt may already have made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterruptedPolicy {
    /// Record it as failed with the reason, so nobody receives it twice; a person decides.
    #[default]
    Report,
    /// Deliver it again (at least once: the recipient may receive it twice).
    Resend,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineOptions {
            render_threads: cores,
            fetch_concurrency: cores * 4,
            delivery_concurrency: 16,
            deterministic: false,
            interrupted: InterruptedPolicy::Report,
            delivery_retries: 3,
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(60),
            max_server_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Runs tasks.
#[derive(Debug, Clone)]
pub struct Engine {
    options: EngineOptions,
    cpu: Arc<CpuPool>,
    render_slots: Arc<Semaphore>,
    delivery_slots: Arc<Semaphore>,
    run_log: Arc<dyn RunLog>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineOptions::default())
    }
}

/// One recipient (or burst value) with its effective filters.
struct Unit {
    slot: usize,
    recipient: Arc<Recipient>,
    filters: FilterSet,
    burst: Option<String>,
}

/// Units sharing one fetch.
struct Group {
    filters: FilterSet,
    query: Arc<Query>,
    identity: Option<String>,
    members: Vec<(usize, usize)>, // (unit, report)
}

/// What happened to one (unit, report) pair.
enum MemberOutcome {
    Skipped(String),
    Failed(Failure),
    Done {
        rows: usize,
        receipts: Vec<Receipt>,
        failures: Vec<Failure>,
        resumed: usize,
    },
}

#[derive(Default)]
struct GroupResult {
    outcomes: Vec<(usize, MemberOutcome)>, // (unit, outcome)
    fetched: bool,
    documents: usize,
    fetch: Duration,
    render: Duration,
    deliver: Duration,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Engine {
            cpu: Arc::new(CpuPool::new(options.render_threads)),
            // A job waits behind each running one, so a render thread that finishes goes on
            // to the next without sleeping.
            render_slots: Arc::new(Semaphore::new(2 * options.render_threads.max(1))),
            delivery_slots: Arc::new(Semaphore::new(options.delivery_concurrency.max(1))),
            run_log: Arc::new(MemoryRunLog::new()),
            options,
        }
    }

    /// Records deliveries in `run_log`, so a retried or resumed run skips what was delivered.
    pub fn with_run_log(mut self, run_log: Arc<dyn RunLog>) -> Self {
        self.run_log = run_log;
        self
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs a task as a new run.
    pub async fn run(&self, task: &Task) -> Result<RunSummary> {
        self.run_as(task, RunInfo::now()).await
    }

    /// Runs a task under a given run identity; with the id of an earlier run, resumes it:
    /// deliveries the run log holds as done are not made again.
    ///
    /// Returns an error only when the task as a whole cannot run (an inconsistent definition,
    /// or burst values that cannot be read); each recipient's failure is in the summary.
    pub async fn run_as(&self, task: &Task, run: RunInfo) -> Result<RunSummary> {
        let started = Instant::now();
        validate(task)?;
        let run = self.run_log.start_run(&run, &task.name).await?;
        // A resumed run: the channels learn what earlier attempts delivered before anything
        // new is delivered, so no later delivery can take an earlier one's target.
        for (key, receipt) in self.run_log.delivered(&run.id).await? {
            if let Some(tc) = task.channels.iter().find(|c| c.name == key.channel) {
                tc.channel
                    .delivered_earlier(&run.id, &key.recipient, &key.report, &receipt);
            }
        }
        let started_at = format!("{}T{}Z", run.date, run.time);
        tracing::debug!(task = %task.name, run = %run.id, "run starting");

        let (slots, units) = self.expand(task).await?;
        let mut trackers: Vec<Tracker> =
            slots.iter().map(|r| Tracker::new(&r.id, &r.name)).collect();
        let groups = group_units(task, &units, &mut trackers);

        let run = Arc::new(run);
        let units = Arc::new(units);
        let mut counts = Counts::default();
        let mut durations = Durations::default();
        let mut results = futures::stream::iter(groups)
            .map(|group| self.process_group(task, run.clone(), units.clone(), group))
            .buffer_unordered(self.options.fetch_concurrency.max(1));
        while let Some(result) = results.next().await {
            counts.fetches += usize::from(result.fetched);
            counts.documents += result.documents;
            durations.fetch_ms += millis(result.fetch);
            durations.render_ms += millis(result.render);
            durations.deliver_ms += millis(result.deliver);
            for (unit, outcome) in result.outcomes {
                trackers[units[unit].slot].record(outcome);
            }
        }
        drop(results);

        let recipients: Vec<RecipientOutcome> = trackers.into_iter().map(Tracker::finish).collect();
        counts.recipients = recipients.len();
        for r in &recipients {
            match r.status {
                Status::Delivered => counts.delivered += 1,
                Status::Skipped => counts.skipped += 1,
                Status::Failed => counts.failed += 1,
            }
            counts.deliveries += r.receipts.len();
            counts.resumed += r.resumed;
            counts.bytes += r.bytes;
        }
        durations.total_ms = millis(started.elapsed());
        let summary = RunSummary {
            run_id: run.id.clone(),
            task: task.name.clone(),
            started_at,
            counts,
            durations,
            recipients,
        };
        tracing::info!(
            task = %summary.task,
            run = %summary.run_id,
            delivered = summary.counts.delivered,
            skipped = summary.counts.skipped,
            failed = summary.counts.failed,
            ms = summary.durations.total_ms,
            "run finished"
        );
        Ok(summary)
    }

    /// The recipients of the summary (one per recipient, or per burst value without
    /// recipients) and the units to serve.
    async fn expand(&self, task: &Task) -> Result<(Vec<Arc<Recipient>>, Vec<Unit>)> {
        let Some(field) = &task.burst else {
            let units = task
                .recipients
                .iter()
                .enumerate()
                .map(|(slot, r)| Unit {
                    slot,
                    recipient: r.clone(),
                    filters: task.filters.intersect(&r.filters),
                    burst: None,
                })
                .collect();
            return Ok((task.recipients.clone(), units));
        };

        if task.recipients.is_empty() {
            let values = burst_values(task, field, &task.filters, None).await?;
            let slots: Vec<Arc<Recipient>> = values
                .iter()
                .map(|v| Arc::new(Recipient::new(v.clone(), v.clone())))
                .collect();
            let units = values
                .into_iter()
                .enumerate()
                .map(|(slot, v)| Unit {
                    slot,
                    recipient: slots[slot].clone(),
                    filters: task.filters.clone().and(Filter::new(field, [v.clone()])),
                    burst: Some(v),
                })
                .collect();
            return Ok((slots, units));
        }

        let mut units = Vec::new();
        for (slot, r) in task.recipients.iter().enumerate() {
            let filters = task.filters.intersect(&r.filters);
            // A recipient whose values cannot be listed gets one unit that fails or skips
            // with the reason when its group is fetched.
            let values = match burst_values(task, field, &filters, r.identity.as_deref()).await {
                Ok(values) if !values.is_empty() => values,
                _ => {
                    units.push(Unit {
                        slot,
                        recipient: r.clone(),
                        filters,
                        burst: None,
                    });
                    continue;
                }
            };
            for v in values {
                units.push(Unit {
                    slot,
                    recipient: r.clone(),
                    filters: filters.clone().and(Filter::new(field, [v.clone()])),
                    burst: Some(v),
                });
            }
        }
        Ok((task.recipients.clone(), units))
    }

    async fn process_group(
        &self,
        task: &Task,
        run: Arc<RunInfo>,
        units: Arc<Vec<Unit>>,
        group: Group,
    ) -> GroupResult {
        let mut result = GroupResult::default();
        let fetch_started = Instant::now();
        let mut request = FetchRequest::new(&group.query, &group.filters);
        if let Some(identity) = &group.identity {
            request = request.with_identity(identity);
        }
        let fetched = task.source.fetch(request).await;
        result.fetch = fetch_started.elapsed();
        result.fetched = true;

        let table = match fetched {
            Ok(table) => table,
            Err(err) => {
                let report_of = |r: usize| task.reports[r].name.as_str();
                for &(unit, report) in &group.members {
                    let outcome = if err.kind() == ErrorKind::EmptyFilter {
                        MemberOutcome::Skipped(format!("{} ({})", err, group.filters))
                    } else {
                        MemberOutcome::Failed(Failure::from_error(
                            &err,
                            Some(report_of(report)),
                            None,
                        ))
                    };
                    result.outcomes.push((unit, outcome));
                }
                return result;
            }
        };
        if table.is_empty() && task.on_empty == OnEmpty::Skip {
            for &(unit, _) in &group.members {
                let reason = format!("no rows match the filters ({})", group.filters);
                result.outcomes.push((unit, MemberOutcome::Skipped(reason)));
            }
            return result;
        }

        let mut computed: HashMap<usize, Vec<(String, Value)>> = HashMap::new();
        for &(_, report) in &group.members {
            let r = &task.reports[report];
            if r.expressions.is_empty() || computed.contains_key(&report) {
                continue;
            }
            match evaluate_expressions(task, r, request).await {
                Ok(values) => {
                    computed.insert(report, values);
                }
                Err(err) => {
                    for &(unit, _) in group.members.iter().filter(|(_, rep)| *rep == report) {
                        let f = Failure::from_error(&err, Some(&r.name), None);
                        result.outcomes.push((unit, MemberOutcome::Failed(f)));
                    }
                    computed.insert(report, Vec::new());
                }
            }
        }

        // Placeholders per member, then one render per distinct content.
        let table = Arc::new(table);
        let mut members = Vec::with_capacity(group.members.len());
        let mut renders: HashMap<RenderKey, Vec<usize>> = HashMap::new();
        for &(unit, report) in &group.members {
            let u = &units[unit];
            let r = &task.reports[report];
            if !r.expressions.is_empty() && computed[&report].is_empty() {
                continue; // its evaluation failed and was recorded
            }
            let mut placeholders = placeholders_for(task, &run, u, r, &table);
            let locale = u.recipient.locale();
            for (name, value) in computed.get(&report).into_iter().flatten() {
                let format = r.expressions[name].format().map(NumberFormat::new);
                placeholders.set(name, display(value, format.as_ref(), &locale));
            }
            let content = if r.template.is_some() {
                // A template file may use any placeholder, so every value keys the render.
                placeholders.iter().map(|(_, v)| v.to_string()).collect()
            } else {
                r.content_placeholders()
                    .unwrap_or_default()
                    .iter()
                    .map(|n| placeholders.get(n).unwrap_or_default().to_string())
                    .collect()
            };
            let key = RenderKey {
                report,
                locale: locale.tag.clone(),
                content,
            };
            renders.entry(key.clone()).or_default().push(members.len());
            members.push((unit, report, Arc::new(placeholders), locale, key));
        }
        let member = |m: usize| {
            let (unit, report, placeholders, ..) = &members[m];
            Member {
                unit: &units[*unit],
                report: task.reports[*report].clone(),
                placeholders: placeholders.clone(),
                rows: table.len(),
            }
        };

        // Deliveries the render threads make, begun in the run log before rendering.
        let mut begun = Vec::with_capacity(members.len());
        for (unit, report, ..) in &members {
            begun.push(
                self.begin_here(task, &run, &units[*unit], &task.reports[*report])
                    .await,
            );
        }

        let render_started = Instant::now();
        let jobs = renders.iter().map(|(key, sharing)| {
            let (unit, report, placeholders, locale, _) = &members[sharing[0]];
            let here: Vec<HereDelivery> = sharing
                .iter()
                .filter_map(|&m| Engine::here_delivery(task, &run, m, &member(m), &begun[m]))
                .collect();
            let render = RenderRequest {
                report: task.reports[*report].clone(),
                table: table.clone(),
                placeholders: placeholders.clone(),
                locale: locale.clone(),
                // What every member of the render sees: its filters within the report's.
                filters: units[*unit]
                    .filters
                    .intersect(&task.reports[*report].filters),
            };
            let started = run.started;
            async move {
                (
                    key.clone(),
                    self.render_all(task, started, render, here).await,
                )
            }
        });
        let mut rendered: HashMap<RenderKey, Result<Vec<RenderedFormat>>> = HashMap::new();
        let mut here: HashMap<usize, Vec<(usize, Result<Receipt>)>> = HashMap::new();
        let mut delivering = Duration::ZERO;
        for (key, result) in join_all(jobs).await {
            let result = result.map(|rendered| {
                for (member, channel, outcome) in rendered.made {
                    here.entry(member).or_default().push((channel, outcome));
                }
                delivering += rendered.delivering;
                rendered.docs
            });
            rendered.insert(key, result);
        }
        // The render threads' deliveries count as delivering, not rendering.
        let render_elapsed = render_started.elapsed();
        let delivered_there = delivering.min(render_elapsed);
        result.render = render_elapsed - delivered_there;
        result.documents = rendered
            .values()
            .filter_map(|r| r.as_ref().ok())
            .map(Vec::len)
            .sum();

        let deliver_started = Instant::now();
        let deliveries = begun.into_iter().enumerate().map(|(m, begun)| {
            let unit = members[m].0;
            let docs = rendered[&members[m].4]
                .as_ref()
                .map_err(clone_error)
                .cloned();
            let member = member(m);
            let progress = Progress::of(begun, here.remove(&m).unwrap_or_default());
            let run = run.clone();
            async move {
                let outcome = match docs {
                    Err(err) => {
                        self.give_up(task, &member.report.name, progress, &err)
                            .await
                    }
                    Ok(docs) => self.deliver(task, &run, member, docs, progress).await,
                };
                (unit, outcome)
            }
        });
        result.outcomes.extend(join_all(deliveries).await);
        result.deliver = deliver_started.elapsed() + delivered_there;
        result
    }

    /// Renders every format of a report on the CPU pool, then makes the deliveries `here` asks
    /// of the same thread.
    async fn render_all(
        &self,
        task: &Task,
        started: i64,
        request: RenderRequest,
        here: Vec<HereDelivery>,
    ) -> Result<Rendered> {
        // One job renders every format of the report: a hand-over between threads costs about
        // as much as rendering a small document.
        let RenderRequest {
            report,
            table,
            placeholders,
            locale,
            filters,
        } = request;
        let renderers: Vec<_> = report
            .formats
            .iter()
            .map(|format| task.renderers[format].clone())
            .collect();
        let deterministic = self.options.deterministic;
        let _slot = self
            .render_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| cancelled())?;
        let what = format!("rendering report '{}'", report.name);
        self.cpu
            .run(&what, move || {
                let mut out = Vec::with_capacity(renderers.len());
                for renderer in renderers {
                    let format = renderer.format();
                    let report = report.for_format(format);
                    let job = RenderJob {
                        report: &report,
                        table: &table,
                        placeholders: &placeholders,
                        locale: &locale,
                        filters: &filters,
                        deterministic,
                        created_at: started,
                    };
                    let rendered = renderer.render_document(&job).map_err(|e| {
                        e.context(format!("rendering {format} of report '{}'", report.name))
                    })?;
                    out.push((format, rendered.bytes.into(), rendered.inline));
                }
                let delivering = Instant::now();
                let made = here.into_iter().flat_map(|h| h.deliver(&out)).collect();
                Ok(Rendered {
                    docs: out,
                    made,
                    delivering: delivering.elapsed(),
                })
            })
            .await?
    }
}

/// What one render job gave: the documents, and the deliveries its thread made of them.
struct Rendered {
    docs: Vec<RenderedFormat>,
    made: Vec<HereOutcome>,
    /// How long those deliveries took.
    delivering: Duration,
}

/// What one render needs besides the task.
struct RenderRequest {
    report: Arc<ReportDef>,
    table: Arc<Table>,
    placeholders: Arc<Placeholders>,
    locale: Locale,
    filters: FilterSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RenderKey {
    report: usize,
    locale: String,
    content: Vec<String>,
}

fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "the engine is shutting down")
}

fn clone_error(err: &Error) -> Error {
    Error::new(err.kind(), err.message().to_string())
        .with_backend(err.backend().unwrap_or("render").to_string())
}

/// Checks what a run checks before it starts: reports, renderers, channels, recipient ids.
pub fn validate(task: &Task) -> Result<()> {
    if task.reports.is_empty() {
        return Err(Error::invalid_config(format!(
            "task '{}' has no reports",
            task.name
        )));
    }
    let mut names: Vec<&str> = task.channels.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid_config(format!(
            "task '{}' has two channels named '{}'; give each its own name so deliveries are recorded apart",
            task.name, twice[0]
        )));
    }
    if task.channels.is_empty() {
        return Err(Error::invalid_config(format!(
            "task '{}' has no channels, so nothing would be delivered",
            task.name
        )));
    }
    let mut ids: Vec<&str> = task.recipients.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(twice) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid_config(format!(
            "task '{}' lists two recipients with the id '{}'; deliveries are recorded by \
             recipient id, so each recipient needs its own (merge their filters into one \
             recipient, or give each a distinct id)",
            task.name, twice[0]
        )));
    }
    if task.recipients.is_empty() && task.burst.is_none() {
        return Err(Error::invalid_config(format!(
            "task '{}' has no recipients and no burst field",
            task.name
        )));
    }
    for report in &task.reports {
        report.validate()?;
        if let Some(format) = report
            .formats
            .iter()
            .find(|f| !task.renderers.contains_key(f))
        {
            return Err(Error::invalid_config(format!(
                "report '{}' asks for {format}, but no {format} renderer is registered",
                report.name
            )));
        }
        check_capabilities(task, report)?;
    }
    Ok(())
}

/// A report's charts and template are made by a renderer of its formats, or the report is
/// refused: nothing it asks for is silently left out.
fn check_capabilities(task: &Task, report: &ReportDef) -> Result<()> {
    let can = |format: &OutputFormat| task.renderers[format].capabilities();
    let formats = || {
        let names: Vec<String> = report.formats.iter().map(|f| f.to_string()).collect();
        names.join(", ")
    };
    if !report.charts.is_empty() && !report.formats.iter().any(|f| can(f).charts) {
        return Err(Error::unsupported(
            "render",
            format!(
                "report '{}' has charts, but none of its formats ({}) draws charts; add pdf,                  xlsx or html",
                report.name,
                formats()
            ),
        ));
    }
    if let Some(format) = report.template_format()?
        && task.renderers.contains_key(&format)
        && !can(&format).templates
    {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "report '{}' has a {format} template, but the {format} renderer fills no templates",
                report.name
            ),
        ));
    }
    Ok(())
}

/// A password for one recipient: shared (resolved now) or from the recipient's secrets. A
/// missing recipient secret is an error: the document is not sent unprotected.
fn resolve_password(def: Option<&PasswordDef>, recipient: &Recipient) -> Result<Option<Secret>> {
    match def {
        None => Ok(None),
        Some(PasswordDef::Shared(secret)) => secret.resolve().map(Some),
        Some(PasswordDef::Recipient { recipient_secret }) => recipient
            .secrets
            .get(recipient_secret)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                Error::invalid_config(format!(
                    "recipient '{}' has no secret '{recipient_secret}' for their document password, so nothing was sent",
                    recipient.id
                ))
            }),
    }
}

/// The values of a report's expressions for the rows a request selects.
async fn evaluate_expressions(
    task: &Task,
    report: &ReportDef,
    request: FetchRequest<'_>,
) -> Result<Vec<(String, Value)>> {
    let names: Vec<String> = report.expressions.keys().cloned().collect();
    let exprs: Vec<String> = report
        .expressions
        .values()
        .map(|e| e.expr().to_string())
        .collect();
    let values = task.source.evaluate(request, &exprs).await.map_err(|e| {
        e.context(format!(
            "evaluating the expressions of report '{}'",
            report.name
        ))
    })?;
    Ok(names.into_iter().zip(values).collect())
}

async fn burst_values(
    task: &Task,
    field: &str,
    filters: &FilterSet,
    identity: Option<&str>,
) -> Result<Vec<String>> {
    let query = Query::fields([field]);
    let mut request = FetchRequest::new(&query, filters);
    if let Some(identity) = identity {
        request = request.with_identity(identity);
    }
    let table = task
        .source
        .fetch(request)
        .await
        .map_err(|e| e.context(format!("listing the values of the burst field '{field}'")))?;
    let col = table.require_column(field)?;
    let format = table.fields()[col].format.clone();
    let locale = Locale::default();
    Ok(table
        .distinct(col)
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| display(v, format.as_ref(), &locale))
        .collect())
}

/// Groups (unit, report) pairs by what they need fetched; pairs whose filters cannot
/// select anything are recorded as skipped right away.
fn group_units(task: &Task, units: &[Unit], trackers: &mut [Tracker]) -> Vec<Group> {
    // Each distinct query once (reports asking for the same columns share fetches), so a
    // group costs its filter set rather than a copy of its report's query.
    let mut queries: Vec<Arc<Query>> = Vec::new();
    let query_of: Vec<usize> = task
        .reports
        .iter()
        .map(|report| {
            let query = report.query();
            match queries.iter().position(|q| **q == query) {
                Some(at) => at,
                None => {
                    queries.push(Arc::new(query));
                    queries.len() - 1
                }
            }
        })
        .collect();
    // Groups by the hash of their key, so each filter set is held once, in its group.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    // Per recipient: whether its locale and time zone passed, once checked.
    let mut usable: Vec<Option<bool>> = vec![None; trackers.len()];
    for (u, unit) in units.iter().enumerate() {
        // A recipient whose locale or time zone is wrong gets nothing rather than a report
        // with the wrong dates or separators; the others are served.
        let ok = *usable[unit.slot].get_or_insert_with(|| match unit.recipient.check() {
            Ok(()) => true,
            Err(err) => {
                trackers[unit.slot]
                    .record(MemberOutcome::Failed(Failure::from_error(&err, None, None)));
                false
            }
        });
        if !ok {
            continue;
        }
        for (r, report) in task.reports.iter().enumerate() {
            let filters = unit.filters.intersect(&report.filters);
            if let Some(field) = filters.empty_field() {
                let reason = format!(
                    "the filters on '{field}' have no value in common (task, recipient and report filters: {})",
                    describe_sources(task, unit, report, field)
                );
                trackers[unit.slot].record(MemberOutcome::Skipped(reason));
                continue;
            }
            let (query, identity) = (&queries[query_of[r]], &unit.recipient.identity);
            let mut hasher = std::hash::DefaultHasher::new();
            (&filters, query_of[r], identity).hash(&mut hasher);
            let candidates = index.entry(hasher.finish()).or_default();
            let found = candidates.iter().copied().find(|&g| {
                let group = &groups[g];
                group.filters == filters
                    && Arc::ptr_eq(&group.query, query)
                    && group.identity == *identity
            });
            let g = match found {
                Some(g) => g,
                None => {
                    candidates.push(groups.len());
                    groups.push(Group {
                        filters,
                        query: query.clone(),
                        identity: identity.clone(),
                        members: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[g].members.push((u, r));
        }
    }
    groups
}

fn describe_sources(task: &Task, unit: &Unit, report: &ReportDef, field: &str) -> String {
    let list =
        |v: &std::collections::BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(", ");
    let show = |set: &FilterSet| match set.get(field).map(|r| &r.filter) {
        Some(FieldFilter::Only(v)) => list(v),
        Some(FieldFilter::Except(v)) => format!("not {}", list(v)),
        Some(FieldFilter::OnlyBut(v, out)) => format!("{} but not {}", list(v), list(out)),
        None => "any".to_string(),
    };
    format!(
        "task: {}; recipient: {}; report: {}",
        show(&task.filters),
        show(&unit.recipient.filters),
        show(&report.filters)
    )
}

fn placeholders_for(
    task: &Task,
    run: &RunInfo,
    unit: &Unit,
    report: &ReportDef,
    table: &Table,
) -> Placeholders {
    let r = &unit.recipient;
    let filters = unit.filters.intersect(&report.filters);
    let mut p = Placeholders::new();
    // The run's date and time on the recipient's wall clock; the zone was checked before.
    let local = r.time_zone.as_deref().and_then(|zone| run.local(zone).ok());
    let (date, time, zone) = match &local {
        Some((date, time, zone)) => (date.as_str(), time.as_str(), zone.as_str()),
        None => (run.date.as_str(), run.time.as_str(), "UTC"),
    };
    p.set("recipient.id", &r.id)
        .set("recipient.name", &r.name)
        .set("recipient.email", r.email.clone().unwrap_or_default())
        .set("run.id", &run.id)
        .set("run.date", date)
        .set("run.time", time)
        .set("run.zone", zone)
        .set("task.name", &task.name)
        .set("report.name", &report.name)
        .set("rows", table.len().to_string())
        .set("filters", filters.to_string());
    if let Some(b) = &unit.burst {
        p.set("burst", b);
    }
    for (field, rule) in filters.rules() {
        if let Some(values) = rule.filter.allowed() {
            p.set(field, values.iter().cloned().collect::<Vec<_>>().join(", "));
        }
    }
    p
}

/// Collects one recipient's outcomes.
struct Tracker {
    id: String,
    name: String,
    skipped: Vec<String>,
    errors: Vec<Failure>,
    receipts: Vec<Receipt>,
    rows: usize,
    resumed: usize,
}

impl Tracker {
    fn new(id: &str, name: &str) -> Self {
        Tracker {
            id: id.to_string(),
            name: name.to_string(),
            skipped: Vec::new(),
            errors: Vec::new(),
            receipts: Vec::new(),
            rows: 0,
            resumed: 0,
        }
    }

    fn record(&mut self, outcome: MemberOutcome) {
        match outcome {
            MemberOutcome::Skipped(reason) => {
                if !self.skipped.contains(&reason) {
                    self.skipped.push(reason);
                }
            }
            MemberOutcome::Failed(f) => self.errors.push(f),
            MemberOutcome::Done {
                rows,
                receipts,
                failures,
                resumed,
            } => {
                self.rows += rows;
                self.resumed += resumed;
                self.receipts.extend(receipts);
                self.errors.extend(failures);
            }
        }
    }

    fn finish(self) -> RecipientOutcome {
        let status = if !self.errors.is_empty() {
            Status::Failed
        } else if !self.receipts.is_empty() {
            Status::Delivered
        } else {
            Status::Skipped
        };
        let reason = (!self.skipped.is_empty()).then(|| self.skipped.join("; "));
        RecipientOutcome {
            bytes: self.receipts.iter().map(|r| r.bytes).sum(),
            id: self.id,
            name: self.name,
            status,
            reason,
            errors: self.errors,
            receipts: self.receipts,
            rows: self.rows,
            resumed: self.resumed,
        }
    }
}
