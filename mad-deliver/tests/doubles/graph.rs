//! Microsoft Graph (drive items) and the Microsoft identity platform token endpoint.
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials; a wrong secret gives 401
//!   `invalid_client` with an `AADSTS7000215` description.
//! - `PUT /v1.0/{drive}/root:/{path}:/content?@microsoft.graph.conflictBehavior=...`: 201 with
//!   the new drive item, 200 when replaced, 409 `nameAlreadyExists`.
//! - `POST /v1.0/{drive}/root:/{path}:/createUploadSession`: an `uploadUrl` carrying its own
//!   `tempauth`; `PUT` byte ranges to it (`Content-Range`, multiples of 320 KiB except the
//!   last) answered 202 with `nextExpectedRanges` until the last, which commits; `GET` says
//!   which ranges are missing; `DELETE` cancels.
//! - `GET /v1.0/{drive}/root:/{path}`: the item or 404 `itemNotFound`;
//!   `DELETE /v1.0/{drive}/items/{id}`: 204.
//! - `{drive}` is `drives/{id}`, `sites/{id}/drive`, `groups/{id}/drive` or `users/{id}/drive`.
//! - A missing or unknown bearer token gives 401 `InvalidAuthenticationToken`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use super::{
    Auth, Dropped, Fault, Faults, Plan, Reply, Request, Server, TokenDialect, content_range,
    decode, token_string,
};
use crate::support::{secret_file, throwaway};
use mad_deliver::graph::{GraphChannel, GraphOptions};

/// Fragments must be multiples of this, except the last.
pub const FRAGMENT_UNIT: u64 = 320 * 1024;

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: String,
    /// The path in the drive, as first written (`Reports/ann/x.pdf`).
    pub path: String,
    pub bytes: Vec<u8>,
}

struct Session {
    path: Vec<String>,
    behavior: String,
    tempauth: String,
    total: Option<u64>,
    received: Vec<u8>,
}

pub struct GraphState {
    pub auth: Auth,
    pub tenant: String,
    pub drive_id: String,
    pub faults: Faults,
    base: OnceLock<String>,
    /// Keyed by the lower-case path (Graph compares names without case).
    files: Mutex<BTreeMap<String, StoredFile>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The size of every fragment accepted, in order.
    pub fragments: Mutex<Vec<u64>>,
    /// Every route called, in order (`token`, `content`, `create_session`, `fragment`, ...).
    pub calls: Mutex<Vec<String>>,
}

pub struct GraphDouble {
    pub state: Arc<GraphState>,
    server: Server,
}

impl GraphDouble {
    pub fn start(tenant: &str, drive_id: &str, client_id: &str, client_secret: &str) -> Self {
        let dialect = TokenDialect {
            invalid_client_status: 401,
            invalid_client_description: "AADSTS7000215: Invalid client secret provided. Ensure \
                 the secret being sent in the request is the client secret value, not the \
                 client secret ID.",
            invalid_grant_status: 400,
            invalid_grant_description: "AADSTS70000: The provided grant is invalid or malformed.",
            extra: json!({"ext_expires_in": 3600}),
        };
        let state = Arc::new(GraphState {
            auth: Auth::new(client_id, client_secret, dialect),
            tenant: tenant.to_string(),
            drive_id: drive_id.to_string(),
            faults: Faults::default(),
            base: OnceLock::new(),
            files: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(HashMap::new()),
            fragments: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let server = Server::start(move |req| handle(handler_state.clone(), req));
        state.base.set(server.base.clone()).unwrap();
        GraphDouble { state, server }
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

    pub fn api_url(&self) -> String {
        format!("{}/v1.0", self.server.base)
    }

    /// Every file, by lower-case path.
    pub fn files(&self) -> Vec<StoredFile> {
        self.state.files.lock().unwrap().values().cloned().collect()
    }

    pub fn file(&self, path: &str) -> Option<StoredFile> {
        self.state
            .files
            .lock()
            .unwrap()
            .get(&path.to_lowercase())
            .cloned()
    }

    /// Puts a file in place, as if someone else had uploaded it.
    pub fn put_file(&self, path: &str, bytes: &[u8]) {
        let parts: Vec<String> = path.split('/').map(str::to_string).collect();
        commit(&self.state, &parts, bytes.to_vec(), "replace").unwrap();
    }

    pub fn open_sessions(&self) -> usize {
        self.state.sessions.lock().unwrap().len()
    }

    pub fn calls(&self, route: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == route)
            .count()
    }

    /// The `tempauth` values of every session ever handed out.
    pub fn fault(&self, route: &str, fault: Fault) {
        self.state.faults.add(route, fault);
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-01-31T06:00:00", "request-id": token_string("req"), "client-request-id": token_string("creq")}
        }}),
    )
}

fn plan(state: &GraphState, route: &str) -> Plan {
    super::plan(&state.faults, &state.calls, route)
}

async fn handle(state: Arc<GraphState>, req: Request) -> Result<Reply, Dropped> {
    let path = req.path.clone();
    if req.method == "POST" && path == format!("/{}/oauth2/v2.0/token", state.tenant) {
        if let Plan::Answer(reply) = plan(&state, "token") {
            return Ok(reply);
        }
        return state
            .auth
            .token(req, |form| {
                (form.get("scope").map(String::as_str) != Some("https://graph.microsoft.com/.default"))
                    .then(|| Reply::json(400, json!({"error": "invalid_scope", "error_description": "AADSTS70011: The provided value for the input parameter 'scope' is not valid."})))
            })
            .await;
    }
    if path.ends_with("/oauth2/v2.0/token") {
        return Ok(Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
        ));
    }
    if let Some(id) = path.strip_prefix("/upload/") {
        return session_request(state, id.to_string(), req).await;
    }
    let Some(rest) = path.strip_prefix("/v1.0/") else {
        return Ok(graph_error(
            404,
            "BadRequest",
            "Resource not found for the segment.",
        ));
    };
    if !state.auth.check(&req) {
        return Ok(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        ));
    }
    let segments: Vec<String> = rest.split('/').map(decode).collect();
    api_request(state, segments, req).await
}

async fn api_request(
    state: Arc<GraphState>,
    segments: Vec<String>,
    req: Request,
) -> Result<Reply, Dropped> {
    let (drive_id, rest) = match segments.first().map(String::as_str) {
        Some("drives") if segments.len() > 2 => (segments[1].clone(), &segments[2..]),
        Some("sites" | "groups" | "users") if segments.len() > 3 && segments[2] == "drive" => {
            (segments[1].clone(), &segments[3..])
        }
        _ => return Ok(graph_error(400, "invalidRequest", "Invalid request")),
    };
    if drive_id != state.drive_id {
        return Ok(graph_error(
            404,
            "itemNotFound",
            "The resource could not be found.",
        ));
    }

    if rest.len() == 2 && rest[0] == "items" && req.method == "DELETE" {
        if let Plan::Answer(reply) = plan(&state, "delete") {
            return Ok(reply);
        }
        let mut files = state.files.lock().unwrap();
        let key = files
            .iter()
            .find(|(_, f)| f.id == rest[1])
            .map(|(k, _)| k.clone());
        return Ok(match key {
            Some(key) => {
                files.remove(&key);
                Reply::empty(204)
            }
            None => graph_error(404, "itemNotFound", "The resource could not be found."),
        });
    }
    if rest.first().map(String::as_str) != Some("root:") || rest.len() < 2 {
        return Ok(graph_error(400, "invalidRequest", "Invalid request"));
    }

    let mut path: Vec<String> = rest[1..].to_vec();
    let action = match path.last().map(String::as_str) {
        Some("content" | "createUploadSession")
            if path.len() >= 2 && path[path.len() - 2].ends_with(':') =>
        {
            let action = path.pop();
            if let Some(last) = path.last_mut() {
                last.pop();
            }
            action
        }
        _ => None,
    };
    if path
        .iter()
        .any(|p| p.is_empty() || p == ".." || p.contains(['/', '\\']))
    {
        return Ok(graph_error(400, "invalidRequest", "The path is not valid."));
    }

    match (req.method.as_str(), action.as_deref()) {
        ("PUT", Some("content")) => {
            let (drop_after, lose_answer) = match plan(&state, "content") {
                Plan::Answer(reply) => return Ok(reply),
                Plan::Proceed {
                    drop_after,
                    lose_answer,
                    ..
                } => (drop_after, lose_answer),
            };
            let behavior = req
                .query
                .get("@microsoft.graph.conflictBehavior")
                .cloned()
                .unwrap_or_else(|| "replace".to_string());
            let body = req.body_or_drop(drop_after).await?;
            let reply = match commit(&state, &path, body.to_vec(), &behavior) {
                Ok(reply) => reply,
                Err(reply) => reply,
            };
            if lose_answer {
                return Err(Dropped);
            }
            Ok(reply)
        }
        ("POST", Some("createUploadSession")) => {
            if let Plan::Answer(reply) = plan(&state, "create_session") {
                return Ok(reply);
            }
            let body = req.body().await?;
            let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let behavior = body["item"]["@microsoft.graph.conflictBehavior"]
                .as_str()
                .unwrap_or("fail")
                .to_string();
            if behavior == "fail" && find(&state, &path).is_some() {
                return Ok(graph_error(
                    409,
                    "nameAlreadyExists",
                    "The specified item name already exists.",
                ));
            }
            let id = token_string("session");
            let tempauth = token_string("tempauth");
            let upload_url = format!(
                "{}/upload/{id}?tempauth={tempauth}",
                state.base.get().unwrap()
            );
            state.sessions.lock().unwrap().insert(
                id,
                Session {
                    path,
                    behavior,
                    tempauth,
                    total: None,
                    received: Vec::new(),
                },
            );
            Ok(Reply::json(
                200,
                json!({"uploadUrl": upload_url, "expirationDateTime": "2030-01-01T00:00:00Z", "nextExpectedRanges": ["0-"]}),
            ))
        }
        ("GET", None) => {
            if let Plan::Answer(reply) = plan(&state, "metadata") {
                return Ok(reply);
            }
            Ok(match find(&state, &path) {
                Some(file) => Reply::json(200, item_json(&state, &file)),
                None => graph_error(404, "itemNotFound", "The resource could not be found."),
            })
        }
        _ => Ok(graph_error(
            405,
            "invalidRequest",
            "The method is not allowed here.",
        )),
    }
}

async fn session_request(
    state: Arc<GraphState>,
    id: String,
    req: Request,
) -> Result<Reply, Dropped> {
    if req.header("authorization").is_some() {
        return Ok(graph_error(
            401,
            "unauthenticated",
            "An upload URL carries its own authorization; an Authorization header is not accepted.",
        ));
    }
    {
        let sessions = state.sessions.lock().unwrap();
        match sessions.get(&id) {
            None => {
                return Ok(graph_error(
                    404,
                    "itemNotFound",
                    "The upload session was not found.",
                ));
            }
            Some(s) if req.query.get("tempauth") != Some(&s.tempauth) => {
                return Ok(graph_error(
                    401,
                    "unauthenticated",
                    "The tempauth token is not valid.",
                ));
            }
            Some(_) => {}
        }
    }

    match req.method.as_str() {
        "GET" => {
            if let Plan::Answer(reply) = plan(&state, "session_status") {
                return Ok(reply);
            }
            let sessions = state.sessions.lock().unwrap();
            let received = sessions.get(&id).map_or(0, |s| s.received.len());
            Ok(Reply::json(
                200,
                json!({"expirationDateTime": "2030-01-01T00:00:00Z", "nextExpectedRanges": [format!("{received}-")]}),
            ))
        }
        "DELETE" => {
            plan(&state, "cancel_session");
            state.sessions.lock().unwrap().remove(&id);
            Ok(Reply::empty(204))
        }
        "PUT" => fragment(state, id, req).await,
        _ => Ok(graph_error(
            405,
            "invalidRequest",
            "The method is not allowed here.",
        )),
    }
}

async fn fragment(state: Arc<GraphState>, id: String, req: Request) -> Result<Reply, Dropped> {
    let (drop_after, lose_answer) = match plan(&state, "fragment") {
        // The fragment is read before the refusal, as a server does that answers a whole
        // request, so the client sees the answer rather than a connection reset mid-body.
        Plan::Answer(reply) => return req.body().await.map(|_| reply),
        Plan::Proceed {
            drop_after,
            lose_answer,
            ..
        } => (drop_after, lose_answer),
    };
    let Some((Some((first, last)), total)) = req.header("content-range").and_then(content_range)
    else {
        return Ok(graph_error(
            400,
            "invalidRequest",
            "A Content-Range header is required.",
        ));
    };
    let length = last + 1 - first;
    let declared: Option<u64> = req.header("content-length").and_then(|v| v.parse().ok());
    {
        let sessions = state.sessions.lock().unwrap();
        let session = &sessions[&id];
        if first != session.received.len() as u64 {
            return Ok(graph_error(
                416,
                "invalidRange",
                "The uploaded fragment overlaps with data that has already been received.",
            ));
        }
        if session.total.is_some_and(|t| t != total) || last >= total {
            return Ok(graph_error(
                400,
                "invalidRequest",
                "The Content-Range total changed.",
            ));
        }
    }
    if declared != Some(length) {
        return Ok(graph_error(
            400,
            "invalidRequest",
            "Content-Length does not match Content-Range.",
        ));
    }
    if last + 1 != total && length % FRAGMENT_UNIT != 0 {
        return Ok(graph_error(
            400,
            "invalidRequest",
            "Fragments must be a multiple of 320 KiB, except the last.",
        ));
    }
    let body = req.body_or_drop(drop_after).await?;
    if body.len() as u64 != length {
        return Ok(graph_error(
            400,
            "invalidRequest",
            "The fragment is shorter than its range.",
        ));
    }

    let finished = {
        let mut sessions = state.sessions.lock().unwrap();
        let session = sessions.get_mut(&id).unwrap();
        session.total = Some(total);
        session.received.extend_from_slice(&body);
        state.fragments.lock().unwrap().push(length);
        if session.received.len() as u64 == total {
            sessions.remove(&id)
        } else {
            None
        }
    };
    let reply = match finished {
        Some(session) => match commit(&state, &session.path, session.received, &session.behavior) {
            Ok(reply) | Err(reply) => reply,
        },
        None => Reply::json(
            202,
            json!({"expirationDateTime": "2030-01-01T00:00:00Z", "nextExpectedRanges": [format!("{}-{}", last + 1, total - 1)]}),
        ),
    };
    if lose_answer {
        return Err(Dropped);
    }
    Ok(reply)
}

fn find(state: &GraphState, path: &[String]) -> Option<StoredFile> {
    state
        .files
        .lock()
        .unwrap()
        .get(&path.join("/").to_lowercase())
        .cloned()
}

fn item_json(state: &GraphState, file: &StoredFile) -> Value {
    let (parent, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
    json!({
        "id": file.id,
        "name": name,
        "size": file.bytes.len(),
        "webUrl": format!("{}/drive/{}", state.base.get().unwrap(), file.path),
        "file": {"mimeType": "application/octet-stream"},
        "parentReference": {"driveId": state.drive_id, "path": format!("/drive/root:/{parent}")},
        "createdDateTime": "2026-01-31T06:00:00Z",
    })
}

/// Puts a complete file in place following the conflict behaviour: the reply for the client,
/// or a 409 reply when the name is taken and `behavior` is `fail`.
fn commit(
    state: &GraphState,
    path: &[String],
    bytes: Vec<u8>,
    behavior: &str,
) -> Result<Reply, Reply> {
    let mut files = state.files.lock().unwrap();
    let mut path = path.to_vec();
    let key = |p: &[String]| p.join("/").to_lowercase();
    if let Some(existing) = files.get_mut(&key(&path)) {
        match behavior {
            "fail" => {
                return Err(graph_error(
                    409,
                    "nameAlreadyExists",
                    "The specified item name already exists.",
                ));
            }
            "replace" => {
                existing.bytes = bytes;
                let file = existing.clone();
                drop(files);
                return Ok(Reply::json(200, item_json(state, &file)));
            }
            _ => {
                let name = path.pop().unwrap();
                let (stem, ext) = name
                    .rsplit_once('.')
                    .map_or((name.as_str(), None), |(s, e)| (s, Some(e)));
                let mut n = 1;
                loop {
                    let candidate = match ext {
                        Some(ext) => format!("{stem} {n}.{ext}"),
                        None => format!("{stem} {n}"),
                    };
                    let mut p = path.clone();
                    p.push(candidate);
                    if !files.contains_key(&key(&p)) {
                        path = p;
                        break;
                    }
                    n += 1;
                }
            }
        }
    }
    let file = StoredFile {
        id: token_string("item"),
        path: path.join("/"),
        bytes,
    };
    files.insert(key(&path), file.clone());
    drop(files);
    Ok(Reply::json(201, item_json(state, &file)))
}

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const DRIVE: &str = "b!drive-0001";

// ---- the fixture the tests share ------------------------------------------------------------

/// The double, the throwaway credentials it accepts, and a folder for their secret files.
pub struct Fixture {
    pub double: GraphDouble,
    pub client_id: String,
    pub secret: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn start() -> Self {
        let client_id = throwaway("client");
        let secret = throwaway("graph-secret");
        Fixture {
            double: GraphDouble::start(TENANT, DRIVE, &client_id, &secret),
            client_id,
            secret,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn options_with_secret(&self, secret: &str) -> GraphOptions {
        GraphOptions::new(
            TENANT,
            &self.client_id,
            secret_file(self.dir.path(), secret),
        )
        .with_drive_id(DRIVE)
        .with_folder("Reports")
        .with_subfolder("{recipient.id}")
        .with_authority_url(self.double.base())
        .with_api_url(self.double.api_url())
        .with_timeout_secs(20)
    }

    pub fn options(&self) -> GraphOptions {
        self.options_with_secret(&self.secret)
    }

    pub fn channel(&self, options: GraphOptions) -> Arc<GraphChannel> {
        Arc::new(GraphChannel::new(options).unwrap())
    }
}
