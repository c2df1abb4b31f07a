//! Chunked uploads through a provider's upload session.
//!
//! The driver sends a document chunk by chunk. When a chunk fails with a retryable error (a
//! dropped connection, a 5xx, a timeout) it asks the session how much the server holds and
//! continues from there, a few times; when the session cannot go on, it is cancelled, so no
//! half-uploaded file is ever committed and the error goes to the engine, which retries the
//! whole delivery.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{Error, ErrorKind, Result};

/// How often one upload resumes after failed chunks before giving up.
const RESUMES: u32 = 3;

/// The pause before asking a session where it stands after a failed chunk.
const RESUME_PAUSE: Duration = Duration::from_millis(200);

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

    loop {
        let end = (offset + chunk_size).min(total);
        let chunk = data.slice(offset as usize..end as usize);
        let step = match session.send_chunk(offset, chunk, end == total).await {
            Ok(step) => step,
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

/// Rate limits are left to the engine, which waits as long as the server asked.
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

    /// A session that keeps what it receives, failing the chunks it is told to.
    struct Recorder {
        received: Vec<u8>,
        fail_at: Vec<u64>,
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
            if let Some(i) = self.fail_at.iter().position(|o| *o == offset) {
                self.fail_at.remove(i);
                return Err(Error::new(ErrorKind::Transient, "dropped"));
            }
            assert_eq!(offset as usize, self.received.len());
            self.received.extend_from_slice(&chunk);
            Ok(Step::Next(self.received.len() as u64))
        }

        async fn resume(&mut self, _total: u64) -> Result<Step<Vec<u8>>> {
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
