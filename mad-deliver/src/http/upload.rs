//! Chunked uploads through a provider's upload session.
//!
//! The driver sends a document chunk by chunk. When a chunk fails with a retryable error (a
//! dropped connection, a 5xx, a timeout) it asks the session how much the server holds and
//! continues from there, a few times. When a chunk is refused because the client goes too fast
//! (429, or 503 with `Retry-After`), it waits as long as the server asked and sends the same
//! chunk again in the same session, so a large file does not start over. When the session
//! cannot go on, it is cancelled, so no half-uploaded file is ever committed and the error goes
//! to the engine, which retries the whole delivery.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{Error, ErrorKind, Result};

/// How often one upload resumes after failed chunks before giving up.
const RESUMES: u32 = 3;

/// The pause before asking a session where it stands after a failed chunk.
const RESUME_PAUSE: Duration = Duration::from_millis(200);

/// How often one upload waits out a rate limit and sends the refused chunk again.
const THROTTLED_RESENDS: u32 = 5;

/// The wait after a rate-limited chunk whose answer did not say how long to wait.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// The longest wait a rate-limited chunk is held for inside its session; a server asking for
/// longer gets the session cancelled and the error goes to the engine, which waits and sends
/// the whole file again.
const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(5 * 60);

/// What the server said after a chunk.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// Send from this offset next.
    Next(u64),
    /// The file is complete and committed.
    Done(T),
}

/// One provider's upload session for one file.
#[async_trait]
pub(crate) trait UploadSession: Send {
    /// What a committed upload returns (the provider's file metadata).
    type Item: Send;

    /// The chunk size the session wants (a multiple of what the provider requires).
    fn chunk_size(&self) -> usize;

    /// Sends `chunk`, the bytes of the file from `offset`; `last` when it ends the file.
    async fn send_chunk(
        &mut self,
        offset: u64,
        chunk: Bytes,
        last: bool,
    ) -> Result<Step<Self::Item>>;

    /// Where the server stands after a failed chunk: the offset to send from next, or the
    /// committed file when the chunk that failed on our side completed it on the server's.
    async fn resume(&mut self, total: u64) -> Result<Step<Self::Item>>;

    /// Commits the file after every byte was accepted, for providers whose last chunk does
    /// not commit by itself.
    async fn commit(&mut self) -> Result<Self::Item>;

    /// Cancels the session, leaving nothing behind. Failures are only logged: the provider
    /// expires abandoned sessions on its own.
    async fn abort(&mut self);
}

/// Uploads `data` through `session`: all of it committed, or the session cancelled.
pub(crate) async fn drive<S: UploadSession>(session: &mut S, data: &Bytes) -> Result<S::Item> {
    let result = send_all(session, data).await;
    if result.is_err() {
        session.abort().await;
    }
    result
}

async fn send_all<S: UploadSession>(session: &mut S, data: &Bytes) -> Result<S::Item> {
    let total = data.len() as u64;
    let chunk_size = session.chunk_size().max(1) as u64;
    let mut offset = 0u64;
    let mut resumes = 0;
    let mut stalled = 0;
    let mut throttled = 0;

    loop {
        let end = (offset + chunk_size).min(total);
        let chunk = data.slice(offset as usize..end as usize);
        let step = match session.send_chunk(offset, chunk, end == total).await {
            Ok(step) => step,
            Err(err) if err.kind() == ErrorKind::RateLimited => {
                throttled = wait_out(err, offset, throttled).await?;
                continue;
            }
            Err(err) if resumable(err.kind()) && resumes < RESUMES => {
                resumes += 1;
                tracing::info!(offset, resume = resumes, kind = %err.kind(), "a chunk failed; asking the upload session where it stands");
                tokio::time::sleep(RESUME_PAUSE).await;
                session.resume(total).await?
            }
            Err(err) => return Err(err),
        };
        let next = match step {
            Step::Done(item) => return Ok(item),
            Step::Next(next) => next,
        };
        if next > total || stalled > RESUMES {
            return Err(Error::new(
                ErrorKind::Delivery,
                format!(
                    "the upload session went wrong: it expects byte {next} of a {total}-byte \
                     file after byte {offset}"
                ),
            ));
        }
        stalled = if next > offset { 0 } else { stalled + 1 };
        offset = next;
        if offset >= total {
            return session.commit().await;
        }
    }
}

/// Waits as long as a rate-limited chunk's answer asked, so the chunk can go again in the same
/// session; returns how many waits this upload has had, or the error when the server asks for
/// too long a wait or has refused too often.
async fn wait_out(err: Error, offset: u64, waits: u32) -> Result<u32> {
    let wait = err.retry_after().unwrap_or(THROTTLE_PAUSE);
    if waits >= THROTTLED_RESENDS || wait > MAX_THROTTLE_WAIT {
        return Err(err);
    }

    tracing::info!(
        offset,
        wait_ms = wait.as_millis() as u64,
        "the server asked to slow down; sending the chunk again after the wait"
    );
    tokio::time::sleep(wait).await;
    Ok(waits + 1)
}

/// Failures after which the session is asked where it stands. Rate limits are waited out
/// (see [`wait_out`]).
fn resumable(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Transient | ErrorKind::Timeout)
}

/// The chunk size `requested`, checked against a provider's rules: a positive multiple of
/// `unit`, at most `max`.
pub(crate) fn check_chunk_size(
    backend: &'static str,
    requested: u64,
    unit: u64,
    max: u64,
) -> Result<usize> {
    if requested == 0 || !requested.is_multiple_of(unit) || requested > max {
        return Err(Error::invalid_config(format!(
            "chunk_size {requested} must be a multiple of {unit} bytes and at most {max} bytes"
        ))
        .with_backend(backend));
    }
    usize::try_from(requested).map_err(|_| {
        Error::invalid_config(format!(
            "chunk_size {requested} is too large for this machine"
        ))
        .with_backend(backend)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session that keeps what it receives, failing the chunks it is told to and refusing
    /// the ones at `throttle_at` with a rate limit and a wait.
    struct Recorder {
        received: Vec<u8>,
        fail_at: Vec<u64>,
        throttle_at: Vec<(u64, Duration)>,
        sends: usize,
        resumes: usize,
        aborted: bool,
        committed: bool,
    }

    #[async_trait]
    impl UploadSession for Recorder {
        type Item = Vec<u8>;

        fn chunk_size(&self) -> usize {
            4
        }

        async fn send_chunk(
            &mut self,
            offset: u64,
            chunk: Bytes,
            _last: bool,
        ) -> Result<Step<Vec<u8>>> {
            self.sends += 1;
            if let Some(i) = self.throttle_at.iter().position(|(o, _)| *o == offset) {
                let (_, wait) = self.throttle_at.remove(i);
                return Err(Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(wait));
            }
            if let Some(i) = self.fail_at.iter().position(|o| *o == offset) {
                self.fail_at.remove(i);
                return Err(Error::new(ErrorKind::Transient, "dropped"));
            }
            assert_eq!(offset as usize, self.received.len());
            self.received.extend_from_slice(&chunk);
            Ok(Step::Next(self.received.len() as u64))
        }

        async fn resume(&mut self, _total: u64) -> Result<Step<Vec<u8>>> {
            self.resumes += 1;
            Ok(Step::Next(self.received.len() as u64))
        }

        async fn commit(&mut self) -> Result<Vec<u8>> {
            self.committed = true;
            Ok(self.received.clone())
        }

        async fn abort(&mut self) {
            self.aborted = true;
        }
    }

    fn recorder(fail_at: Vec<u64>) -> Recorder {
        Recorder {
            received: Vec::new(),
            fail_at,
            throttle_at: Vec::new(),
            sends: 0,
            resumes: 0,
            aborted: false,
            committed: false,
        }
    }

    #[tokio::test]
    async fn resumes_after_failed_chunks() {
        let data = Bytes::from_static(b"0123456789abcdefg");
        let mut session = recorder(vec![4, 8]);
        let item = drive(&mut session, &data).await.unwrap();
        assert_eq!(item, data.to_vec());
        assert!(session.committed && !session.aborted);
    }

    #[tokio::test]
    async fn gives_up_and_aborts() {
        let data = Bytes::from_static(b"0123456789");
        let mut session = recorder(vec![4, 4, 4, 4]);
        let err = drive(&mut session, &data).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert!(session.aborted && !session.committed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_chunk_is_sent_again_after_the_wait_in_the_same_session() {
        let data = Bytes::from_static(b"0123456789abcdefg");
        let mut session = recorder(Vec::new());
        session.throttle_at = vec![(4, Duration::from_secs(30)), (12, Duration::from_secs(90))];
        let started = tokio::time::Instant::now();

        let item = drive(&mut session, &data).await.unwrap();

        assert_eq!(item, data.to_vec());
        assert!(session.committed && !session.aborted);
        assert_eq!(session.sends, 5 + 2, "five chunks, two of them twice");
        assert_eq!(
            session.resumes, 0,
            "nothing to resume: the chunk was refused whole"
        );
        assert!(started.elapsed() >= Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_too_long_for_the_session_goes_to_the_engine() {
        let data = Bytes::from_static(b"0123456789");
        let mut session = recorder(Vec::new());
        session.throttle_at = vec![(4, MAX_THROTTLE_WAIT + Duration::from_secs(1))];
        let started = tokio::time::Instant::now();

        let err = drive(&mut session, &data).await.unwrap_err();

        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(
            err.retry_after(),
            Some(MAX_THROTTLE_WAIT + Duration::from_secs(1))
        );
        assert!(session.aborted && !session.committed);
        assert!(started.elapsed() < Duration::from_secs(1), "no wait here");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_keeps_refusing_gets_the_session_cancelled() {
        let data = Bytes::from_static(b"0123456789");
        let mut session = recorder(Vec::new());
        session.throttle_at = vec![(4, Duration::from_secs(1)); 10];

        let err = drive(&mut session, &data).await.unwrap_err();

        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(session.sends, 1 + THROTTLED_RESENDS as usize + 1);
        assert!(session.aborted && !session.committed);
    }

    #[tokio::test]
    async fn empty_files_send_one_empty_chunk() {
        let mut session = recorder(Vec::new());
        let item = drive(&mut session, &Bytes::new()).await.unwrap();
        assert!(item.is_empty());
    }

    #[test]
    fn chunk_sizes_follow_the_rules() {
        assert_eq!(check_chunk_size("t", 640, 320, 6400).unwrap(), 640);
        for bad in [0, 100, 6720] {
            assert!(check_chunk_size("t", bad, 320, 6400).is_err());
        }
    }
}
