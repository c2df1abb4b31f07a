//! The Box API (folders, uploads, chunked upload sessions) and its OAuth2 token endpoint.
//!
//! - `POST /oauth2/token`: client credentials with `box_subject_type`/`box_subject_id`, or a
//!   refresh token (each use hands out a new refresh token and retires the old one).
//! - `POST /2.0/folders`; `OPTIONS /2.0/files/content` (pre-flight name check);
//!   `DELETE /2.0/files/{id}`.
//! - `POST /api/2.0/files/content` and `/api/2.0/files/{id}/content`: `multipart/form-data`
//!   with `attributes` then `file`, checked against `Content-MD5` (the SHA-1 in hex).
//! - `POST /api/2.0/files/upload_sessions` (files of 20,000,000 bytes and more) and
//!   `/api/2.0/files/{id}/upload_sessions`; `PUT` parts of exactly `part_size` (except the
//!   last) with `Digest: sha=` and `Content-Range`; `GET .../parts`; `POST .../commit` with
//!   the parts and the whole file's digest; `DELETE` to abort.
//! - Errors: `{"type": "error", "status": ..., "code": ...}`; 409 `item_name_in_use` names
//!   the conflicting item in `context_info.conflicts`; 401 has an empty body.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::{
    Auth, Dropped, Faults, Plan, Reply, Request, Server, TokenDialect, damaged, multipart,
    token_string,
};
use crate::support::{secret_file, throwaway};
use mad_deliver::r#box::{BoxChannel, BoxOptions, BoxSubject};

/// The part size of every session.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// The smallest file a session accepts.
pub const MIN_SESSION_FILE: u64 = 20_000_000;

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: String,
    pub name: String,
    pub parent: String,
    pub bytes: Vec<u8>,
    pub versions: u32,
}

struct Session {
    folder: String,
    name: String,
    /// Set for a new version of an existing file.
    file_id: Option<String>,
    size: u64,
    parts: BTreeMap<u64, (Value, Vec<u8>)>,
}

pub struct BoxState {
    pub auth: Auth,
    pub subject: (String, String),
    pub faults: Faults,
    pub calls: Mutex<Vec<String>>,
    base: OnceLock<String>,
    folders: Mutex<HashMap<String, (String, String)>>,
    files: Mutex<BTreeMap<String, StoredFile>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Every part accepted: (offset, size).
    pub parts: Mutex<Vec<(u64, u64)>>,
}

pub struct BoxDouble {
    pub state: Arc<BoxState>,
    server: Server,
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha1_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(bytes))
}

impl BoxDouble {
    /// A double with the root folder `0` and the folder `root_folder` in it, taking client
    /// credentials for `subject` and, when given, a rotating refresh token.
    pub fn start(
        client_id: &str,
        client_secret: &str,
        subject: (&str, &str),
        refresh_token: Option<&str>,
        root_folder: &str,
    ) -> Self {
        let dialect = TokenDialect {
            invalid_client_status: 400,
            invalid_client_description: "The client credentials are invalid",
            invalid_grant_status: 400,
            invalid_grant_description: "Invalid refresh token",
            extra: json!({"restricted_to": [], "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}),
        };
        let mut folders = HashMap::new();
        folders.insert(
            root_folder.to_string(),
            ("Reports".to_string(), "0".to_string()),
        );
        let mut auth = Auth::new(client_id, client_secret, dialect);
        if let Some(token) = refresh_token {
            auth = auth.with_refresh_token(token);
            auth.rotate_refresh_token = true;
        }
        let state = Arc::new(BoxState {
            auth,
            subject: (subject.0.to_string(), subject.1.to_string()),
            faults: Faults::default(),
            calls: Mutex::new(Vec::new()),
            base: OnceLock::new(),
            folders: Mutex::new(folders),
            files: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(HashMap::new()),
            parts: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let server = Server::start(move |req| handle(handler_state.clone(), req));
        state.base.set(server.base.clone()).unwrap();
        BoxDouble { state, server }
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

    pub fn files(&self) -> Vec<StoredFile> {
        self.state.files.lock().unwrap().values().cloned().collect()
    }

    /// The file at `path` below the double's folders (`Reports/ann/r.pdf`).
    pub fn file(&self, path: &str) -> Option<StoredFile> {
        self.files().into_iter().find(|f| self.path_of(f) == path)
    }

    pub fn path_of(&self, file: &StoredFile) -> String {
        let folders = self.state.folders.lock().unwrap();
        let mut parts = vec![file.name.clone()];
        let mut at = file.parent.clone();
        while let Some((name, parent)) = folders.get(&at) {
            parts.push(name.clone());
            at = parent.clone();
        }
        parts.reverse();
        parts.join("/")
    }

    pub fn put_file(&self, folder: &str, name: &str, bytes: &[u8]) {
        store(&self.state, folder, name, None, bytes.to_vec());
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

    pub fn fault(&self, route: &str, fault: super::Fault) {
        self.state.faults.add(route, fault);
    }
}

fn box_error(status: u16, code: &str, message: &str, context: Option<Value>) -> Reply {
    let mut body = json!({
        "type": "error",
        "status": status,
        "code": code,
        "help_url": "http://developers.box.com/docs/#errors",
        "message": message,
        "request_id": token_string("req"),
    });
    if let Some(context) = context {
        body["context_info"] = context;
    }
    Reply::json(status, body)
}

fn file_json(file: &StoredFile) -> Value {
    json!({
        "type": "file",
        "id": file.id,
        "name": file.name,
        "size": file.bytes.len(),
        "sha1": sha1_hex(&file.bytes),
        "etag": file.versions.to_string(),
        "sequence_id": file.versions.to_string(),
        "parent": {"type": "folder", "id": file.parent},
        "file_version": {"type": "file_version", "id": format!("v{}", file.versions), "sha1": sha1_hex(&file.bytes)},
    })
}

fn name_in_use(file: &StoredFile) -> Reply {
    box_error(
        409,
        "item_name_in_use",
        "Item with the same name already exists",
        Some(
            json!({"conflicts": {"type": "file", "id": file.id, "sha1": sha1_hex(&file.bytes), "name": file.name, "etag": "0"}}),
        ),
    )
}

fn find(state: &BoxState, folder: &str, name: &str) -> Option<StoredFile> {
    state
        .files
        .lock()
        .unwrap()
        .values()
        .find(|f| f.parent == folder && f.name.to_lowercase() == name.to_lowercase())
        .cloned()
}

/// A new file, or a new version of `file_id`.
fn store(
    state: &BoxState,
    folder: &str,
    name: &str,
    file_id: Option<&str>,
    bytes: Vec<u8>,
) -> StoredFile {
    let mut files = state.files.lock().unwrap();
    if let Some(file) = file_id.and_then(|id| files.get_mut(id)) {
        file.bytes = bytes;
        file.versions += 1;
        return file.clone();
    }
    let file = StoredFile {
        id: format!("{}", 100_000 + files.len() as u64 * 7 + 3),
        name: name.to_string(),
        parent: folder.to_string(),
        bytes,
        versions: 1,
    };
    files.insert(file.id.clone(), file.clone());
    file
}

async fn handle(state: Arc<BoxState>, req: Request) -> Result<Reply, Dropped> {
    let segments: Vec<String> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(super::decode)
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.as_str().to_string();
    let route = match (method.as_str(), parts.as_slice()) {
        ("POST", ["oauth2", "token"]) => "token",
        ("POST", ["2.0", "folders"]) => "create_folder",
        ("OPTIONS", ["2.0", "files", "content"]) => "preflight",
        ("DELETE", ["2.0", "files", _]) => "delete",
        ("POST", ["api", "2.0", "files", "content"]) => "upload",
        ("POST", ["api", "2.0", "files", _, "content"]) => "upload_version",
        ("POST", ["api", "2.0", "files", "upload_sessions"]) => "create_session",
        ("POST", ["api", "2.0", "files", _, "upload_sessions"]) => "create_version_session",
        ("PUT", ["api", "2.0", "files", "upload_sessions", _]) => "part",
        ("GET", ["api", "2.0", "files", "upload_sessions", _, "parts"]) => "list_parts",
        ("POST", ["api", "2.0", "files", "upload_sessions", _, "commit"]) => "commit",
        ("DELETE", ["api", "2.0", "files", "upload_sessions", _]) => "abort",
        _ => return Ok(box_error(404, "not_found", "Not Found", None)),
    };
    let (drop_after, lose_answer, damage) = match super::plan(&state.faults, &state.calls, route) {
        Plan::Answer(reply) => return Ok(reply),
        Plan::Proceed {
            drop_after,
            lose_answer,
            damage,
        } => (drop_after, lose_answer, damage),
    };
    if route == "token" {
        let subject = state.subject.clone();
        return state
            .auth
            .token(req, move |form| {
                let grant = form.get("grant_type").map(String::as_str);
                let wrong_subject = form.get("box_subject_type") != Some(&subject.0)
                    || form.get("box_subject_id") != Some(&subject.1);
                (grant == Some("client_credentials") && wrong_subject).then(|| {
                    Reply::json(400, json!({"error": "invalid_grant", "error_description": "Grant credentials are invalid"}))
                })
            })
            .await;
    }
    if !state.auth.check(&req) {
        return Ok(Reply::empty(401).with_header(
            "www-authenticate",
            "Bearer realm=\"Service\", error=\"invalid_token\"",
        ));
    }

    let id = parts
        .get(parts.len().saturating_sub(1))
        .copied()
        .unwrap_or_default()
        .to_string();
    let session_id = parts.get(4).copied().unwrap_or_default().to_string();
    let file_id = parts.get(3).copied().unwrap_or_default().to_string();
    let headers = req.headers.clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body = req.body_or_drop(drop_after).await?.to_vec();
    let reply = match route {
        "create_folder" => create_folder(&state, &body),
        "preflight" => {
            let attrs: Value = serde_json::from_slice(&body).unwrap_or_default();
            let folder = attrs["parent"]["id"].as_str().unwrap_or_default();
            match find(&state, folder, attrs["name"].as_str().unwrap_or_default()) {
                Some(file) => name_in_use(&file),
                None => Reply::json(
                    200,
                    json!({"upload_url": format!("{}/api/2.0/files/content", state.base.get().unwrap()), "upload_token": null}),
                ),
            }
        }
        "delete" => match state.files.lock().unwrap().remove(&id) {
            Some(_) => Reply::empty(204),
            None => box_error(404, "not_found", "Not Found", None),
        },
        "upload" | "upload_version" => upload(
            &state,
            route,
            &file_id,
            header("content-type"),
            header("content-md5"),
            &body,
            damage,
        ),
        "create_session" | "create_version_session" => {
            create_session(&state, route, &file_id, &body)
        }
        "part" => part(&state, &id, header("digest"), header("content-range"), body),
        "list_parts" => match state.sessions.lock().unwrap().get(&session_id) {
            Some(s) => {
                let entries: Vec<Value> = s.parts.values().map(|(p, _)| p.clone()).collect();
                Reply::json(
                    200,
                    json!({"entries": entries, "limit": 1000, "offset": 0, "total_count": entries.len()}),
                )
            }
            None => box_error(404, "not_found", "Upload session not found", None),
        },
        "commit" => commit(&state, &session_id, header("digest"), &body, damage),
        "abort" => match state.sessions.lock().unwrap().remove(&id) {
            Some(_) => Reply::empty(204),
            None => box_error(404, "not_found", "Upload session not found", None),
        },
        _ => unreachable!(),
    };
    if lose_answer {
        return Err(Dropped);
    }
    Ok(reply)
}

fn create_folder(state: &BoxState, body: &[u8]) -> Reply {
    let attrs: Value = serde_json::from_slice(body).unwrap_or_default();
    let name = attrs["name"].as_str().unwrap_or_default().to_string();
    let parent = attrs["parent"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return box_error(400, "bad_request", "Invalid folder name", None);
    }
    let mut folders = state.folders.lock().unwrap();
    if parent != "0" && !folders.contains_key(&parent) {
        return box_error(404, "not_found", "Not Found", None);
    }
    if let Some((id, _)) = folders
        .iter()
        .find(|(_, (n, p))| *p == parent && n.to_lowercase() == name.to_lowercase())
    {
        return box_error(
            409,
            "item_name_in_use",
            "Item with the same name already exists",
            Some(
                json!({"conflicts": [{"type": "folder", "id": id, "sequence_id": "0", "etag": "0", "name": name}]}),
            ),
        );
    }
    let id = format!("{}", 500_000 + folders.len());
    folders.insert(id.clone(), (name.clone(), parent.clone()));
    Reply::json(
        201,
        json!({"type": "folder", "id": id, "name": name, "parent": {"type": "folder", "id": parent}}),
    )
}

fn upload(
    state: &BoxState,
    route: &str,
    file_id: &str,
    content_type: Option<String>,
    content_md5: Option<String>,
    body: &[u8],
    damage: bool,
) -> Reply {
    let Some(parts) = content_type
        .as_deref()
        .filter(|t| t.starts_with("multipart/form-data"))
        .and_then(|t| multipart(t, body))
    else {
        return box_error(
            400,
            "bad_request",
            "A multipart/form-data body is required",
            None,
        );
    };
    let name_of = |h: &HashMap<String, String>| {
        let disposition = h.get("content-disposition").cloned().unwrap_or_default();
        disposition
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
    };
    if parts.len() != 2
        || name_of(&parts[0].0).as_deref() != Some("attributes")
        || name_of(&parts[1].0).as_deref() != Some("file")
    {
        return box_error(
            400,
            "bad_request",
            "The attributes part must come before the file part",
            None,
        );
    }
    let attrs: Value = serde_json::from_slice(&parts[0].1).unwrap_or_default();
    let bytes = parts[1].1.clone();
    if content_md5.is_some_and(|d| d != sha1_hex(&bytes)) {
        return box_error(
            400,
            "bad_digest",
            "The specified Content-MD5 did not match what we received",
            None,
        );
    }
    if route == "upload_version" {
        let Some(existing) = state.files.lock().unwrap().get(file_id).cloned() else {
            return box_error(404, "not_found", "Not Found", None);
        };
        let file = store(
            state,
            &existing.parent,
            &existing.name,
            Some(file_id),
            damaged(bytes, damage),
        );
        return Reply::json(
            201,
            json!({"total_count": 1, "entries": [file_json(&file)]}),
        );
    }
    let name = attrs["name"].as_str().unwrap_or_default();
    let folder = attrs["parent"]["id"].as_str().unwrap_or_default();
    if name.is_empty() || name.contains(['/', '\\']) {
        return box_error(400, "bad_request", "Invalid file name", None);
    }
    if folder != "0" && !state.folders.lock().unwrap().contains_key(folder) {
        return box_error(404, "not_found", "Not Found", None);
    }
    if let Some(existing) = find(state, folder, name) {
        return name_in_use(&existing);
    }
    let file = store(state, folder, name, None, damaged(bytes, damage));
    Reply::json(
        201,
        json!({"total_count": 1, "entries": [file_json(&file)]}),
    )
}

fn create_session(state: &BoxState, route: &str, file_id: &str, body: &[u8]) -> Reply {
    let attrs: Value = serde_json::from_slice(body).unwrap_or_default();
    let size = attrs["file_size"].as_u64().unwrap_or(0);
    if size < MIN_SESSION_FILE {
        return box_error(
            400,
            "file_size_too_small",
            "File size is less than minimum allowed for this API: 20000000",
            None,
        );
    }
    let (folder, name, existing) = if route == "create_version_session" {
        let Some(file) = state.files.lock().unwrap().get(file_id).cloned() else {
            return box_error(404, "not_found", "Not Found", None);
        };
        (file.parent.clone(), file.name.clone(), Some(file.id))
    } else {
        let folder = attrs["folder_id"].as_str().unwrap_or_default().to_string();
        let name = attrs["file_name"].as_str().unwrap_or_default().to_string();
        if let Some(existing) = find(state, &folder, &name) {
            return name_in_use(&existing);
        }
        (folder, name, None)
    };
    let id = token_string("S").to_uppercase();
    let base = format!(
        "{}/api/2.0/files/upload_sessions/{id}",
        state.base.get().unwrap()
    );
    let total_parts = size.div_ceil(PART_SIZE);
    state.sessions.lock().unwrap().insert(
        id.clone(),
        Session {
            folder,
            name,
            file_id: existing,
            size,
            parts: BTreeMap::new(),
        },
    );
    Reply::json(
        201,
        json!({
            "id": id,
            "type": "upload_session",
            "session_expires_at": "2030-01-01T00:00:00Z",
            "part_size": PART_SIZE,
            "total_parts": total_parts,
            "num_parts_processed": 0,
            "session_endpoints": {
                "upload_part": base,
                "commit": format!("{base}/commit"),
                "abort": base,
                "list_parts": format!("{base}/parts"),
                "status": base,
                "log_event": format!("{base}/log"),
            }
        }),
    )
}

fn part(
    state: &BoxState,
    id: &str,
    digest: Option<String>,
    range: Option<String>,
    body: Vec<u8>,
) -> Reply {
    let mut sessions = state.sessions.lock().unwrap();
    let Some(session) = sessions.get_mut(id) else {
        return box_error(404, "not_found", "Upload session not found", None);
    };
    let Some((Some((first, last)), total)) = range.as_deref().and_then(super::content_range) else {
        return box_error(400, "bad_request", "Content-Range is required", None);
    };
    let size = last + 1 - first;
    let is_last = last + 1 == session.size;
    if total != session.size
        || first % PART_SIZE != 0
        || (size != PART_SIZE && !is_last)
        || body.len() as u64 != size
    {
        return box_error(
            416,
            "requested_range_not_satisfiable",
            "The part's range does not fit the session's part size",
            None,
        );
    }
    if digest.as_deref() != Some(&format!("sha={}", sha1_b64(&body))) {
        return box_error(
            412,
            "precondition_failed",
            "The Digest header does not match the part",
            None,
        );
    }
    if session.parts.contains_key(&first) {
        return box_error(
            416,
            "range_overlaps_existing_part",
            "Part overlaps with previously uploaded part",
            None,
        );
    }
    let part = json!({"part_id": token_string("P")[..10].to_uppercase(), "offset": first, "size": size, "sha1": sha1_hex(&body)});
    session.parts.insert(first, (part.clone(), body));
    state.parts.lock().unwrap().push((first, size));
    Reply::json(200, json!({"part": part}))
}

fn commit(state: &BoxState, id: &str, digest: Option<String>, body: &[u8], damage: bool) -> Reply {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut sessions = state.sessions.lock().unwrap();
    let Some(session) = sessions.get(id) else {
        return box_error(404, "not_found", "Upload session not found", None);
    };
    let listed: Vec<Value> = request["parts"].as_array().cloned().unwrap_or_default();
    let held: Vec<Value> = session.parts.values().map(|(p, _)| p.clone()).collect();
    if listed != held {
        return box_error(
            400,
            "bad_request",
            "The parts listed do not match the parts uploaded",
            None,
        );
    }
    let bytes: Vec<u8> = session
        .parts
        .values()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    if bytes.len() as u64 != session.size {
        return box_error(400, "bad_request", "Some parts are missing", None);
    }
    if digest.as_deref() != Some(&format!("sha={}", sha1_b64(&bytes))) {
        return box_error(
            412,
            "precondition_failed",
            "The Digest header does not match the file",
            None,
        );
    }
    let session = sessions.remove(id).unwrap();
    drop(sessions);
    if session.file_id.is_none()
        && let Some(existing) = find(state, &session.folder, &session.name)
    {
        return name_in_use(&existing);
    }
    let file = store(
        state,
        &session.folder,
        &session.name,
        session.file_id.as_deref(),
        damaged(bytes, damage),
    );
    Reply::json(
        201,
        json!({"total_count": 1, "entries": [file_json(&file)]}),
    )
}

pub const FOLDER: &str = "1000";
pub const ENTERPRISE: &str = "818181";
pub const CHUNKED_FROM: u64 = 20_000_000;

// ---- the fixture the tests share ------------------------------------------------------------

/// The double, the throwaway credentials it accepts, and a folder for their secret files.
pub struct Fixture {
    pub double: BoxDouble,
    pub client_id: String,
    pub secret: String,
    pub refresh: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn start() -> Self {
        let client_id = throwaway("client");
        let secret = throwaway("box-secret");
        let refresh = throwaway("box-refresh");
        Fixture {
            double: BoxDouble::start(
                &client_id,
                &secret,
                ("enterprise", ENTERPRISE),
                Some(&refresh),
                FOLDER,
            ),
            client_id,
            secret,
            refresh,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn urls(&self, options: BoxOptions) -> BoxOptions {
        let base = self.double.base();
        options
            .with_folder_id(FOLDER)
            .with_subfolder("{recipient.id}")
            .with_token_url(format!("{base}/oauth2/token"))
            .with_api_url(format!("{base}/2.0"))
            .with_upload_url(format!("{base}/api/2.0"))
            .with_chunked_from(CHUNKED_FROM)
            .with_timeout_secs(30)
    }

    pub fn options_with_secret(&self, secret: &str) -> BoxOptions {
        self.urls(BoxOptions::client_credentials(
            &self.client_id,
            secret_file(self.dir.path(), secret),
            BoxSubject::Enterprise,
            ENTERPRISE,
        ))
    }

    pub fn options(&self) -> BoxOptions {
        self.options_with_secret(&self.secret)
    }

    pub fn channel(&self, options: BoxOptions) -> Arc<BoxChannel> {
        Arc::new(BoxChannel::new(options).unwrap())
    }
}
