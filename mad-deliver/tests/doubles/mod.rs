//! Local doubles of the cloud storage APIs, written from the providers' public API
//! references: the token endpoints, uploads, upload sessions and error bodies with their real
//! shapes. Each runs an HTTP/1.1 server on 127.0.0.1 (a free port) on its own thread, keeps
//! what was uploaded so tests compare bytes, and misbehaves on demand: a refused token, a 429
//! with `Retry-After`, a connection dropped in the middle of a request body, an answer lost
//! after the work was done.
#![allow(dead_code)] // each test file uses one double

pub mod r#box;
pub mod dropbox;
pub mod engine;
pub mod gdrive;
pub mod graph;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

/// A request as a double sees it; the body is read by the double, so it can stop half-way.
pub struct Request {
    pub method: Method,
    /// The path, still percent-encoded.
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    body: Incoming,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// The whole body.
    pub async fn body(self) -> Result<Bytes, Dropped> {
        self.body_or_drop(None).await
    }

    /// The body, or a dropped connection once `drop_after` bytes of it arrived.
    pub async fn body_or_drop(self, drop_after: Option<usize>) -> Result<Bytes, Dropped> {
        let mut body = self.body;
        let mut received = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Dropped)?;
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
            }
            if drop_after.is_some_and(|n| received.len() >= n) {
                return Err(Dropped);
            }
        }
        if drop_after.is_some() {
            return Err(Dropped);
        }
        Ok(Bytes::from(received))
    }
}

/// The double closes the connection without answering.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test double")
    }
}

impl std::error::Error for Dropped {}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Reply, Dropped>> + Send>>;
type Handler = Arc<dyn Fn(Request) -> BoxFuture + Send + Sync>;

/// An HTTP server on 127.0.0.1, stopped when dropped.
pub struct Server {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start<F, Fut>(handle: F) -> Server
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, Dropped>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handle(req)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (shutdown, stop) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || serve(listener, handler, stop));
        Server {
            base: format!("http://127.0.0.1:{port}"),
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    handler: Handler,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
                _ = &mut stop => return,
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    async move { answer(handler, req).await }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

async fn answer(
    handler: Handler,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        body,
    };
    let reply = handler(request).await?;
    let mut response = hyper::Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    Ok(response)
}

/// Percent-decodes one path segment.
pub fn decode(segment: &str) -> String {
    percent_decode(segment)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a double does wrong, once, for the next request to a route.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Close the connection after this many bytes of the request body, storing nothing.
    DropAfter(usize),
    /// Do the work, then close the connection without answering.
    LoseAnswer,
    /// Keep what arrived with its last byte changed and answer as if all went well (the
    /// checksum in the answer is of what was kept), as a store that damages files would.
    Damage,
    /// Behave, using up this place in the queue (to aim the next fault at a later request).
    Pass,
    /// Answer with this status, `Retry-After` (seconds) and JSON body, doing nothing.
    Refuse {
        status: u16,
        retry_after: Option<u64>,
        body: Value,
    },
}

/// Faults waiting for their route.
#[derive(Default)]
pub struct Faults {
    queue: Mutex<Vec<(String, Fault)>>,
}

impl Faults {
    pub fn add(&self, route: &str, fault: Fault) {
        self.queue.lock().unwrap().push((route.to_string(), fault));
    }

    /// The first fault waiting for `route`, removed.
    pub fn take(&self, route: &str) -> Option<Fault> {
        let mut queue = self.queue.lock().unwrap();
        let i = queue.iter().position(|(r, _)| r == route)?;
        Some(queue.remove(i).1)
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

/// The refusal reply of a `Fault::Refuse`.
pub fn refusal(status: u16, retry_after: Option<u64>, body: Value) -> Reply {
    let reply = Reply::json(status, body);
    match retry_after {
        Some(s) => reply.with_header("retry-after", s.to_string()),
        None => reply,
    }
}

/// How a provider's token endpoint words its refusals.
pub struct TokenDialect {
    /// The status of a refused client secret.
    pub invalid_client_status: u16,
    pub invalid_client_description: &'static str,
    /// The status of a refused refresh token.
    pub invalid_grant_status: u16,
    pub invalid_grant_description: &'static str,
    /// Extra fields of a token response.
    pub extra: Value,
}

/// The app credentials a double accepts and the access tokens it handed out.
pub struct Auth {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: Mutex<Option<String>>,
    /// Hand out a new refresh token with every refresh (as Box does).
    pub rotate_refresh_token: bool,
    issued: Mutex<HashSet<String>>,
    /// Token requests answered so far (refused ones included).
    pub token_requests: AtomicUsize,
    /// Refuse this many token requests as if the secret were wrong.
    pub refuse_next: AtomicUsize,
    /// Requests refused for a bad or expired access token.
    pub rejected_tokens: AtomicUsize,
    dialect: TokenDialect,
}

impl Auth {
    pub fn new(client_id: &str, client_secret: &str, dialect: TokenDialect) -> Self {
        Auth {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_token: Mutex::new(None),
            rotate_refresh_token: false,
            issued: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            refuse_next: AtomicUsize::new(0),
            rejected_tokens: AtomicUsize::new(0),
            dialect,
        }
    }

    pub fn with_refresh_token(self, token: &str) -> Self {
        *self.refresh_token.lock().unwrap() = Some(token.to_string());
        self
    }

    /// Forgets every access token handed out, as if they had expired.
    pub fn expire_tokens(&self) {
        self.issued.lock().unwrap().clear();
    }

    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().iter().cloned().collect()
    }

    /// Whether a request carries a valid access token; counts the ones that do not.
    pub fn check(&self, req: &Request) -> bool {
        let ok = req
            .bearer()
            .is_some_and(|t| self.issued.lock().unwrap().contains(t));
        if !ok {
            self.rejected_tokens.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }

    /// Answers a token request (`application/x-www-form-urlencoded`, RFC 6749).
    pub async fn token(
        &self,
        req: Request,
        extra_checks: impl Fn(&HashMap<String, String>) -> Option<Reply>,
    ) -> Result<Reply, Dropped> {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let body = req.body().await?;
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");

        let d = &self.dialect;
        let refuse = self
            .refuse_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse
            || field("client_id") != self.client_id
            || field("client_secret") != self.client_secret
        {
            return Ok(Reply::json(
                d.invalid_client_status,
                json!({"error": "invalid_client", "error_description": d.invalid_client_description}),
            ));
        }
        if let Some(reply) = extra_checks(&form) {
            return Ok(reply);
        }
        let mut refresh = None;
        match field("grant_type") {
            "client_credentials" => {}
            "refresh_token" => {
                let mut current = self.refresh_token.lock().unwrap();
                if current.as_deref() != Some(field("refresh_token"))
                    || field("refresh_token").is_empty()
                {
                    return Ok(Reply::json(
                        d.invalid_grant_status,
                        json!({"error": "invalid_grant", "error_description": d.invalid_grant_description}),
                    ));
                }
                if self.rotate_refresh_token {
                    let next = token_string("rt");
                    *current = Some(next.clone());
                    refresh = Some(next);
                }
            }
            other => {
                return Ok(Reply::json(
                    400,
                    json!({"error": "unsupported_grant_type", "error_description": format!("grant type {other} is not supported")}),
                ));
            }
        }

        let access = token_string("at");
        self.issued.lock().unwrap().insert(access.clone());
        let mut body = json!({"access_token": access, "expires_in": 3600, "token_type": "Bearer"});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, &d.extra) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
            if let Some(refresh) = refresh {
                body.insert("refresh_token".into(), Value::String(refresh));
            }
        }
        Ok(Reply::json(200, body))
    }
}

/// A random token string.
pub fn token_string(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(NEXT.fetch_add(1, Ordering::SeqCst));
    format!("{prefix}-{:016x}", h.finish())
}

/// One part of a multipart body: its headers (names in lower case) and content.
pub type Part = (HashMap<String, String>, Vec<u8>);

/// Splits a multipart body (`multipart/form-data` or `multipart/related`) into its parts.
pub fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, delimiter.as_bytes())?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let headers = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        rest = &rest[head_end + 4..];
        let end_marker = format!("\r\n{delimiter}");
        let end = find(rest, end_marker.as_bytes())?;
        parts.push((headers, rest[..end].to_vec()));
        rest = &rest[end + end_marker.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses `bytes FIRST-LAST/TOTAL` (or `bytes */TOTAL`).
pub fn content_range(value: &str) -> Option<(Option<(u64, u64)>, u64)> {
    let spec = value.strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        return Some((None, total));
    }
    let (first, last) = range.split_once('-')?;
    Some((Some((first.parse().ok()?, last.parse().ok()?)), total))
}

/// What a route's fault says to do: answer now, drop after some bytes, or lose the answer.
pub enum Plan {
    Answer(Reply),
    Proceed {
        drop_after: Option<usize>,
        lose_answer: bool,
        damage: bool,
    },
}

/// `bytes` with the last byte changed when `damage` says so (a `Fault::Damage`).
pub fn damaged(mut bytes: Vec<u8>, damage: bool) -> Vec<u8> {
    if damage {
        match bytes.last_mut() {
            Some(last) => *last ^= 0xff,
            None => bytes.push(0),
        }
    }
    bytes
}

/// Records a call to `route` and takes the fault waiting for it.
pub fn plan(faults: &Faults, calls: &Mutex<Vec<String>>, route: &str) -> Plan {
    calls.lock().unwrap().push(route.to_string());
    match faults.take(route) {
        Some(Fault::Refuse {
            status,
            retry_after,
            body,
        }) => Plan::Answer(refusal(status, retry_after, body)),
        Some(Fault::DropAfter(n)) => Plan::Proceed {
            drop_after: Some(n),
            lose_answer: false,
            damage: false,
        },
        Some(Fault::LoseAnswer) => Plan::Proceed {
            drop_after: None,
            lose_answer: true,
            damage: false,
        },
        Some(Fault::Damage) => Plan::Proceed {
            drop_after: None,
            lose_answer: false,
            damage: true,
        },
        Some(Fault::Pass) | None => Plan::Proceed {
            drop_after: None,
            lose_answer: false,
            damage: false,
        },
    }
}
