//! Delivering a recipient's documents: at most once per run, with retries, and for channels
//! that deliver on the calling thread (files on a local disk), on the render thread right
//! after rendering.
//!
//! A delivery made on the render thread spares two hand-overs between threads per recipient,
//! which in a burst of small reports cost more than the writing itself. Its run-log entry is
//! begun before rendering, so a resumed run treats it like any other interrupted delivery:
//! such a channel must be able to confirm what an interrupted attempt left.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;

/// A delivery whose run-log entry was begun before rendering.
pub(super) struct Begun {
    /// The channel, as an index into the task's channels.
    channel: usize,
    key: DeliveryKey,
    /// What an earlier attempt of the run left.
    prior: PriorAttempt,
}

impl Begun {
    /// Whether the render thread makes it: nothing earlier delivered it or may have.
    fn on_render_thread(&self) -> bool {
        matches!(self.prior, PriorAttempt::None | PriorAttempt::Failed(_))
    }
}

/// How far one delivery got before the async side takes it up.
pub(super) enum Progress {
    /// Begun in the run log before rendering, which held `prior`, and not attempted since.
    Begun(DeliveryKey, PriorAttempt),
    /// Begun before rendering and attempted on the render thread, with this outcome.
    Made(DeliveryKey, Result<Receipt>),
}

impl Progress {
    /// The progress of each begun delivery of a member, given what the render thread `made`
    /// of them (channel, outcome).
    pub(super) fn of(
        begun: Vec<Begun>,
        mut made: Vec<(usize, Result<Receipt>)>,
    ) -> Vec<(usize, Progress)> {
        begun
            .into_iter()
            .map(|b| {
                let outcome = made
                    .iter()
                    .position(|(channel, _)| *channel == b.channel)
                    .map(|at| made.swap_remove(at).1);
                let progress = match outcome {
                    Some(outcome) => Progress::Made(b.key, outcome),
                    None => Progress::Begun(b.key, b.prior),
                };
                (b.channel, progress)
            })
            .collect()
    }
}

/// What the render thread needs to deliver one member's documents to the channels that
/// deliver there.
pub(super) struct HereDelivery {
    /// The member of the group, as an index.
    member: usize,
    /// The delivery, without its documents.
    delivery: Delivery,
    channels: Vec<(usize, TaskChannel)>,
}

/// What the render thread's deliveries gave: (member, channel, outcome).
pub(super) type HereOutcome = (usize, usize, Result<Receipt>);

impl HereDelivery {
    /// Delivers `docs` to each channel, on the calling thread. A channel that panics fails
    /// its own delivery, as one that may have arrived.
    pub(super) fn deliver(self, docs: &[RenderedFormat]) -> Vec<HereOutcome> {
        let report = &self.delivery.report;
        let documents = self
            .delivery
            .placeholders
            .render(&report.file_name)
            .map(|base| {
                named_documents(&base, docs.iter().cloned())
                    .into_iter()
                    .map(Arc::new)
                    .collect::<Vec<_>>()
            });
        self.channels
            .iter()
            .map(|(index, tc)| {
                let outcome = match &documents {
                    Err(err) => Err(clone_error(err)),
                    Ok(documents) => match delivery_to(tc, self.delivery.clone(), documents) {
                        Some(delivery) => deliver_here(tc, &delivery),
                        None => Err(Error::internal(format!(
                            "channel '{}' takes none of the documents",
                            tc.name
                        ))),
                    },
                };
                (self.member, *index, outcome)
            })
            .collect()
    }
}

/// `tc`'s blocking delivery, with a panic turned into an error.
fn deliver_here(tc: &TaskChannel, delivery: &Delivery) -> Result<Receipt> {
    catch_unwind(AssertUnwindSafe(|| tc.channel.deliver_blocking(delivery))).unwrap_or_else(|_| {
        tracing::error!(recipient = %delivery.recipient.id, channel = %tc.name, "a channel panicked while delivering");
        Err(Error::internal(format!("channel '{}' panicked while delivering", tc.name))
            .maybe_delivered())
    })
}

/// The rendered formats as documents named `base` with each format's extension.
fn named_documents(base: &str, docs: impl Iterator<Item = RenderedFormat>) -> Vec<Document> {
    docs.map(|(format, bytes, inline)| {
        Document::new(format, format!("{base}.{}", format.extension()), bytes).with_inline(inline)
    })
    .collect()
}

/// `delivery` with the documents `tc` takes; `None` when it takes none.
fn delivery_to(
    tc: &TaskChannel,
    mut delivery: Delivery,
    documents: &[Arc<Document>],
) -> Option<Delivery> {
    let report = &delivery.report;
    let chosen: Vec<Arc<Document>> = documents
        .iter()
        .filter(|d| match d.format {
            // A bundle goes wherever any of its formats would have gone.
            OutputFormat::Zip => report.formats.iter().any(|f| tc.accepts(*f)),
            format => tc.accepts(format),
        })
        .cloned()
        .collect();
    if chosen.is_empty() {
        return None;
    }
    delivery.documents = chosen;
    Some(delivery)
}

/// One recipient's report, ready to deliver.
pub(super) struct Member<'a> {
    pub unit: &'a Unit,
    pub report: Arc<ReportDef>,
    pub placeholders: Arc<Placeholders>,
    /// The rows the report was rendered from.
    pub rows: usize,
}

impl Member<'_> {
    /// The delivery of this member's documents in `run` of `task`, without its documents.
    fn delivery(&self, task: &Task, run: &RunInfo) -> Delivery {
        Delivery {
            run_id: run.id.clone(),
            task: task.name.clone(),
            recipient: self.unit.recipient.clone(),
            report: self.report.clone(),
            documents: Vec::new(),
            placeholders: self.placeholders.clone(),
        }
    }
}

impl Engine {
    /// Begins, in the run log, the deliveries of `unit`'s `report` that the render thread can
    /// make (to channels that deliver on the calling thread, of documents that need no
    /// protection), before the report is rendered.
    pub(super) async fn begin_here(
        &self,
        task: &Task,
        run: &RunInfo,
        unit: &Unit,
        report: &ReportDef,
    ) -> Vec<Begun> {
        let mut begun = Vec::new();
        if report.protection.is_some() {
            return begun;
        }
        for (channel, tc) in task.channels.iter().enumerate() {
            if !tc.channel.capabilities().blocking || !report.formats.iter().any(|f| tc.accepts(*f))
            {
                continue;
            }
            let key = DeliveryKey::new(
                &run.id,
                &unit.recipient.id,
                &report.name,
                unit.burst.as_deref(),
                &tc.name,
            );
            // A run log that cannot begin it now will not later either: the delivery then
            // fails on the usual path with the reason.
            if let Ok(prior) = self.run_log.begin(&key).await {
                begun.push(Begun {
                    channel,
                    key,
                    prior,
                });
            }
        }
        begun
    }

    /// What the render thread delivers of `member`, from what [`Engine::begin_here`] began;
    /// `None` when nothing.
    pub(super) fn here_delivery(
        task: &Task,
        run: &RunInfo,
        index: usize,
        member: &Member<'_>,
        begun: &[Begun],
    ) -> Option<HereDelivery> {
        let channels: Vec<(usize, TaskChannel)> = begun
            .iter()
            .filter(|b| b.on_render_thread())
            .map(|b| (b.channel, task.channels[b.channel].clone()))
            .collect();
        (!channels.is_empty()).then(|| HereDelivery {
            member: index,
            delivery: member.delivery(task, run),
            channels,
        })
    }

    /// Ends a member's begun deliveries when its documents cannot be delivered because of
    /// `err`: what the render thread made is recorded as it went, what was begun for it is
    /// recorded as failed (so a resumed run makes it rather than taking it for interrupted),
    /// and what an earlier attempt left is left alone.
    pub(super) async fn give_up(
        &self,
        task: &Task,
        report: &str,
        progress: Vec<(usize, Progress)>,
        err: &Error,
    ) -> MemberOutcome {
        for (channel, progress) in progress {
            let tc = &task.channels[channel];
            match progress {
                Progress::Made(key, outcome) => {
                    let _ = self.conclude(tc, &key, report, outcome).await;
                }
                Progress::Begun(key, PriorAttempt::None | PriorAttempt::Failed(_)) => {
                    let failure = Failure::from_error(err, Some(report), Some(&tc.name));
                    self.record(&key, &Err(failure)).await;
                }
                Progress::Begun(..) => {}
            }
        }
        MemberOutcome::Failed(Failure::from_error(err, Some(report), None))
    }

    /// Delivers one member's documents to every channel of the task: what the render thread
    /// delivered (`progress`) is concluded, the rest delivered now.
    pub(super) async fn deliver(
        &self,
        task: &Task,
        run: &RunInfo,
        member: Member<'_>,
        docs: Vec<RenderedFormat>,
        progress_of: Vec<(usize, Progress)>,
    ) -> MemberOutcome {
        let report = &member.report;
        // What the render thread delivered only needs recording; the documents are named
        // (and protected) again only for the channels left.
        let mut outcomes = Vec::new();
        let mut made_on = Vec::new();
        let mut progress: HashMap<usize, Progress> = HashMap::new();
        for (index, p) in progress_of {
            match p {
                Progress::Made(key, Ok(receipt)) => {
                    let tc = &task.channels[index];
                    outcomes.push(self.conclude(tc, &key, &report.name, Ok(receipt)).await);
                    made_on.push(index);
                }
                p => {
                    progress.insert(index, p);
                }
            }
        }
        let mut sends = Vec::new();
        if made_on.len() < task.channels.len() {
            let base = match member.placeholders.render(&report.file_name) {
                Ok(base) => base,
                Err(err) => {
                    let progress = progress.into_iter().collect();
                    return self.give_up(task, &report.name, progress, &err).await;
                }
            };
            let documents = named_documents(&base, docs.into_iter());
            let documents = match &report.protection {
                None => documents,
                Some(protection) => {
                    match self
                        .protect(task, member.unit, protection, documents, &base)
                        .await
                    {
                        Ok(protected) => protected,
                        Err(err) => {
                            let progress = progress.into_iter().collect();
                            return self.give_up(task, &report.name, progress, &err).await;
                        }
                    }
                }
            };
            let documents: Vec<Arc<Document>> = documents.into_iter().map(Arc::new).collect();
            for (index, tc) in task.channels.iter().enumerate() {
                if made_on.contains(&index) {
                    continue;
                }
                let progress = progress.remove(&index);
                match delivery_to(tc, member.delivery(task, run), &documents) {
                    Some(delivery) => {
                        let burst = member.unit.burst.as_deref();
                        sends.push(self.deliver_once(tc, delivery, burst, progress));
                    }
                    None => {
                        if let Some(progress) = progress {
                            // Begun for documents the channel then took none of.
                            let err = Error::internal(format!(
                                "channel '{}' takes none of the documents",
                                tc.name
                            ));
                            let _ = self
                                .give_up(task, &report.name, vec![(index, progress)], &err)
                                .await;
                        }
                    }
                }
            }
        }
        if sends.is_empty() && outcomes.is_empty() {
            let formats: Vec<String> = report.formats.iter().map(|f| f.to_string()).collect();
            return MemberOutcome::Skipped(format!(
                "no channel of the task takes the formats of report '{}' ({}); list one of them \
                 in a channel's formats",
                report.name,
                formats.join(", ")
            ));
        }
        outcomes.extend(join_all(sends).await);
        let mut receipts = Vec::new();
        let mut failures = Vec::new();
        let mut resumed = 0;
        for outcome in outcomes {
            match outcome {
                Ok((receipt, again)) => {
                    receipts.push(receipt);
                    resumed += usize::from(again);
                }
                Err(failure) => failures.push(failure),
            }
        }
        MemberOutcome::Done {
            rows: member.rows,
            receipts,
            failures,
            resumed,
        }
    }

    /// Puts one recipient's passwords on their documents (or bundles them), on the CPU pool.
    async fn protect(
        &self,
        task: &Task,
        unit: &Unit,
        protection: &Protection,
        documents: Vec<Document>,
        base: &str,
    ) -> Result<Vec<Document>> {
        let protector = task.protector.clone().ok_or_else(|| {
            Error::invalid_config("the report asks for protection, but no protector is registered")
        })?;
        let passwords = Passwords {
            open: resolve_password(protection.open_password.as_ref(), &unit.recipient)?,
            edit: resolve_password(protection.edit_password.as_ref(), &unit.recipient)?,
        };
        if passwords.open.is_none() && passwords.edit.is_none() {
            return Err(Error::invalid_config(
                "the report's protection names no password",
            ));
        }
        let bundle = protection.bundle;
        let name = format!("{base}.zip");
        let _slot = self.render_slots.acquire().await.map_err(|_| cancelled())?;
        self.cpu
            .run("protecting documents", move || {
                if bundle {
                    let bytes = protector.bundle(&documents, &passwords)?;
                    return Ok(vec![Document::new(OutputFormat::Zip, name, bytes.into())]);
                }
                documents
                    .into_iter()
                    .map(|d| {
                        let bytes = protector.protect(&d, &passwords)?;
                        Ok(Document {
                            bytes: bytes.into(),
                            ..d
                        })
                    })
                    .collect()
            })
            .await?
    }

    /// Makes one delivery at most once per run: consults the run log first (unless it was
    /// begun before rendering), records the attempt, delivers (unless the render thread made
    /// it), records the outcome. Returns the receipt and whether it comes from an earlier
    /// attempt.
    async fn deliver_once(
        &self,
        tc: &TaskChannel,
        delivery: Delivery,
        burst: Option<&str>,
        progress: Option<Progress>,
    ) -> std::result::Result<(Receipt, bool), Failure> {
        let report = delivery.report.name.clone();
        let fail = |err: &Error| Failure::from_error(err, Some(&report), Some(&tc.name));
        let (key, prior, first) = match progress {
            Some(Progress::Made(key, Ok(receipt))) => {
                return self.conclude(tc, &key, &report, Ok(receipt)).await;
            }
            // A channel that cannot deliver on the calling thread after all is asked to
            // deliver the usual way.
            Some(Progress::Made(key, Err(err))) if err.kind() == ErrorKind::Unsupported => {
                (key, Some(PriorAttempt::None), None)
            }
            Some(Progress::Made(key, Err(err))) => (key, Some(PriorAttempt::None), Some(err)),
            Some(Progress::Begun(key, prior)) => (key, Some(prior), None),
            None => {
                let key = DeliveryKey::new(
                    &delivery.run_id,
                    &delivery.recipient.id,
                    &report,
                    burst,
                    &tc.name,
                );
                (key, None, None)
            }
        };
        let _slot = self
            .delivery_slots
            .acquire()
            .await
            .map_err(|_| fail(&cancelled()))?;

        let prior = match prior {
            Some(prior) => prior,
            None => self.run_log.begin(&key).await.map_err(|e| {
                fail(&e.context("the run log could not record the delivery, so it was not made"))
            })?,
        };
        match prior {
            PriorAttempt::Delivered(receipt) => return Ok((receipt, true)),
            PriorAttempt::Interrupted => {
                if let Some(outcome) = self.settle_interrupted(tc, &delivery).await {
                    if let Ok((receipt, _)) = &outcome {
                        // Found complete: its targets are this delivery's for the rest of the
                        // run, as if the run log had listed it as delivered.
                        tc.channel.delivered_earlier(
                            &key.run_id,
                            &key.recipient,
                            &key.report,
                            receipt,
                        );
                    }
                    let recorded = outcome.clone().map(|r| r.0);
                    self.record(&key, &recorded).await;
                    return outcome;
                }
            }
            PriorAttempt::None | PriorAttempt::Failed(_) => {}
        }
        let outcome = self
            .deliver_with_retries(tc.channel.as_ref(), &delivery, first)
            .await;
        self.conclude(tc, &key, &report, outcome).await
    }

    /// Records how a delivery ended and gives its receipt, or the failure to report.
    async fn conclude(
        &self,
        tc: &TaskChannel,
        key: &DeliveryKey,
        report: &str,
        outcome: Result<Receipt>,
    ) -> std::result::Result<(Receipt, bool), Failure> {
        let name = &tc.name;
        let fail = |err: &Error| Failure::from_error(err, Some(report), Some(name));
        if let Err(err) = &outcome
            && err.is_maybe_delivered()
        {
            // Left as started in the run log: a resumed run settles it as interrupted.
            tracing::warn!(recipient = %key.recipient, channel = %name, "delivery may have arrived despite an error");
            let mut unsure = Error::new(
                err.kind(),
                format!(
                    "{}; it may have arrived, so it is not sent again to avoid a duplicate \
                     (check the target; if it is missing, resume the run with interrupted \
                     deliveries resent: mad run --run-id ... --resend-interrupted)",
                    err.message()
                ),
            );
            if let Some(backend) = err.backend() {
                unsure = unsure.with_backend(backend.to_string());
            }
            return Err(fail(&unsure));
        }
        let outcome = outcome
            .map(|receipt| Receipt {
                channel: name.clone(),
                ..receipt
            })
            .map_err(|err| {
            tracing::debug!(recipient = %key.recipient, channel = %name, kind = %err.kind(), "delivery failed");
            fail(&err)
        });
        self.record(key, &outcome).await;
        outcome.map(|r| (r, false))
    }

    /// Delivers, trying again after retryable errors with exponential backoff (or the wait
    /// the server asked for), up to the configured number of retries.
    /// `first` is the error of an attempt already made, if one was.
    async fn deliver_with_retries(
        &self,
        channel: &dyn Channel,
        delivery: &Delivery,
        mut first: Option<Error>,
    ) -> Result<Receipt> {
        let mut delay = self.options.retry_delay;
        let mut retries = 0;
        loop {
            let err = match first.take() {
                Some(err) => err,
                None => match channel.deliver(delivery).await {
                    Ok(receipt) => return Ok(receipt),
                    Err(err) => err,
                },
            };
            if !err.kind().is_retryable()
                || err.is_maybe_delivered()
                || retries >= self.options.delivery_retries
            {
                return Err(err);
            }
            retries += 1;
            let wait = retry_wait(&err, delay, &self.options);
            tracing::info!(recipient = %delivery.recipient.id, channel = %channel.name(), kind = %err.kind(), retry = retries, wait_ms = wait.as_millis() as u64, "retrying a delivery");
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(self.options.max_retry_delay);
            if let Some(receipt) = Self::arrived_anyway(channel, delivery, &err).await {
                return Ok(receipt);
            }
        }
    }

    /// After a timeout or a dropped connection the documents may have arrived though no
    /// answer did: a channel that can look finds them, and they are not sent a second time
    /// (nor refused as already there).
    async fn arrived_anyway(
        channel: &dyn Channel,
        delivery: &Delivery,
        err: &Error,
    ) -> Option<Receipt> {
        if !matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Transient) {
            return None;
        }
        match channel.confirm(delivery).await {
            Ok(Some(receipt)) => {
                tracing::info!(recipient = %delivery.recipient.id, channel = %channel.name(), "a delivery whose answer was lost had arrived");
                Some(receipt)
            }
            Ok(None) | Err(_) => None,
        }
    }

    /// Decides about a delivery an interrupted attempt may have made: `None` means deliver.
    async fn settle_interrupted(
        &self,
        tc: &TaskChannel,
        delivery: &Delivery,
    ) -> Option<std::result::Result<(Receipt, bool), Failure>> {
        let fail =
            |err: Error| Failure::from_error(&err, Some(&delivery.report.name), Some(&tc.name));
        match tc.channel.confirm(delivery).await {
            Ok(Some(receipt)) => Some(Ok((receipt, true))),
            Ok(None) => None,
            Err(err) if err.kind() != ErrorKind::Unsupported => Some(Err(fail(
                err.context("an interrupted earlier attempt could not be checked"),
            ))),
            Err(_) if self.options.interrupted == InterruptedPolicy::Resend => None,
            Err(_) => Some(Err(fail(Error::new(
                ErrorKind::Delivery,
                "an earlier attempt was interrupted while sending and may have arrived; it is \
                 not sent again to avoid a duplicate (check the target; if it is missing, \
                 resume the run with interrupted deliveries resent: mad run --run-id ... \
                 --resend-interrupted)",
            )))),
        }
    }

    async fn record(&self, key: &DeliveryKey, outcome: &std::result::Result<Receipt, Failure>) {
        if let Err(err) = self.run_log.finish(key, outcome).await {
            // The delivery itself happened (or failed) as reported; only its record is missing,
            // so a resumed run will treat it as interrupted.
            tracing::warn!(recipient = %key.recipient, channel = %key.channel, error = %err, "run log could not record a delivery outcome");
        }
    }
}

/// How long to wait before trying again after `err`: the wait the server asked for, up to
/// `max_server_wait`; otherwise the current `backoff`, up to `max_retry_delay`.
fn retry_wait(err: &Error, backoff: Duration, options: &EngineOptions) -> Duration {
    match err.retry_after() {
        Some(asked) => asked.min(options.max_server_wait),
        None => backoff.min(options.max_retry_delay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_limited(wait: Duration) -> Error {
        Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(wait)
    }

    #[test]
    fn a_server_wait_longer_than_the_backoff_cap_is_honoured() {
        let options = EngineOptions::default();
        let asked = Duration::from_secs(300);
        let wait = retry_wait(&rate_limited(asked), Duration::from_millis(500), &options);
        assert_eq!(wait, asked);
    }

    #[test]
    fn a_server_wait_is_cut_to_max_server_wait() {
        let options = EngineOptions {
            max_server_wait: Duration::from_secs(600),
            ..EngineOptions::default()
        };
        let asked = Duration::from_secs(3600);
        let wait = retry_wait(&rate_limited(asked), Duration::from_millis(500), &options);
        assert_eq!(wait, Duration::from_secs(600));
    }

    #[test]
    fn without_a_server_wait_the_backoff_is_cut_to_max_retry_delay() {
        let options = EngineOptions::default();
        let err = Error::new(ErrorKind::Transient, "dropped");
        let short = retry_wait(&err, Duration::from_secs(2), &options);
        let long = retry_wait(&err, Duration::from_secs(600), &options);
        assert_eq!(short, Duration::from_secs(2));
        assert_eq!(long, options.max_retry_delay);
    }
}
