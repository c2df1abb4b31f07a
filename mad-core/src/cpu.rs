//! The engine's CPU pool: a few long-lived threads that render and protect documents.
//!
//! Tokio's blocking pool would do the work too, but it spreads jobs over as many threads as it
//! likes, each with cold caches and its own per-thread state (compressors, scratch buffers),
//! and wakes one for every job. Here a fixed set of threads takes jobs from one queue; while
//! the queue holds work, a thread goes from one job to the next without sleeping.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A job runs outside the lock and its panic is caught, so the lock is never poisoned
        // by one; should it be, the queue itself is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work(&self) {
        loop {
            let job = {
                let mut queue = self.lock();
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        break job;
                    }
                    if queue.closed {
                        return;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            // The job reports its own panic through its result channel.
            let _ = catch_unwind(AssertUnwindSafe(job));
        }
    }
}

/// A fixed number of threads, started at the first job and ended when the pool is dropped
/// (after the jobs already queued).
pub(crate) struct CpuPool {
    threads: usize,
    shared: Arc<Shared>,
    started: OnceLock<std::result::Result<(), String>>,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl CpuPool {
    pub(crate) fn new(threads: usize) -> CpuPool {
        CpuPool {
            threads: threads.max(1),
            shared: Arc::default(),
            started: OnceLock::new(),
        }
    }

    fn start(&self) -> Result<()> {
        let started = self.started.get_or_init(|| {
            for index in 0..self.threads {
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name(format!("mad-cpu-{index}"))
                    .spawn(move || shared.work())
                    .map_err(|e| format!("could not start a render thread: {e}"))?;
            }
            Ok(())
        });
        started.clone().map_err(Error::internal)
    }

    /// Runs `job` on one of the pool's threads and waits for its result. A panic in `job`
    /// becomes an error naming `what`.
    pub(crate) async fn run<T, F>(&self, what: &str, job: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.start()?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        {
            let mut queue = self.shared.lock();
            queue.jobs.push_back(job);
        }
        self.shared.ready.notify_one();
        result
            .await
            .map_err(|_| Error::internal(format!("{what} panicked")))
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_threads() {
        let pool = CpuPool::new(2);
        let names: Vec<String> = futures::future::join_all((0..8).map(|_| {
            pool.run("a job", || {
                std::thread::current()
                    .name()
                    .unwrap_or_default()
                    .to_string()
            })
        }))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
        assert!(names.iter().all(|n| n.starts_with("mad-cpu-")), "{names:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
        let pool = CpuPool::new(1);
        let err = pool
            .run("the renderer", || -> u32 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the renderer panicked"), "{err}");
        assert_eq!(pool.run("a job", || 7).await.unwrap(), 7);
    }

    #[test]
    fn threads_end_when_the_pool_is_dropped() {
        let pool = CpuPool::new(1);
        let shared = Arc::downgrade(&pool.shared);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(pool.run("a job", || ()))
            .unwrap();
        drop(pool);
        // The thread holds the last reference until it has seen the pool closed.
        for _ in 0..200 {
            if shared.strong_count() == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the pool's thread did not end");
    }
}
