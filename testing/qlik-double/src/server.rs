//! The listener, the HTTP routes and the WebSocket connections.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::{SinkExt, StreamExt};
use mad_core::{Error, Result};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::BACKEND;
use crate::app::App;
use crate::auth::{self, Auth, ProxySession, User};
use crate::faults::{Fault, Faults, Trigger};
use crate::http::{self, RequestHead};
use crate::methods::{self, Engine, Params};
use crate::observe::{SessionInfo, Stats, Violation};
use crate::rpc::{self, RpcError, codes};
use crate::schema::ProtocolSchema;
use crate::session::{GLOBAL, HandleKind, Outgoing, Session, SessionKey};
use crate::tls::{ClientCertificate, Pki};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds a [`QlikDouble`].
#[derive(Debug)]
pub struct QlikDoubleBuilder {
    apps: Vec<App>,
    auth: Auth,
    tls: bool,
    virtual_proxy: Option<String>,
    session_ttl: Duration,
    schema: Option<Arc<ProtocolSchema>>,
    missing_objects_as_errors: bool,
    port: u16,
}

impl QlikDoubleBuilder {
    /// Serves `app`; its id is what clients put in the URL and pass to `OpenDoc`.
    pub fn app(mut self, app: App) -> Self {
        self.apps.push(app);
        self
    }

    /// How handshakes are authenticated (none by default).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Serves `wss://` with a certificate generated at start; trust [`QlikDouble::ca_pem`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Serves behind a virtual-proxy prefix: `/<prefix>/app/<id>`.
    pub fn virtual_proxy(mut self, prefix: impl Into<String>) -> Self {
        self.virtual_proxy = Some(prefix.into());
        self
    }

    /// How long a session outlives its last socket, so a reconnect re-attaches to it
    /// (`SESSION_ATTACHED`). A `/ttl/<seconds>` URL segment overrides it. Default: 0.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// The protocol schema requests are checked against (default: the workspace's copy of
    /// the engine's OpenRPC document).
    pub fn schema(mut self, schema: Arc<ProtocolSchema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Answers `GetObject`, `GetField`, `GetVariableByName` and the like on unknown ids with
    /// error 2 instead of the engine's usual null reference (`qHandle: null`).
    pub fn missing_objects_as_errors(mut self) -> Self {
        self.missing_objects_as_errors = true;
        self
    }

    /// Listens on this port of 127.0.0.1 (default 0: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Starts listening on 127.0.0.1 and serving on the current Tokio runtime.
    pub async fn start(self) -> Result<QlikDouble> {
        if matches!(self.auth, Auth::ClientCertificate) && !self.tls {
            return Err(Error::invalid_config(
                "client-certificate authentication needs TLS; call .tls() on the builder",
            )
            .with_backend(BACKEND));
        }
        let schema = match self.schema {
            Some(schema) => schema,
            None => ProtocolSchema::bundled()?,
        };
        let pki = if self.tls {
            Some(Arc::new(Pki::generate()?))
        } else {
            None
        };
        let acceptor = match &pki {
            Some(pki) => {
                let client_auth = matches!(self.auth, Auth::ClientCertificate);
                Some(TlsAcceptor::from(pki.server_config(client_auth)?))
            }
            None => None,
        };
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| Error::io("listening on 127.0.0.1", e).with_backend(BACKEND))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e).with_backend(BACKEND))?;
        let (control, _) = broadcast::channel(16);
        let shared = Arc::new(Shared {
            apps: self
                .apps
                .into_iter()
                .map(|a| (a.id.clone(), Arc::new(a)))
                .collect(),
            schema,
            auth: self.auth,
            virtual_proxy: self.virtual_proxy,
            session_ttl: self.session_ttl,
            missing_objects_as_errors: self.missing_objects_as_errors,
            reload_time: iso_timestamp(SystemTime::now()),
            acceptor,
            sessions: Mutex::new(HashMap::new()),
            proxy_sessions: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            served_as: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
            control,
            next_connection: AtomicU64::new(1),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(%addr, tls = pki.is_some(), "qlik double listening");
        Ok(QlikDouble {
            shared,
            addr,
            pki,
            task,
        })
    }
}

/// A running Qlik engine test double on 127.0.0.1. Dropping it stops the listener and closes
/// every connection.
#[derive(Debug)]
pub struct QlikDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    pki: Option<Arc<Pki>>,
    task: JoinHandle<()>,
}

impl QlikDouble {
    pub fn builder() -> QlikDoubleBuilder {
        QlikDoubleBuilder {
            apps: Vec::new(),
            auth: Auth::None,
            tls: false,
            virtual_proxy: None,
            session_ttl: Duration::ZERO,
            schema: None,
            missing_objects_as_errors: false,
            port: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The WebSocket URL of an app: `ws(s)://127.0.0.1:<port>[/<prefix>]/app/<id>`.
    pub fn app_url(&self, app_id: &str) -> String {
        self.url(&format!("/app/{}", percent_encode(app_id)))
    }

    /// A URL on the double for `path` (which starts with `/`), under the virtual proxy.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.pki.is_some() { "wss" } else { "ws" };
        let prefix = self
            .shared
            .virtual_proxy
            .as_ref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        format!("{scheme}://{}{prefix}{path}", self.addr)
    }

    /// The PEM of the certificate authority that signed the server certificate (and client
    /// certificates); `None` without TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.pki.as_ref().map(|p| p.ca_pem())
    }

    /// Issues a client certificate signed by the double's CA, for mutual TLS.
    pub fn issue_client_certificate(&self, name: &str) -> Result<ClientCertificate> {
        let pki = self.pki.as_ref().ok_or_else(|| {
            Error::invalid_config("client certificates need TLS; call .tls() on the builder")
                .with_backend(BACKEND)
        })?;
        pki.issue_client(name)
    }

    /// Adds a fault; it plays when its trigger comes.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).inject(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// From now on every accepted handshake is served as `user`, whatever user it asked to
    /// be, as a proxy set up with a static or anonymous user does; `None` ends it.
    pub fn serve_everyone_as(&self, user: Option<User>) {
        *lock(&self.shared.served_as) = user;
    }

    /// Closes every open WebSocket now with `code` (1006: dropped without a close frame).
    /// Sessions stay for their TTL, so clients can re-attach.
    pub fn close_connections(&self, code: u16, reason: &str) {
        let _ = self.shared.control.send(Control::Close {
            code,
            reason: reason.to_string(),
        });
    }

    /// Ends every session as a proxy's inactivity timeout does: each socket gets an
    /// `OnSessionTimedOut` notification and a close with code 4001, and the sessions are
    /// gone (a reconnect gets `SESSION_CREATED`).
    pub fn time_out_sessions(&self) {
        let _ = self.shared.control.send(Control::TimeOut);
        let mut sessions = lock(&self.shared.sessions);
        let mut stats = lock(&self.shared.stats);
        for (_, session) in sessions.drain() {
            stats.ended_sessions.push(lock(&session).info(true));
        }
    }

    /// Requests received per `Class.Method`.
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        lock(&self.shared.stats).requests.clone()
    }

    /// Requests received for `method` (`Class.Method`, or a bare method name over all classes).
    pub fn request_count(&self, method: &str) -> usize {
        lock(&self.shared.stats)
            .requests
            .iter()
            .filter(|(k, _)| *k == method || k.rsplit('.').next() == Some(method))
            .map(|(_, n)| n)
            .sum()
    }

    /// Sessions created (`SESSION_CREATED`) since start.
    pub fn sessions_opened(&self) -> usize {
        lock(&self.shared.stats).sessions_created
    }

    /// Re-attachments to live sessions (`SESSION_ATTACHED`) since start.
    pub fn sessions_attached(&self) -> usize {
        lock(&self.shared.stats).sessions_attached
    }

    /// Handshakes refused by authentication since start.
    pub fn handshakes_refused(&self) -> usize {
        lock(&self.shared.stats).handshakes_refused
    }

    /// Every session, ended ones first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut out = lock(&self.shared.stats).ended_sessions.clone();
        let sessions = lock(&self.shared.sessions);
        let mut live: Vec<SessionInfo> = sessions.values().map(|s| lock(s).info(false)).collect();
        live.sort_by(|a, b| (&a.user, &a.app, &a.identity).cmp(&(&b.user, &b.app, &b.identity)));
        out.extend(live);
        out
    }

    /// Requests that broke the published protocol: unknown methods, unknown or missing
    /// parameters, wrong types, malformed frames, unknown handles.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.stats).violations.clone()
    }

    /// Stops the listener and closes every connection.
    pub fn shutdown(self) {}
}

impl Drop for QlikDouble {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.shared.control.send(Control::Shutdown);
    }
}

#[derive(Debug, Clone)]
enum Control {
    Close { code: u16, reason: String },
    TimeOut,
    Shutdown,
}

struct Shared {
    apps: BTreeMap<String, Arc<App>>,
    schema: Arc<ProtocolSchema>,
    auth: Auth,
    virtual_proxy: Option<String>,
    session_ttl: Duration,
    missing_objects_as_errors: bool,
    reload_time: String,
    acceptor: Option<TlsAcceptor>,
    sessions: Mutex<HashMap<SessionKey, Arc<Mutex<Session>>>>,
    proxy_sessions: Mutex<HashMap<String, ProxySession>>,
    faults: Mutex<Faults>,
    served_as: Mutex<Option<User>>,
    stats: Mutex<Stats>,
    control: broadcast::Sender<Control>,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("apps", &self.apps.keys().collect::<Vec<_>>())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn violation(&self, method: &str, handle: Option<i64>, reason: impl Into<String>, frame: &str) {
        let reason = reason.into();
        tracing::debug!(method, "protocol violation");
        lock(&self.stats).violations.push(Violation {
            method: method.to_string(),
            handle,
            reason,
            frame: frame.to_string(),
        });
    }

    fn attach(
        &self,
        user: &User,
        target: &Target,
        conn: u64,
        tx: mpsc::UnboundedSender<Outgoing>,
    ) -> (Arc<Mutex<Session>>, bool) {
        let key = SessionKey {
            user: user.qualified(),
            app: target.app.clone().unwrap_or_default(),
            identity: target.identity.clone(),
        };
        let ttl = target.ttl.unwrap_or(self.session_ttl);
        let mut sessions = lock(&self.sessions);
        if let Some(existing) = sessions.get(&key).cloned() {
            let mut session = lock(&existing);
            let expired =
                session.sockets.is_empty() && session.expires.is_none_or(|e| e <= Instant::now());
            if !expired {
                session.sockets.push((conn, tx));
                session.expires = None;
                session.ttl = ttl;
                lock(&self.stats).sessions_attached += 1;
                drop(session);
                return (existing, true);
            }
            lock(&self.stats).ended_sessions.push(session.info(true));
            drop(session);
            sessions.remove(&key);
        }
        let mut session = Session::new(key.clone(), user.clone(), ttl);
        if let Some(app) = target
            .app
            .as_deref()
            .filter(|a| a.starts_with("SessionApp_") && !self.apps.contains_key(*a))
        {
            let app = Arc::new(App::session(app));
            session.doc = Some(crate::data::DocState::new(app.clone(), app.table.clone()));
            session.open_handle(HandleKind::Doc);
        }
        session.sockets.push((conn, tx));
        let session = Arc::new(Mutex::new(session));
        sessions.insert(key, session.clone());
        lock(&self.stats).sessions_created += 1;
        (session, false)
    }

    fn detach(&self, session: &Arc<Mutex<Session>>, conn: u64) {
        let mut sessions = lock(&self.sessions);
        let mut s = lock(session);
        s.sockets.retain(|(id, _)| *id != conn);
        if !s.sockets.is_empty() {
            return;
        }
        if s.ttl.is_zero() {
            if sessions
                .get(&s.key)
                .is_some_and(|live| Arc::ptr_eq(live, session))
            {
                sessions.remove(&s.key);
                lock(&self.stats).ended_sessions.push(s.info(true));
            }
        } else {
            s.expires = Some(Instant::now() + s.ttl);
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(shared, tcp).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn serve(shared: Arc<Shared>, tcp: TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    match &shared.acceptor {
        Some(acceptor) => {
            let tls = acceptor.accept(tcp).await?;
            let has_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            serve_stream(shared.clone(), Box::new(tls), has_cert).await
        }
        None => serve_stream(shared.clone(), Box::new(tcp), false).await,
    }
}

/// Where a WebSocket URL points.
#[derive(Debug, Clone)]
struct Target {
    /// `None` for `/app/engineData` (Global only).
    app: Option<String>,
    identity: Option<String>,
    ttl: Option<Duration>,
}

enum Route {
    App(Target),
    CsrfToken,
    NotFound,
}

fn route(shared: &Shared, head: &RequestHead) -> Route {
    let mut segments = head.segments();
    if let Some(prefix) = &shared.virtual_proxy {
        if segments.first() != Some(prefix) {
            return Route::NotFound;
        }
        segments.remove(0);
    }
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["qps", "csrftoken"] | ["api", "v1", "csrf-token"] => Route::CsrfToken,
        ["app", rest @ ..] => {
            let (app, mut options) = match rest {
                [] => (None, rest),
                [id, more @ ..] if *id == "engineData" || id.starts_with("?transient") => {
                    (None, more)
                }
                [id, more @ ..] => (Some(id.to_string()), more),
            };
            let mut target = Target {
                app,
                identity: None,
                ttl: None,
            };
            while let [name, value, more @ ..] = options {
                match *name {
                    "identity" => target.identity = Some(value.to_string()),
                    "ttl" => match value.parse::<u64>() {
                        Ok(s) => target.ttl = Some(Duration::from_secs(s)),
                        Err(_) => return Route::NotFound,
                    },
                    _ => return Route::NotFound,
                }
                options = more;
            }
            if options.is_empty() {
                Route::App(target)
            } else {
                Route::NotFound
            }
        }
        _ => Route::NotFound,
    }
}

async fn serve_stream(
    shared: Arc<Shared>,
    mut stream: Box<dyn Io>,
    has_cert: bool,
) -> std::io::Result<()> {
    let (head, rest) = http::read_head(&mut stream).await?;
    let target = match route(&shared, &head) {
        Route::NotFound => {
            return http::respond(&mut stream, 404, &[], "no such path on this engine").await;
        }
        Route::CsrfToken if head.method != "GET" => {
            return http::respond(&mut stream, 405, &[], "the token endpoint answers GET").await;
        }
        Route::CsrfToken => return issue_proxy_session(&shared, &mut stream, &head).await,
        Route::App(target) => target,
    };
    if !head.is_websocket_upgrade() {
        return http::respond(
            &mut stream,
            400,
            &[],
            "this path expects a WebSocket upgrade",
        )
        .await;
    }
    let checked = auth::check_handshake(&shared.auth, &head, has_cert, |cookie| {
        lock(&shared.proxy_sessions).get(cookie).cloned()
    });
    let served_as = lock(&shared.served_as).clone();
    let user = match checked {
        Ok(user) => served_as.unwrap_or(user),
        Err(refusal) => {
            lock(&shared.stats).handshakes_refused += 1;
            tracing::debug!(status = refusal.status, "handshake refused");
            return http::respond(&mut stream, refusal.status, &[], &refusal.reason).await;
        }
    };
    http::accept_upgrade(&mut stream, &head).await?;
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let (session, attached) = shared.attach(&user, &target, id, tx.clone());
    tracing::debug!(connection = id, attached, "session connected");
    let control = shared.control.subscribe();
    let mut connection = Connection {
        id,
        shared: shared.clone(),
        ws,
        session: session.clone(),
        user,
        tx,
        rx,
        control,
        pending: HashMap::new(),
    };
    connection.run(attached).await;
    for (_, task) in connection.pending.drain() {
        task.abort();
    }
    shared.detach(&session, id);
    Ok(())
}

/// The token endpoint of session-cookie authentication: a session cookie and a CSRF token.
async fn issue_proxy_session(
    shared: &Shared,
    stream: &mut Box<dyn Io>,
    head: &RequestHead,
) -> std::io::Result<()> {
    let user = match auth::check_login(&shared.auth, head) {
        Ok(user) => user,
        Err(refusal) => return http::respond(stream, refusal.status, &[], &refusal.reason).await,
    };
    let Some(cookie) = shared.auth.session_cookie_name() else {
        return http::respond(stream, 404, &[], "no session cookies here").await;
    };
    let session_id = random_id();
    let token = random_id();
    let session = ProxySession {
        user,
        csrf_token: token.clone(),
    };
    lock(&shared.proxy_sessions).insert(session_id.clone(), session);
    let set_cookie = format!("{cookie}={session_id}; Path=/; HttpOnly; SameSite=None; Secure");
    let headers = [("Set-Cookie", set_cookie), ("qlik-csrf-token", token)];
    http::respond(stream, 200, &headers, "").await
}

enum Flow {
    Continue,
    Stop,
}

struct Connection {
    id: u64,
    shared: Arc<Shared>,
    ws: Socket,
    session: Arc<Mutex<Session>>,
    user: User,
    tx: mpsc::UnboundedSender<Outgoing>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    control: broadcast::Receiver<Control>,
    pending: HashMap<String, JoinHandle<()>>,
}

impl Connection {
    fn drops_while_selected(&self) -> bool {
        let selections = lock(&self.session)
            .doc
            .as_ref()
            .map(|doc| doc.selected_texts())
            .unwrap_or_default();
        lock(&self.shared.faults).drops_while(&selections)
    }

    async fn run(&mut self, attached: bool) {
        if self.shared.auth.is_proxy() {
            let params = json!({"userId": self.user.id, "userDirectory": self.user.directory, "mustAuthenticate": false});
            if self
                .send(rpc::notification("OnAuthenticationInformation", &params))
                .await
                .is_err()
            {
                return;
            }
        }
        let state = if attached {
            "SESSION_ATTACHED"
        } else {
            "SESSION_CREATED"
        };
        let params = json!({"qSessionState": state});
        if self
            .send(rpc::notification("OnConnected", &params))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                message = self.ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Flow::Stop = self.on_request(text.as_str()).await {
                            return;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        self.shared.violation("", None, "a binary frame; the protocol uses text frames", "");
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                outgoing = self.rx.recv() => {
                    let Some(Outgoing::Text(frame)) = outgoing else { return };
                    if self.send(frame).await.is_err() {
                        return;
                    }
                }
                control = self.control.recv() => match control {
                    Ok(Control::Close { code, reason }) => {
                        self.close(code, &reason).await;
                        return;
                    }
                    Ok(Control::TimeOut) => {
                        let params = json!({"severity": "fatal", "timestamp": iso_timestamp(SystemTime::now())});
                        let _ = self.send(rpc::notification("OnSessionTimedOut", &params)).await;
                        self.close(4001, "Session timed out").await;
                        return;
                    }
                    Ok(Control::Shutdown) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                },
            }
        }
    }

    async fn send(&mut self, frame: String) -> std::result::Result<(), ()> {
        self.ws.send(Message::text(frame)).await.map_err(|_| ())
    }

    async fn close(&mut self, code: u16, reason: &str) {
        if code == 1006 {
            return;
        }
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    async fn send_error(&mut self, id: &Json, mut error: RpcError) {
        if error.message.is_empty() {
            error.message = self.shared.schema.error_message(error.code).to_string();
        }
        let _ = self.send(rpc::error(id, &error)).await;
    }

    async fn on_request(&mut self, text: &str) -> Flow {
        let Ok(request) = serde_json::from_str::<Json>(text) else {
            self.shared
                .violation("", None, "the frame is not JSON", text);
            self.send_error(&Json::Null, RpcError::new(codes::JSON_RPC_PARSE_ERROR, ""))
                .await;
            return Flow::Continue;
        };
        let id = request.get("id").cloned().unwrap_or(Json::Null);
        let method = request["method"].as_str().unwrap_or("").to_string();
        let handle = request["handle"].as_i64();
        let problem = if request["jsonrpc"] != "2.0" {
            Some("jsonrpc must be \"2.0\"")
        } else if !(id.is_i64() || id.is_u64() || id.is_string()) {
            Some("the request has no id")
        } else if method.is_empty() {
            Some("the request has no method")
        } else if handle.is_none_or(|h| i32::try_from(h).is_err()) {
            Some("the request has no integer handle")
        } else if !matches!(request.get("delta"), None | Some(Json::Bool(_))) {
            Some("delta must be a boolean")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.shared.violation(&method, handle, problem, text);
            self.send_error(&id, RpcError::new(codes::JSON_RPC_INVALID_REQUEST, problem))
                .await;
            return Flow::Continue;
        }
        let handle = handle.unwrap_or(0) as i32;
        let kind = lock(&self.session).kind(handle).cloned();
        let class = match (&kind, handle) {
            (Some(kind), _) => kind.class(),
            (None, GLOBAL) => "Global",
            (None, _) => "?",
        };
        let name = format!("{class}.{method}");
        *lock(&self.shared.stats)
            .requests
            .entry(name.clone())
            .or_default() += 1;
        if class == "?" {
            self.shared.violation(
                &method,
                Some(handle.into()),
                format!("the handle {handle} is not open"),
                text,
            );
            self.send_error(
                &id,
                RpcError::new(codes::JSON_RPC_INVALID_PARAMETERS, "Invalid handle"),
            )
            .await;
            return Flow::Continue;
        }
        if !self.shared.schema.has_method(class, &method) {
            let reason = format!("{name} does not exist in the protocol");
            self.shared
                .violation(&name, Some(handle.into()), reason, text);
            self.send_error(&id, RpcError::new(codes::JSON_RPC_METHOD_NOT_FOUND, method))
                .await;
            return Flow::Continue;
        }
        let params = match self
            .shared
            .schema
            .check_params(class, &method, request.get("params"))
        {
            Ok(params) => params,
            Err(reason) => {
                self.shared
                    .violation(&name, Some(handle.into()), reason.clone(), text);
                self.send_error(
                    &id,
                    RpcError::new(codes::JSON_RPC_INVALID_PARAMETERS, reason),
                )
                .await;
                return Flow::Continue;
            }
        };
        if class == "Global"
            && matches!(
                method.as_str(),
                "CancelRequest" | "AbortRequest" | "AbortAll"
            )
        {
            self.cancel_pending(&method, params.first().cloned().flatten())
                .await;
        }
        self.answer(
            &id,
            class,
            &method,
            handle,
            kind,
            &params,
            request["delta"] == true,
        )
        .await
    }

    /// Answers held requests that a cancel names with error 15.
    async fn cancel_pending(&mut self, method: &str, request_id: Option<Json>) {
        let wanted: Vec<String> = match (method, request_id) {
            ("AbortAll", _) => self.pending.keys().cloned().collect(),
            (_, Some(id)) => vec![id.to_string()],
            _ => Vec::new(),
        };
        for key in wanted {
            let Some(task) = self.pending.remove(&key) else {
                continue;
            };
            if task.is_finished() {
                continue;
            }
            task.abort();
            let id: Json = serde_json::from_str(&key).unwrap_or(Json::Null);
            self.send_error(&id, RpcError::new(codes::GENERIC_ABORTED, "Failure"))
                .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &mut self,
        id: &Json,
        class: &str,
        method: &str,
        handle: i32,
        kind: Option<HandleKind>,
        params: &[Option<Json>],
        delta: bool,
    ) -> Flow {
        let triggers = lock(&self.shared.faults).triggers(class, method);
        let mut delay = Duration::ZERO;
        let mut drop_mid_frame = method == "GetHyperCubeData" && self.drops_while_selected();
        let mut empty_matrix = false;
        for trigger in triggers {
            match trigger {
                Trigger::Error(code) => {
                    let parameter = self.error_parameter(code);
                    self.send_error(id, RpcError::new(code, parameter)).await;
                    return Flow::Continue;
                }
                Trigger::Close(code) => {
                    self.close(code, "closed by an injected fault").await;
                    return Flow::Stop;
                }
                Trigger::Delay(by) => delay = delay.max(by),
                Trigger::DropMidFrame => drop_mid_frame = true,
                Trigger::EmptyMatrix => empty_matrix = true,
            }
        }

        let outcome = {
            let unique_id = random_id;
            let engine = Engine {
                apps: &self.shared.apps,
                version: self.shared.schema.version(),
                missing_objects_as_errors: self.shared.missing_objects_as_errors,
                reload_time: &self.shared.reload_time,
                unique_id: &unique_id,
            };
            let mut session = lock(&self.session);
            let mut outcome = methods::call(
                &engine,
                &mut session,
                handle,
                kind.as_ref(),
                method,
                &Params(params),
            );
            if let Ok(reply) = &outcome
                && !reply.change.is_empty()
            {
                session.push_to_others(self.id, &rpc::pushed_change(&reply.change));
            }
            if let Ok(reply) = &mut outcome
                && empty_matrix
            {
                empty_matrices(&mut reply.result);
            }
            outcome
        };
        let frame = match outcome {
            Ok(reply) => rpc::success(id, &reply, delta),
            Err(mut error) => {
                error.message = self.shared.schema.error_message(error.code).to_string();
                rpc::error(id, &error)
            }
        };

        if drop_mid_frame {
            self.write_half_frame(&frame).await;
            return Flow::Stop;
        }
        if delay.is_zero() {
            return match self.send(frame).await {
                Ok(()) => Flow::Continue,
                Err(()) => Flow::Stop,
            };
        }
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Outgoing::Text(frame));
        });
        self.pending.retain(|_, t| !t.is_finished());
        self.pending.insert(id.to_string(), task);
        Flow::Continue
    }

    fn error_parameter(&self, code: i32) -> String {
        match code {
            codes::APP_ALREADY_OPEN | codes::APP_NOT_FOUND => {
                let session = lock(&self.session);
                session
                    .doc
                    .as_ref()
                    .map(|d| d.app.id.clone())
                    .unwrap_or_else(|| session.key.app.clone())
            }
            _ => "Failure".to_string(),
        }
    }

    /// Writes the header and the first half of a text frame straight to the socket, so the
    /// client is left in the middle of a message when the connection drops.
    async fn write_half_frame(&mut self, frame: &str) {
        let payload = frame.as_bytes();
        let mut bytes = vec![0x81u8];
        match payload.len() {
            n if n < 126 => bytes.push(n as u8),
            n if n <= usize::from(u16::MAX) => {
                bytes.push(126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&payload[..payload.len() / 2]);
        let stream = self.ws.get_mut();
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
    }
}

/// 128 random bits as a GUID-shaped string.
fn random_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `YYYY-MM-DDThh:mm:ss.fffZ` in UTC.
fn iso_timestamp(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Empties the `qMatrix` of every data page in `result`, keeping each page's `qArea`.
fn empty_matrices(result: &mut Json) {
    for page in result["qDataPages"].as_array_mut().into_iter().flatten() {
        page["qMatrix"] = Json::Array(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(iso_timestamp(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn ids_look_like_guids() {
        let id = random_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, random_id());
    }
}
