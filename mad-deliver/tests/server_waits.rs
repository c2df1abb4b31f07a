//! The engine honours a server's long wait: a channel refused as `RateLimited` with a
//! five-minute `Retry-After` (as Dropbox sends at times) is tried again only after the five
//! minutes, not after the engine's own backoff cap. Tokio's clock is paused, so the test takes
//! no real time.

mod doubles;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use mad_core::{
    Channel, ChannelCapabilities, Delivery, EngineOptions, Error, ErrorKind, OutputFormat, Receipt,
    Result, TaskChannel,
};
use tokio::time::Instant;

use support::pdf_bytes;

/// Refuses each delivery's first attempt, asking for `wait`, and takes the next; records when
/// each attempt came.
#[derive(Debug)]
struct AsksToWait {
    wait: Duration,
    attempts: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Channel for AsksToWait {
    fn name(&self) -> &str {
        "asks-to-wait"
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            attachments: true,
            ..ChannelCapabilities::default()
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt> {
        let mut attempts = self.attempts.lock().unwrap();
        attempts.push(Instant::now());
        if attempts.len() == 1 {
            return Err(
                Error::new(ErrorKind::RateLimited, "too_many_requests").with_retry_after(self.wait)
            );
        }
        Ok(Receipt {
            channel: self.name().to_string(),
            locations: vec![format!("attempt {}", attempts.len())],
            bytes: delivery.bytes(),
        })
    }
}

async fn gap_between_attempts(wait: Duration, options: EngineOptions) -> Duration {
    let channel = std::sync::Arc::new(AsksToWait {
        wait,
        attempts: Mutex::new(Vec::new()),
    });
    let task = doubles::engine::task(
        vec![TaskChannel::new(channel.clone())],
        &["ann"],
        OutputFormat::Pdf,
        pdf_bytes(),
    );

    let summary = mad_core::Engine::new(options).run(&task).await.unwrap();

    assert_eq!(summary.counts.delivered, 1, "{}", summary.human());
    let attempts = channel.attempts.lock().unwrap();
    assert_eq!(attempts.len(), 2);
    attempts[1] - attempts[0]
}

#[tokio::test(start_paused = true)]
async fn a_five_minute_retry_after_is_waited_out_in_full() {
    let wait = Duration::from_secs(300);
    let options = EngineOptions::default();
    assert!(
        options.max_retry_delay < wait,
        "longer than the backoff cap"
    );

    let gap = gap_between_attempts(wait, options).await;

    assert!(gap >= wait, "tried again after {gap:?}");
    assert!(gap < wait + Duration::from_secs(1), "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wait_beyond_max_server_wait_is_cut_to_it() {
    let options = EngineOptions {
        max_server_wait: Duration::from_secs(120),
        ..EngineOptions::default()
    };

    let gap = gap_between_attempts(Duration::from_secs(3600), options).await;

    assert!(gap >= Duration::from_secs(120), "tried again after {gap:?}");
    assert!(gap < Duration::from_secs(121), "{gap:?}");
}
