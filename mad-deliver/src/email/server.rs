//! One SMTP server as the whole process sees it: the connections kept open to it, the cap on
//! how many are open at once, and the pace messages may be sent at.
//!
//! Channels whose `smtp` options are the same (and whose password is the same) share one
//! server, so two channel definitions that send through the same server share its
//! connections and its send-rate limit, across tasks and runs, for as long as one of them
//! lives.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

/// A connection idle for longer than this is closed instead of reused: servers drop idle
/// clients after a few minutes.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// How to reach and log in to a server.
#[derive(Clone)]
pub(super) struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub credentials: Option<Credentials>,
    /// The longest connecting and sending one message may take.
    pub timeout: Duration,
    pub max_connections: u32,
    pub max_per_minute: Option<u32>,
}

/// Why a message was not sent.
pub(super) enum SendFailure {
    Smtp(SmtpError),
    TimedOut,
    /// The server stopped answering once the message was being handed over: it may be taking
    /// it still. (A connection the server cuts is a plain failure: a server that took a
    /// message says so before it hangs up.)
    Unsure(Option<SmtpError>),
}

/// An SMTP server and the connections kept open to it.
pub(super) struct Server {
    settings: ServerSettings,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
    pace: Option<DefaultDirectRateLimiter>,
}

type Servers = Mutex<HashMap<String, Weak<Server>>>;

static SERVERS: LazyLock<Servers> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl Server {
    /// The server known under `key` with the same credentials, or a new one made from
    /// `settings`. `key` names everything about the server except the password.
    pub(super) fn shared(key: String, settings: ServerSettings) -> Arc<Server> {
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        servers.retain(|_, server| server.strong_count() > 0);
        if let Some(server) = servers.get(&key).and_then(Weak::upgrade)
            && server.settings.credentials == settings.credentials
        {
            return server;
        }
        let server = Arc::new(Server::new(settings));
        servers.insert(key, Arc::downgrade(&server));
        server
    }

    fn new(settings: ServerSettings) -> Self {
        let pace = settings
            .max_per_minute
            .and_then(NonZeroU32::new)
            .and_then(|n| Quota::with_period(Duration::from_secs(60) / n.get()))
            .map(|quota| RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)));
        Server {
            slots: Semaphore::new(settings.max_connections.max(1) as usize),
            settings,
            idle: Mutex::new(Vec::new()),
            pace,
        }
    }

    /// Sends one message: waits for its turn under the send-rate limit and for a free
    /// connection slot, then sends over a kept connection or a new one, within the timeout.
    /// A connection that failed or timed out is closed, never reused.
    pub(super) async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendFailure> {
        if let Some(pace) = &self.pace {
            pace.until_ready().await;
        }
        // The semaphore is never closed, so a slot always comes.
        let _slot = self.slots.acquire().await.ok();

        // Set once the message starts to leave: from then on silence from the server leaves
        // open whether it took the message.
        let sending = std::sync::atomic::AtomicBool::new(false);
        let exchange = async {
            let mut connection = self.connection().await.map_err(SendFailure::Smtp)?;
            sending.store(true, std::sync::atomic::Ordering::Relaxed);
            match connection.send(envelope, bytes).await {
                Ok(_) => Ok(connection),
                Err(err) if err.is_timeout() => Err(SendFailure::Unsure(Some(err))),
                Err(err) => Err(SendFailure::Smtp(err)),
            }
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Ok(Ok(connection)) => {
                self.park(connection);
                Ok(())
            }
            Ok(Err(failure)) => Err(failure),
            Err(_) if sending.load(std::sync::atomic::Ordering::Relaxed) => {
                Err(SendFailure::Unsure(None))
            }
            Err(_) => Err(SendFailure::TimedOut),
        }
    }

    /// A kept connection that still answers, or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        while let Some(mut connection) = self.take_idle() {
            if connection.test_connected().await {
                tracing::trace!(server = %self.settings.host, "reusing a connection");
                return Ok(connection);
            }
        }
        self.connect().await
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, since)| since.elapsed() < IDLE_LIMIT);
        idle.pop().map(|(connection, _)| connection)
    }

    fn park(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push((connection, Instant::now()));
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let settings = &self.settings;
        let hello = ClientId::default();
        let wrapper = match &settings.tls {
            Tls::Wrapper(parameters) => Some(parameters.clone()),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (settings.host.as_str(), settings.port),
            Some(settings.timeout),
            &hello,
            wrapper,
            None,
        )
        .await?;
        if let Tls::Required(parameters) = &settings.tls {
            connection.starttls(parameters.clone(), &hello).await?;
        }
        if let Some(credentials) = &settings.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        tracing::debug!(server = %settings.host, port = settings.port, "connected");
        Ok(connection)
    }
}
