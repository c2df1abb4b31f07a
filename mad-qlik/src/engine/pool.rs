//! A pool of engine sessions: at most `max_sessions` in use per user, idle ones reused, and
//! each with its own selection state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mad_core::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connector::Connector;
use super::errors::BACKEND;
use super::session::EngineSession;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Engine sessions for one app, per user (the source's user, or a recipient's identity).
///
/// A user never has more than `max_sessions` sessions: new ones open only when none of the
/// user's is idle, and only while fewer than `max_sessions` are in use. At most
/// `max_sessions` idle sessions are kept over all users; the oldest is closed beyond that.
#[derive(Debug)]
pub(crate) struct SessionPool {
    connector: Arc<Connector>,
    max_sessions: usize,
    users: Mutex<HashMap<Option<String>, Arc<Semaphore>>>,
    idle: Mutex<Vec<(Option<String>, EngineSession)>>,
}

/// A session taken from the pool. [`Lease::release`] gives it back; dropping the lease
/// closes it instead, which is what happens to a session that failed.
pub(crate) struct Lease<'a> {
    pool: &'a SessionPool,
    user: Option<String>,
    session: Option<EngineSession>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    pub fn session(&mut self) -> &mut EngineSession {
        self.session
            .as_mut()
            .expect("a lease holds its session until released")
    }

    pub fn release(mut self) {
        if let Some(session) = self.session.take() {
            self.pool.put_back(std::mem::take(&mut self.user), session);
        }
    }
}

impl SessionPool {
    pub fn new(connector: Arc<Connector>, max_sessions: usize) -> Self {
        SessionPool {
            connector,
            max_sessions: max_sessions.max(1),
            users: Mutex::new(HashMap::new()),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// A session for `identity` (the source's own user for `None`), waiting while the user
    /// has `max_sessions` in use.
    pub async fn acquire(&self, identity: Option<&str>) -> Result<Lease<'_>> {
        let user = identity.map(str::to_string);
        let slots = lock(&self.users)
            .entry(user.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_sessions)))
            .clone();
        let permit = slots
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the session pool was closed").with_backend(BACKEND))?;
        let reused = {
            let mut idle = lock(&self.idle);
            idle.retain(|(_, s)| !s.is_closed());
            idle.iter()
                .rposition(|(u, _)| *u == user)
                .map(|i| idle.remove(i).1)
        };
        let session = match reused {
            Some(session) => session,
            None => self.connector.connect(identity).await?,
        };
        Ok(Lease {
            pool: self,
            user,
            session: Some(session),
            _permit: permit,
        })
    }

    fn put_back(&self, user: Option<String>, session: EngineSession) {
        if session.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() >= self.max_sessions {
            idle.remove(0);
        }
        idle.push((user, session));
    }

    /// Sessions kept open for reuse.
    pub fn idle_sessions(&self) -> usize {
        lock(&self.idle).len()
    }
}
