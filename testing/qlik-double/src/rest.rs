//! A local stand-in for the Qlik Cloud REST endpoints a report scheduler uses: apps, items,
//! reloads and the Reports API, over HTTPS with API-key authentication, rate limits and
//! checked request shapes.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mad_core::{Error, Result, Secret};
use serde_json::{Value as Json, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::BACKEND;
use crate::http::{self, RequestHead};
use crate::tls::Pki;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// Builds a [`CloudDouble`].
#[derive(Debug)]
pub struct CloudDoubleBuilder {
    keys: Vec<Secret>,
    apps: Vec<(String, String)>,
    failing_reloads: Vec<String>,
    reload_steps: usize,
    report_steps: usize,
    report_rate: (usize, Duration),
    status_results: bool,
    report_outputs: bool,
    late_report: Duration,
}

impl CloudDoubleBuilder {
    /// Accepts `Authorization: Bearer <key>`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(Secret::new(key));
        self
    }

    /// An app with its id and name, listed as an item of type `app`.
    pub fn app(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.apps.push((id.into(), name.into()));
        self
    }

    /// Reloads of this app end `FAILED`.
    pub fn failing_reload(mut self, app_id: impl Into<String>) -> Self {
        self.failing_reloads.push(app_id.into());
        self
    }

    /// Status polls a reload stays `RELOADING` before it ends (default 2).
    pub fn reload_steps(mut self, polls: usize) -> Self {
        self.reload_steps = polls;
        self
    }

    /// Status polls a report stays `queued`/`processing` before it is `done` (default 2).
    pub fn report_steps(mut self, polls: usize) -> Self {
        self.report_steps = polls;
        self
    }

    /// A `done` report status has no `results` member (it is deprecated): the outputs are
    /// only listed by `GET /api/v1/reports/{id}/outputs`.
    pub fn without_status_results(mut self) -> Self {
        self.status_results = false;
        self
    }

    /// Reports end `done` with no outputs at all: no `results` and an empty outputs list.
    pub fn without_report_outputs(mut self) -> Self {
        self.status_results = false;
        self.report_outputs = false;
        self
    }

    /// Report requests accepted per window; more are answered 429 with `Retry-After`
    /// (default 10 per minute, the tenant's limit).
    pub fn report_rate(mut self, count: usize, window: Duration) -> Self {
        self.report_rate = (count, window);
        self
    }

    /// The first report request is held `delay` after it was sent before the tenant counts
    /// it, as a request slowed on its way in would be.
    pub fn late_first_report(mut self, delay: Duration) -> Self {
        self.late_report = delay;
        self
    }

    /// Listens on a free port of 127.0.0.1 with TLS and serves on the current runtime.
    pub async fn start(self) -> Result<CloudDouble> {
        let pki = Arc::new(Pki::generate()?);
        let acceptor = TlsAcceptor::from(pki.server_config(false)?);
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("listening on 127.0.0.1", e).with_backend(BACKEND))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e).with_backend(BACKEND))?;
        let shared = Arc::new(RestShared {
            base: format!("https://{addr}"),
            keys: self.keys,
            apps: self.apps,
            failing_reloads: self.failing_reloads,
            reload_steps: self.reload_steps,
            report_steps: self.report_steps,
            report_rate: self.report_rate,
            status_results: self.status_results,
            report_outputs: self.report_outputs,
            late_report: Mutex::new(Some(self.late_report).filter(|d| !d.is_zero())),
            state: Mutex::new(RestState::default()),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        Ok(CloudDouble {
            addr,
            pki,
            shared,
            task,
        })
    }
}

/// A running Qlik Cloud REST double on 127.0.0.1 (HTTPS). Dropping it stops it.
#[derive(Debug)]
pub struct CloudDouble {
    addr: SocketAddr,
    pki: Arc<Pki>,
    shared: Arc<RestShared>,
    task: JoinHandle<()>,
}

impl Drop for CloudDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CloudDouble {
    pub fn builder() -> CloudDoubleBuilder {
        CloudDoubleBuilder {
            keys: Vec::new(),
            apps: Vec::new(),
            failing_reloads: Vec::new(),
            reload_steps: 2,
            report_steps: 2,
            report_rate: (10, Duration::from_secs(60)),
            status_results: true,
            report_outputs: true,
            late_report: Duration::ZERO,
        }
    }

    /// The tenant URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.pki.ca_pem()
    }

    /// Answers the next `count` requests with 429 and `Retry-After: <seconds>`.
    pub fn rate_limit_next(&self, count: usize, retry_after_seconds: u64) {
        let mut state = lock(&self.shared.state);
        state.forced_429 = count;
        state.forced_retry_after = retry_after_seconds;
        state.retry_after_as_date = false;
    }

    /// Answers the next `count` requests with 429 and `Retry-After` as an HTTP date
    /// `retry_after_seconds` from now (whole seconds, so the wait may be up to one less).
    pub fn rate_limit_next_until(&self, count: usize, retry_after_seconds: u64) {
        let mut state = lock(&self.shared.state);
        state.forced_429 = count;
        state.forced_retry_after = retry_after_seconds;
        state.retry_after_as_date = true;
    }

    /// Requests received, as `METHOD /path` (without the query), in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.state).requests.clone()
    }

    /// Requests answered 429.
    pub fn rate_limited(&self) -> usize {
        lock(&self.shared.state).rate_limited
    }

    /// Report request bodies accepted, in order.
    pub fn reports(&self) -> Vec<Json> {
        lock(&self.shared.state)
            .reports
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// Requests whose shape the API does not describe (unknown members, missing ones,
    /// wrong types); each was answered 400.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared.state).violations.clone()
    }
}

#[derive(Debug)]
struct RestShared {
    base: String,
    keys: Vec<Secret>,
    apps: Vec<(String, String)>,
    failing_reloads: Vec<String>,
    reload_steps: usize,
    report_steps: usize,
    report_rate: (usize, Duration),
    status_results: bool,
    report_outputs: bool,
    late_report: Mutex<Option<Duration>>,
    state: Mutex<RestState>,
}

#[derive(Debug, Default)]
struct RestState {
    requests: Vec<String>,
    violations: Vec<String>,
    forced_429: usize,
    forced_retry_after: u64,
    retry_after_as_date: bool,
    rate_limited: usize,
    reloads: BTreeMap<String, (String, usize)>,
    reports: Vec<Report>,
    report_times: VecDeque<Instant>,
    next_id: u64,
}

#[derive(Debug)]
struct Report {
    id: String,
    body: Json,
    polls: usize,
}

/// An answer: status, extra headers, content type and body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, body: Json) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    fn error(status: u16, title: &str, detail: &str) -> Self {
        Answer::json(
            status,
            json!({"errors": [{"code": format!("HTTP-{status}"), "title": title, "detail": detail}], "traceId": "0"}),
        )
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<RestShared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(acceptor, tcp, shared).await {
                tracing::debug!(error = %e, "REST connection ended with an error");
            }
        });
    }
}

async fn serve(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    shared: Arc<RestShared>,
) -> std::io::Result<()> {
    let mut stream = acceptor.accept(tcp).await?;
    let (head, rest) = http::read_head(&mut stream).await?;
    let body = http::read_body(&mut stream, &head, rest, MAX_BODY).await?;
    if head.method == "POST" && head.segments() == ["api", "v1", "reports"] {
        let late = lock(&shared.late_report).take();
        if let Some(delay) = late {
            tokio::time::sleep(delay).await;
        }
    }
    let answer = route(&shared, &head, &body);
    let headers: Vec<(&str, String)> = answer
        .headers
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    http::respond_with(
        &mut stream,
        answer.status,
        answer.content_type,
        &headers,
        &answer.body,
    )
    .await
}

fn route(shared: &RestShared, head: &RequestHead, body: &[u8]) -> Answer {
    let mut state = lock(&shared.state);
    state
        .requests
        .push(format!("{} {}", head.method, head.path));
    let authorized = head
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|key| shared.keys.iter().any(|k| k.expose() == key.trim()));
    if !authorized {
        return Answer::error(
            401,
            "Unauthorized",
            "send a valid API key as Authorization: Bearer <key>",
        );
    }
    if state.forced_429 > 0 {
        state.forced_429 -= 1;
        state.rate_limited += 1;
        if state.retry_after_as_date {
            return too_many_until(state.forced_retry_after);
        }
        return too_many(state.forced_retry_after);
    }
    let segments = head.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (head.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v1", "apps", id]) => get_app(shared, id),
        ("GET", ["api", "v1", "items"]) => items(shared, head, &mut state),
        ("POST", ["api", "v1", "reloads"]) => start_reload(shared, body, &mut state),
        ("GET", ["api", "v1", "reloads", id]) => reload_status(shared, id, &mut state),
        ("POST", ["api", "v1", "reports"]) => create_report(shared, body, &mut state),
        ("GET", ["api", "v1", "reports", id, "status"]) => report_status(shared, id, &mut state),
        ("GET", ["api", "v1", "reports", id, "outputs"]) => report_outputs(shared, id, &state),
        ("GET", ["api", "v1", "temp-contents", id]) => temp_content(id, &state),
        _ => Answer::error(404, "Not Found", "no such endpoint on this tenant"),
    }
}

/// A 429 whose `Retry-After` is the HTTP date `seconds` from now.
fn too_many_until(seconds: u64) -> Answer {
    let mut answer = too_many(seconds);
    let until = std::time::SystemTime::now() + Duration::from_secs(seconds);
    answer.headers.retain(|(name, _)| *name != "Retry-After");
    answer
        .headers
        .push(("Retry-After", httpdate::fmt_http_date(until)));
    answer
}

fn too_many(seconds: u64) -> Answer {
    let mut answer = Answer::error(
        429,
        "API rate limit reached.",
        &format!("You need to wait {seconds} seconds until limit is lifted."),
    );
    answer.headers.push(("Retry-After", seconds.to_string()));
    answer
}

fn app_name<'a>(shared: &'a RestShared, id: &str) -> Option<&'a str> {
    shared
        .apps
        .iter()
        .find(|(a, _)| a == id)
        .map(|(_, n)| n.as_str())
}

fn get_app(shared: &RestShared, id: &str) -> Answer {
    let Some(name) = app_name(shared, id) else {
        return Answer::error(404, "Not Found", &format!("no app {id}"));
    };
    Answer::json(
        200,
        json!({
            "attributes": {
                "id": id, "name": name, "description": "", "createdDate": "2026-01-01T00:00:00.000Z",
                "modifiedDate": "2026-01-01T00:00:00.000Z", "lastReloadTime": "2026-01-01T00:00:00.000Z",
                "owner": "owner", "ownerId": "owner-id", "published": false,
                "hasSectionAccess": false, "isDirectQueryMode": false, "usage": "ANALYTICS"
            },
            "privileges": ["app:read", "app:reload"],
            "create": []
        }),
    )
}

fn items(shared: &RestShared, head: &RequestHead, state: &mut RestState) -> Answer {
    let known = [
        "resourceType",
        "name",
        "limit",
        "next",
        "spaceId",
        "sort",
        "query",
    ];
    if let Some((k, _)) = head
        .query
        .iter()
        .find(|(k, _)| !known.contains(&k.as_str()))
    {
        state
            .violations
            .push(format!("GET /api/v1/items: unknown query parameter {k}"));
        return Answer::error(400, "Bad Request", &format!("unknown parameter {k}"));
    }
    let limit: usize = match head.query_param("limit").map(str::parse) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => {
            state
                .violations
                .push("GET /api/v1/items: limit must be 1..100".into());
            return Answer::error(400, "Bad Request", "limit must be between 1 and 100");
        }
    };
    let kind = head.query_param("resourceType");
    let name = head.query_param("name");
    let matching: Vec<&(String, String)> = shared
        .apps
        .iter()
        .filter(|_| kind.is_none_or(|k| k == "app"))
        .filter(|(_, n)| name.is_none_or(|w| n == w))
        .collect();
    let start: usize = head
        .query_param("next")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let page: Vec<Json> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, name)| {
            json!({
                "id": format!("item-{id}"), "name": name, "resourceId": id, "resourceType": "app",
                "spaceId": "personal", "ownerId": "owner-id",
                "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
                "links": {"open": {"href": format!("{}/sense/app/{id}", shared.base)}}
            })
        })
        .collect();
    let mut links = json!({"self": {"href": format!("{}{}", shared.base, head.path)}});
    if start + limit < matching.len() {
        let mut query = format!("limit={limit}&next={}", start + limit);
        if let Some(kind) = kind {
            query.push_str(&format!("&resourceType={kind}"));
        }
        links["next"] = json!({"href": format!("{}/api/v1/items?{query}", shared.base)});
    }
    Answer::json(200, json!({"data": page, "links": links}))
}

fn parse_body(body: &[u8], what: &str, state: &mut RestState) -> Option<Json> {
    match serde_json::from_slice::<Json>(body) {
        Ok(json) if json.is_object() => Some(json),
        _ => {
            state
                .violations
                .push(format!("{what}: the body is not a JSON object"));
            None
        }
    }
}

fn next_id(state: &mut RestState, prefix: &str) -> String {
    state.next_id += 1;
    format!("{prefix}{:024x}", state.next_id)
}

fn start_reload(shared: &RestShared, body: &[u8], state: &mut RestState) -> Answer {
    let Some(body) = parse_body(body, "POST /api/v1/reloads", state) else {
        return Answer::error(400, "Bad Request", "the body must be a JSON object");
    };
    let problem = check_members(&body, &["appId", "partial", "variables", "weight"])
        .or_else(|| (!body["appId"].is_string()).then(|| "appId must be a string".to_string()))
        .or_else(|| {
            (!matches!(body.get("partial"), None | Some(Json::Bool(_))))
                .then(|| "partial must be a boolean".to_string())
        });
    if let Some(problem) = problem {
        state
            .violations
            .push(format!("POST /api/v1/reloads: {problem}"));
        return Answer::error(400, "Bad Request", &problem);
    }
    let app = body["appId"].as_str().unwrap_or("").to_string();
    if app_name(shared, &app).is_none() {
        return Answer::error(404, "Not Found", &format!("no app {app}"));
    }
    let id = next_id(state, "r");
    state.reloads.insert(id.clone(), (app.clone(), 0));
    Answer::json(201, reload_json(&id, &app, "QUEUED"))
}

fn reload_json(id: &str, app: &str, status: &str) -> Json {
    json!({
        "id": id, "appId": app, "tenantId": "tenant", "userId": "owner-id", "type": "hub",
        "status": status, "partial": false, "creationTime": "2026-01-01T00:00:00Z",
        "log": if status == "FAILED" { "The script failed." } else { "" }
    })
}

fn reload_status(shared: &RestShared, id: &str, state: &mut RestState) -> Answer {
    let Some((app, polls)) = state.reloads.get_mut(id) else {
        return Answer::error(404, "Not Found", &format!("no reload {id}"));
    };
    *polls += 1;
    let status = if *polls <= shared.reload_steps {
        "RELOADING"
    } else if shared.failing_reloads.contains(app) {
        "FAILED"
    } else {
        "SUCCEEDED"
    };
    Answer::json(200, reload_json(id, app, status))
}

/// The first member of `value` that `allowed` does not list.
fn check_members(value: &Json, allowed: &[&str]) -> Option<String> {
    value
        .as_object()?
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("unknown member {k}"))
}

/// Checks a report request against the shapes the Reports API publishes.
fn check_report(body: &Json) -> Result<(), String> {
    let kind = body["type"].as_str().ok_or("type must be a string")?;
    let (member, outputs): (&str, &[&str]) = match kind {
        "sense-image-1.0" => ("senseImageTemplate", &["image", "pdf", "pptx"]),
        "sense-sheet-1.0" => ("senseSheetTemplate", &["pdf", "pptx"]),
        "sense-data-1.0" => ("senseDataTemplate", &["xlsx"]),
        "sense-excel-template-1.0" => ("senseExcelTemplate", &["excel", "pdf"]),
        other => return Err(format!("unknown report type {other}")),
    };
    let allowed = [
        "type",
        "output",
        "definitions",
        "meta",
        "requestCallBackAction",
        member,
    ];
    if let Some(problem) = check_members(body, &allowed) {
        return Err(problem);
    }
    let template = &body[member];
    if !template["appId"].is_string() {
        return Err(format!("{member}.appId must be a string"));
    }
    match kind {
        "sense-data-1.0" if !template["id"].is_string() => {
            return Err("senseDataTemplate.id must name a visualization".into());
        }
        "sense-sheet-1.0" if !template["sheet"]["id"].is_string() => {
            return Err("senseSheetTemplate.sheet.id must be a string".into());
        }
        "sense-image-1.0" => {
            let viz = &template["visualization"];
            if !viz["id"].is_string()
                || !matches!(
                    viz["type"].as_str(),
                    Some("visualization" | "sessionobject")
                )
            {
                return Err("senseImageTemplate.visualization needs id and type visualization|sessionobject".into());
            }
        }
        _ => {}
    }
    if let Some(selections) = template.get("selectionsByState") {
        check_selections(selections)?;
    }
    if let Some(strategy) = template.get("selectionStrategy") {
        check_selection_strategy(member, strategy)?;
    }
    let output = &body["output"];
    let id = output["outputId"]
        .as_str()
        .ok_or("output.outputId must be a string")?;
    if id.is_empty() || id.contains([' ', ':']) {
        return Err("output.outputId must be non-empty, without spaces or colons".into());
    }
    let out_type = output["type"]
        .as_str()
        .ok_or("output.type must be a string")?;
    if !outputs.contains(&out_type) {
        return Err(format!("output.type {out_type} does not go with {kind}"));
    }
    if let Some(pdf) = output.get("pdfOutput") {
        let ok = pdf["size"].as_str().is_none_or(|s| {
            [
                "A4", "A3", "Letter", "Legal", "A5", "Tabloid", "A2", "A1", "A0",
            ]
            .contains(&s)
        }) && pdf["orientation"]
            .as_str()
            .is_none_or(|o| ["P", "L", "A"].contains(&o))
            && pdf["resizeType"]
                .as_str()
                .is_none_or(|r| ["none", "autofit", "fit"].contains(&r));
        if !ok {
            return Err(
                "output.pdfOutput has a size, orientation or resizeType the API does not know"
                    .into(),
            );
        }
    }
    Ok(())
}

/// `selectionStrategy` is one of the API's three, on a template that has it.
fn check_selection_strategy(member: &str, strategy: &Json) -> Result<(), String> {
    if member == "senseExcelTemplate" {
        return Err("senseExcelTemplate has no selectionStrategy".into());
    }
    match strategy.as_str() {
        Some("failOnErrors" | "ignoreErrorsReturnDetails" | "ignoreErrorsNoDetails") => Ok(()),
        _ => Err(format!(
            "{member}.selectionStrategy must be failOnErrors, ignoreErrorsReturnDetails or \
             ignoreErrorsNoDetails, not {strategy}"
        )),
    }
}

fn check_selections(selections: &Json) -> Result<(), String> {
    let states = selections
        .as_object()
        .ok_or("selectionsByState must be an object")?;
    if states.len() > 125 {
        return Err("selectionsByState has more than 125 states".into());
    }
    for fields in states.values() {
        let fields = fields
            .as_array()
            .ok_or("each state holds an array of field selections")?;
        if fields.len() > 125 {
            return Err("a state selects more than 125 fields".into());
        }
        for field in fields {
            if let Some(problem) =
                check_members(field, &["fieldName", "values", "defaultIsNumeric"])
            {
                return Err(format!("selection: {problem}"));
            }
            if !field["fieldName"].is_string() || !field["values"].is_array() {
                return Err("a selection needs fieldName and values".into());
            }
            for value in field["values"].as_array().into_iter().flatten() {
                if let Some(problem) = check_members(value, &["text", "isNumeric", "number"]) {
                    return Err(format!("selection value: {problem}"));
                }
                if !value["isNumeric"].is_boolean() {
                    return Err("a selection value needs isNumeric".into());
                }
                if value["isNumeric"] == true && !value["number"].is_number() {
                    return Err("a numeric selection value needs number".into());
                }
            }
        }
    }
    Ok(())
}

fn create_report(shared: &RestShared, body: &[u8], state: &mut RestState) -> Answer {
    let (limit, window) = shared.report_rate;
    let now = Instant::now();
    while state
        .report_times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        state.report_times.pop_front();
    }
    if state.report_times.len() >= limit {
        let wait = window.saturating_sub(now.duration_since(state.report_times[0]));
        state.rate_limited += 1;
        return too_many(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    let Some(body) = parse_body(body, "POST /api/v1/reports", state) else {
        return Answer::error(400, "Bad Request", "the body must be a JSON object");
    };
    if let Err(problem) = check_report(&body) {
        state
            .violations
            .push(format!("POST /api/v1/reports: {problem}"));
        return Answer::error(400, "Bad Request", &problem);
    }
    let template = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("Template")))
        .map(|(_, v)| v["appId"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    if app_name(shared, &template).is_none() {
        return Answer::error(404, "Not Found", &format!("no app {template}"));
    }
    state.report_times.push_back(now);
    let id = next_id(state, "rep");
    state.reports.push(Report {
        id: id.clone(),
        body,
        polls: 0,
    });
    let mut answer = Answer::json(
        202,
        json!({"requestId": id, "outputsUrl": format!("{}/api/v1/reports/{id}/outputs", shared.base), "message": ""}),
    );
    answer.headers.push((
        "Location",
        format!("{}/api/v1/reports/{id}/status", shared.base),
    ));
    answer
}

fn output_location(shared: &RestShared, report: &str) -> String {
    format!("{}/api/v1/temp-contents/{report}?inline=1", shared.base)
}

fn report_status(shared: &RestShared, id: &str, state: &mut RestState) -> Answer {
    let Some(report) = state.reports.iter_mut().find(|r| r.id == id) else {
        return Answer::error(404, "Not Found", &format!("no report {id}"));
    };
    report.polls += 1;
    let status = match report.polls {
        1 if shared.report_steps > 0 => "queued",
        n if n <= shared.report_steps => "processing",
        _ => "done",
    };
    let mut body = json!({
        "status": status, "resolutionAttempts": 0,
        "statusLocation": format!("{}/api/v1/reports/{id}/status", shared.base)
    });
    if status == "done" && shared.status_results {
        body["results"] = json!([{
            "outputId": report.body["output"]["outputId"],
            "location": output_location(shared, id),
            "outputType": report.body["output"]["type"]
        }]);
    }
    Answer::json(200, body)
}

fn report_outputs(shared: &RestShared, id: &str, state: &RestState) -> Answer {
    let Some(report) = state.reports.iter().find(|r| r.id == id) else {
        return Answer::error(404, "Not Found", &format!("no report {id}"));
    };
    if !shared.report_outputs {
        return Answer::json(200, json!({"data": [], "links": {}}));
    }
    let done = report.polls > shared.report_steps;
    let data = json!([{
        "outputId": report.body["output"]["outputId"],
        "status": if done { "done" } else { "processing" },
        "location": if done { output_location(shared, id) } else { String::new() },
        "sizeBytes": report_content(report).1.len()
    }]);
    Answer::json(200, json!({"data": data, "links": {}}))
}

/// The bytes the double serves for a report: a marker of the output type followed by the
/// request, so tests can check what was asked.
fn report_content(report: &Report) -> (&'static str, Vec<u8>) {
    let (content_type, magic) = match report.body["output"]["type"].as_str() {
        Some("pdf") => ("application/pdf", "%PDF-1.7\n"),
        Some("image") => ("image/png", "\u{89}PNG\r\n"),
        Some("xlsx" | "excel") => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "PK\u{3}\u{4}",
        ),
        _ => ("application/octet-stream", ""),
    };
    let mut bytes = magic.as_bytes().to_vec();
    bytes.extend_from_slice(report.body.to_string().as_bytes());
    (content_type, bytes)
}

fn temp_content(id: &str, state: &RestState) -> Answer {
    let Some(report) = state.reports.iter().find(|r| r.id == id) else {
        return Answer::error(
            410,
            "Gone",
            "the temporary content expired or never existed",
        );
    };
    let (content_type, body) = report_content(report);
    Answer {
        status: 200,
        headers: Vec::new(),
        content_type,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_shapes_are_checked() {
        let good = json!({
            "type": "sense-sheet-1.0",
            "senseSheetTemplate": {"appId": "a", "sheet": {"id": "s"}},
            "output": {"outputId": "out", "type": "pdf", "pdfOutput": {"size": "A4", "orientation": "A"}}
        });
        assert_eq!(check_report(&good), Ok(()));
        let mut bad = good.clone();
        bad["output"]["outputId"] = json!("has space");
        assert!(check_report(&bad).is_err());
        let mut bad = good.clone();
        bad["output"]["type"] = json!("xlsx");
        assert!(check_report(&bad).is_err());
        let mut bad = good.clone();
        bad["senseSheetTemplate"]["selectionsByState"] =
            json!({"$": [{"fieldName": "R", "values": [{"text": "x"}]}]});
        assert!(check_report(&bad).is_err());
        let mut strict = good.clone();
        strict["senseSheetTemplate"]["selectionStrategy"] = json!("failOnErrors");
        assert_eq!(check_report(&strict), Ok(()));
        let mut bad = good;
        bad["senseSheetTemplate"]["selectionStrategy"] = json!("failOnError");
        assert!(check_report(&bad).is_err());
    }
}
