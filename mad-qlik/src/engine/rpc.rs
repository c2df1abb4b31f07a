//! JSON-RPC 2.0 over one WebSocket: request ids, responses matched to their requests,
//! notifications, cancellation and the end of the connection.
//!
//! A reader task routes every frame the engine sends: a frame whose `id` matches a waiting
//! request is its answer; a frame with a `method` is a notification (`OnConnected`,
//! `OnAuthenticationInformation`, the proxy's fatal notices); anything else is a pushed
//! change list, which this client does not need because it never caches layouts. A writer
//! task sends frames in order. When the socket ends, every waiting request fails with the
//! error the close code (or the last fatal notification) stands for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use mad_core::{Error, ErrorKind};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::errors::{
    BACKEND, EngineError, close_error, copy_error, dropped_error, notification_error,
    session_state_error,
};

/// The byte stream under a WebSocket: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// Why a request failed: the engine answered with an error, or the call did not complete.
#[derive(Debug)]
pub enum Failure {
    Engine(EngineError),
    Other(Error),
}

impl Failure {
    /// The project error, naming the method for engine errors.
    pub fn into_error(self, method: &str) -> Error {
        match self {
            Failure::Engine(e) => e.into_error(method),
            Failure::Other(e) => e,
        }
    }

    /// The engine's error code, when the engine answered with an error.
    pub fn engine_code(&self) -> Option<i64> {
        match self {
            Failure::Engine(e) => Some(e.code),
            Failure::Other(_) => None,
        }
    }
}

/// How the engine greeted a new socket (`OnConnected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// A new engine session.
    Created,
    /// A live session (same user, app and identity) that may already have the app open.
    Attached,
}

type Outcome = Result<Json, Failure>;

#[derive(Default)]
struct State {
    pending: HashMap<i64, oneshot::Sender<Outcome>>,
    greeting: Option<oneshot::Sender<Result<SessionState, Error>>>,
    ended: Option<Error>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_frame(&self, text: &str) {
        let Ok(frame) = serde_json::from_str::<Json>(text) else {
            tracing::debug!(backend = BACKEND, "ignored a frame that is not JSON");
            return;
        };
        if let Some(id) = frame.get("id").and_then(Json::as_i64) {
            let waiting = self.lock().pending.remove(&id);
            match waiting {
                Some(tx) => {
                    let _ = tx.send(outcome(frame));
                }
                None => tracing::trace!(id, "answer to a cancelled request"),
            }
            return;
        }
        if let Some(method) = frame.get("method").and_then(Json::as_str) {
            self.on_notification(method, &frame["params"]);
        }
    }

    fn on_notification(&self, method: &str, params: &Json) {
        tracing::debug!(backend = BACKEND, method, "engine notification");
        match method {
            "OnConnected" => {
                let state = params["qSessionState"].as_str().unwrap_or("");
                let greeting = match state {
                    "SESSION_CREATED" => Ok(SessionState::Created),
                    "SESSION_ATTACHED" => Ok(SessionState::Attached),
                    other => Err(session_state_error(other)),
                };
                if let Err(err) = &greeting {
                    self.fail(copy_error(err));
                }
                if let Some(tx) = self.lock().greeting.take() {
                    let _ = tx.send(greeting);
                }
            }
            "OnAuthenticationInformation" if params["mustAuthenticate"] == true => {
                self.fail(
                    Error::new(
                        ErrorKind::Unauthenticated,
                        "the proxy asks for an interactive login; configure header, \
                         certificate or session-cookie authentication for it",
                    )
                    .with_backend(BACKEND),
                );
            }
            _ => {
                let fatal = notification_error(method).or_else(|| {
                    (params["severity"] == "fatal").then(|| {
                        Error::new(
                            ErrorKind::Transient,
                            format!("the engine sent the fatal notification {method}"),
                        )
                        .with_backend(BACKEND)
                    })
                });
                if let Some(err) = fatal {
                    self.fail(err);
                }
            }
        }
    }

    /// Ends the connection with `err` (the first reason wins) and fails everything waiting.
    fn fail(&self, err: Error) {
        let mut state = self.lock();
        let reason = state.ended.get_or_insert(err);
        let reason = copy_error(reason);
        for (_, tx) in state.pending.drain() {
            let _ = tx.send(Err(Failure::Other(copy_error(&reason))));
        }
        if let Some(tx) = state.greeting.take() {
            let _ = tx.send(Err(reason));
        }
    }

    fn ended(&self) -> Option<Error> {
        self.lock().ended.as_ref().map(copy_error)
    }
}

fn outcome(frame: Json) -> Outcome {
    if let Some(error) = frame.get("error") {
        return Err(Failure::Engine(EngineError {
            code: error["code"].as_i64().unwrap_or(-1),
            parameter: error["parameter"].as_str().unwrap_or("").to_string(),
            message: error["message"].as_str().unwrap_or("").to_string(),
        }));
    }
    let mut frame = frame;
    Ok(frame
        .get_mut("result")
        .map(Json::take)
        .unwrap_or(Json::Null))
}

struct Link {
    tx: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    next_id: AtomicI64,
}

impl Link {
    fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, id: i64, handle: i64, method: &str, params: &Json) -> bool {
        let frame = json!({
            "jsonrpc": "2.0", "id": id, "handle": handle, "method": method,
            "params": params, "delta": false
        });
        self.tx.send(Message::text(frame.to_string())).is_ok()
    }
}

/// A request in flight; dropping it before its answer cancels it on the engine.
struct InFlight<'a> {
    link: &'a Link,
    id: i64,
    answered: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.answered || self.link.shared.lock().pending.remove(&self.id).is_none() {
            return;
        }
        tracing::debug!(id = self.id, "cancelling an engine request");
        let cancel_id = self.link.next_id();
        self.link
            .send(cancel_id, -1, "CancelRequest", &json!([self.id]));
    }
}

/// One WebSocket to the engine, speaking JSON-RPC.
pub(crate) struct RpcConnection {
    link: Arc<Link>,
    reader: JoinHandle<()>,
    request_timeout: Duration,
}

impl std::fmt::Debug for RpcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConnection")
            .field("ended", &self.link.shared.ended().is_some())
            .finish()
    }
}

impl Drop for RpcConnection {
    fn drop(&mut self) {
        // The writer closes the socket once the last sender is gone.
        self.reader.abort();
    }
}

impl RpcConnection {
    /// Starts the reader and writer over an open socket and waits for `OnConnected`.
    ///
    /// An engine that never greets is assumed to have created a session after
    /// `greeting_wait`, as the official JavaScript client does.
    pub async fn start(
        socket: Socket,
        request_timeout: Duration,
        greeting_wait: Duration,
    ) -> Result<(Self, SessionState), Error> {
        let (sink, stream) = socket.split();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let (greet_tx, greet_rx) = oneshot::channel();
        shared.lock().greeting = Some(greet_tx);
        tokio::spawn(write_loop(sink, rx));
        let reader = tokio::spawn(read_loop(stream, shared.clone()));
        let connection = RpcConnection {
            link: Arc::new(Link {
                tx,
                shared,
                next_id: AtomicI64::new(1),
            }),
            reader,
            request_timeout,
        };

        let state = match tokio::time::timeout(greeting_wait, greet_rx).await {
            Ok(Ok(greeting)) => greeting?,
            Ok(Err(_)) => return Err(connection.end_error()),
            Err(_) => {
                tracing::debug!(backend = BACKEND, "no OnConnected; assuming a new session");
                SessionState::Created
            }
        };
        Ok((connection, state))
    }

    /// Whether the socket has ended; a dead connection is never reused.
    pub fn is_ended(&self) -> bool {
        self.link.shared.ended().is_some() || self.reader.is_finished()
    }

    fn end_error(&self) -> Error {
        self.link.shared.ended().unwrap_or_else(dropped_error)
    }

    /// Calls `method` on `handle` and returns the `result` member of the answer.
    ///
    /// A call that gets no answer within the request timeout is cancelled on the engine
    /// (`Global.CancelRequest`) and fails with `Timeout`; so is a call whose future is
    /// dropped before the answer arrives.
    pub async fn call(&self, handle: i64, method: &str, params: Json) -> Result<Json, Failure> {
        if let Some(err) = self.link.shared.ended() {
            return Err(Failure::Other(err));
        }
        let id = self.link.next_id();
        let (tx, rx) = oneshot::channel();
        self.link.shared.lock().pending.insert(id, tx);
        let mut in_flight = InFlight {
            link: &self.link,
            id,
            answered: false,
        };
        tracing::trace!(id, handle, method, "engine request");
        if !self.link.send(id, handle, method, &params) {
            in_flight.answered = true;
            self.link.shared.lock().pending.remove(&id);
            return Err(Failure::Other(self.end_error()));
        }

        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(outcome)) => {
                in_flight.answered = true;
                outcome
            }
            Ok(Err(_)) => {
                in_flight.answered = true;
                Err(Failure::Other(self.end_error()))
            }
            Err(_) => Err(Failure::Other(
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{method}: the engine did not answer within {:?}; the request was \
                         cancelled (raise request_timeout for slow apps)",
                        self.request_timeout
                    ),
                )
                .with_backend(BACKEND),
            )),
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(message) = rx.recv().await {
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

async fn read_loop(mut stream: SplitStream<Socket>, shared: Arc<Shared>) {
    let end = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => shared.on_frame(text.as_str()),
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => close_error(u16::from(f.code), f.reason.as_str()),
                    None => close_error(1005, ""),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(backend = BACKEND, error = %e, "engine socket failed");
                break dropped_error();
            }
            None => break dropped_error(),
        }
    };
    shared.fail(end);
}
