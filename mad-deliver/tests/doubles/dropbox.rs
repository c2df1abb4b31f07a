//! Dropbox API v2 and its OAuth2 token endpoint.
//!
//! - `POST /oauth2/token`: the refresh-token grant; a wrong app secret gives 400
//!   `invalid_client`, an unknown refresh token 400 `invalid_grant`.
//! - Content endpoints take their arguments as JSON in the `Dropbox-API-Arg` header (ASCII
//!   only; anything else is a 400 text answer) and the bytes as `application/octet-stream`:
//!   `POST /2/files/upload`, `/2/files/upload_session/start`, `/append_v2`, `/finish`.
//! - RPC endpoints take JSON bodies: `POST /2/files/get_metadata`, `/2/files/delete_v2`.
//! - Errors are 409 with `error_summary` and a tagged `error` (`path/conflict/file/..`,
//!   `incorrect_offset/..` with `correct_offset`, `path/not_found/..`); 401
//!   `expired_access_token`; 429 `too_many_requests` with `retry_after`.
//! - `content_hash` is SHA-256 over the SHA-256 of each 4 MiB block.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Auth, Dropped, Faults, Plan, Reply, Request, Server, TokenDialect, damaged, token_string,
};
use crate::support::{secret_file, throwaway};
use mad_deliver::dropbox::{DropboxChannel, DropboxOptions};

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: String,
    pub path_display: String,
    pub bytes: Vec<u8>,
}

pub struct DropboxState {
    pub auth: Auth,
    pub faults: Faults,
    pub calls: Mutex<Vec<String>>,
    /// By lower-case path.
    files: Mutex<BTreeMap<String, StoredFile>>,
    sessions: Mutex<HashMap<String, Vec<u8>>>,
    /// The size of every appended or finishing chunk, in order.
    pub chunks: Mutex<Vec<usize>>,
}

pub struct DropboxDouble {
    pub state: Arc<DropboxState>,
    server: Server,
}

/// The Dropbox content hash, written here apart from the channel's.
pub fn dropbox_hash(bytes: &[u8]) -> String {
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rest.len().min(4 * 1024 * 1024);
        blocks.extend_from_slice(&Sha256::digest(&rest[..n]));
        rest = &rest[n..];
    }
    hex(&Sha256::digest(&blocks))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DropboxDouble {
    pub fn start(app_key: &str, app_secret: &str, refresh_token: &str) -> Self {
        let dialect = TokenDialect {
            invalid_client_status: 400,
            invalid_client_description: "Invalid client_id or client_secret",
            invalid_grant_status: 400,
            invalid_grant_description: "refresh token is invalid or revoked",
            extra: json!({}),
        };
        let state = Arc::new(DropboxState {
            auth: Auth::new(app_key, app_secret, dialect).with_refresh_token(refresh_token),
            faults: Faults::default(),
            calls: Mutex::new(Vec::new()),
            files: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(HashMap::new()),
            chunks: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let server = Server::start(move |req| handle(handler_state.clone(), req));
        DropboxDouble { state, server }
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

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

    pub fn put_file(&self, path: &str, bytes: &[u8]) {
        commit(&self.state, path, "overwrite", false, bytes.to_vec()).unwrap();
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

fn api_error(summary: &str, error: Value) -> Reply {
    Reply::json(
        409,
        json!({"error_summary": format!("{summary}/.."), "error": error}),
    )
}

fn text(status: u16, message: &str) -> Reply {
    Reply {
        status: hyper::StatusCode::from_u16(status).unwrap(),
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: bytes::Bytes::from(message.to_string()),
    }
}

async fn handle(state: Arc<DropboxState>, req: Request) -> Result<Reply, Dropped> {
    let route = req.path.trim_start_matches('/').to_string();
    if req.method != "POST" {
        return Ok(text(405, "Method not allowed"));
    }
    let (drop_after, lose_answer, damage) = match super::plan(&state.faults, &state.calls, &route) {
        // The body is read before the refusal, as a server does that answers a whole
        // request, so the client sees the answer rather than a connection reset mid-body.
        Plan::Answer(reply) => return req.body().await.map(|_| reply),
        Plan::Proceed {
            drop_after,
            lose_answer,
            damage,
        } => (drop_after, lose_answer, damage),
    };
    if route == "oauth2/token" {
        return state.auth.token(req, |_| None).await;
    }
    if !state.auth.check(&req) {
        return Ok(Reply::json(
            401,
            json!({"error_summary": "expired_access_token/..", "error": {".tag": "expired_access_token"}}),
        ));
    }

    let reply = match route.as_str() {
        "2/files/upload"
        | "2/files/upload_session/start"
        | "2/files/upload_session/append_v2"
        | "2/files/upload_session/finish" => {
            let arg = match req.header("dropbox-api-arg") {
                Some(a) => serde_json::from_str::<Value>(a).ok(),
                None if req.headers.contains_key("dropbox-api-arg") => None,
                None => Some(Value::Null),
            };
            let Some(arg) = arg.filter(|a| a.is_object()) else {
                return Ok(text(
                    400,
                    &format!(
                        "Error in call to API function \"{route}\": Bad HTTP \"Dropbox-API-Arg\" header"
                    ),
                ));
            };
            if req.header("content-type") != Some("application/octet-stream") {
                return Ok(text(
                    400,
                    &format!(
                        "Error in call to API function \"{route}\": Bad HTTP \"Content-Type\" header"
                    ),
                ));
            }
            let body = req.body_or_drop(drop_after).await?.to_vec();
            content(&state, &route, &arg, damaged(body, damage))
        }
        "2/files/get_metadata" | "2/files/delete_v2" => {
            let body = req.body().await?;
            let Ok(arg) = serde_json::from_slice::<Value>(&body) else {
                return Ok(text(
                    400,
                    "Error in call to API function: request body could not be decoded as JSON",
                ));
            };
            let path = arg["path"].as_str().unwrap_or_default();
            let found = lookup(&state, path);
            match (route.as_str(), found) {
                ("2/files/get_metadata", Some(file)) => Reply::json(200, metadata(&file)),
                ("2/files/delete_v2", Some(file)) => {
                    state.files.lock().unwrap().retain(|_, f| f.id != file.id);
                    Reply::json(200, json!({"metadata": metadata(&file)}))
                }
                _ => api_error(
                    "path/not_found",
                    json!({".tag": "path", "path": {".tag": "not_found"}}),
                ),
            }
        }
        _ => text(404, "Unknown API function"),
    };
    if lose_answer {
        return Err(Dropped);
    }
    Ok(reply)
}

fn lookup(state: &DropboxState, path: &str) -> Option<StoredFile> {
    let files = state.files.lock().unwrap();
    match path.strip_prefix("id:") {
        Some(_) => files.values().find(|f| f.id == path).cloned(),
        None => files.get(&path.to_lowercase()).cloned(),
    }
}

fn content(state: &DropboxState, route: &str, arg: &Value, body: Vec<u8>) -> Reply {
    let commit_of = |c: &Value| {
        let path = c["path"].as_str().unwrap_or_default().to_string();
        let mode = c["mode"].as_str().unwrap_or("add").to_string();
        let autorename = c["autorename"].as_bool().unwrap_or(false);
        (path, mode, autorename)
    };
    match route {
        "2/files/upload" => {
            let (path, mode, autorename) = commit_of(arg);
            match commit(state, &path, &mode, autorename, body) {
                Ok(file) => Reply::json(200, metadata(&file)),
                Err(reply) => reply,
            }
        }
        "2/files/upload_session/start" => {
            let id = token_string("session");
            state.chunks.lock().unwrap().push(body.len());
            state.sessions.lock().unwrap().insert(id.clone(), body);
            Reply::json(200, json!({"session_id": id}))
        }
        _ => {
            let cursor = &arg["cursor"];
            let id = cursor["session_id"].as_str().unwrap_or_default();
            let offset = cursor["offset"].as_u64().unwrap_or(u64::MAX);
            let mut sessions = state.sessions.lock().unwrap();
            let Some(received) = sessions.get_mut(id) else {
                return api_error(
                    "lookup_failed/not_found",
                    json!({".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}),
                );
            };
            if offset != received.len() as u64 {
                return api_error(
                    "lookup_failed/incorrect_offset",
                    json!({".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": received.len()}}),
                );
            }
            state.chunks.lock().unwrap().push(body.len());
            received.extend_from_slice(&body);
            if route.ends_with("append_v2") {
                return Reply::json(200, Value::Null);
            }
            let bytes = sessions.remove(id).unwrap();
            drop(sessions);
            let (path, mode, autorename) = commit_of(&arg["commit"]);
            match commit(state, &path, &mode, autorename, bytes) {
                Ok(file) => Reply::json(200, metadata(&file)),
                Err(reply) => reply,
            }
        }
    }
}

fn metadata(file: &StoredFile) -> Value {
    let name = file.path_display.rsplit('/').next().unwrap_or_default();
    json!({
        ".tag": "file",
        "name": name,
        "id": file.id,
        "client_modified": "2026-01-31T06:00:00Z",
        "server_modified": "2026-01-31T06:00:00Z",
        "rev": "a1c10ce0dd78",
        "size": file.bytes.len(),
        "path_lower": file.path_display.to_lowercase(),
        "path_display": file.path_display,
        "is_downloadable": true,
        "content_hash": dropbox_hash(&file.bytes),
    })
}

fn commit(
    state: &DropboxState,
    path: &str,
    mode: &str,
    autorename: bool,
    bytes: Vec<u8>,
) -> Result<StoredFile, Reply> {
    let valid = path.starts_with('/')
        && path[1..]
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !valid {
        return Err(api_error(
            "path/malformed_path",
            json!({".tag": "path", "reason": {".tag": "malformed_path"}}),
        ));
    }
    let mut files = state.files.lock().unwrap();
    let mut path = path.to_string();
    if let Some(existing) = files.get_mut(&path.to_lowercase()) {
        if mode == "overwrite" {
            existing.bytes = bytes;
            return Ok(existing.clone());
        }
        if !autorename {
            return Err(api_error(
                "path/conflict/file",
                json!({".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "file"}}, "upload_session_id": ""}),
            ));
        }
        let (stem, ext) = match path.rsplit_once('.') {
            Some((s, e)) if !e.contains('/') => (s.to_string(), format!(".{e}")),
            _ => (path.clone(), String::new()),
        };
        let mut n = 1;
        while files.contains_key(&format!("{stem} ({n}){ext}").to_lowercase()) {
            n += 1;
        }
        path = format!("{stem} ({n}){ext}");
    }
    let file = StoredFile {
        id: format!("id:{}", token_string("f")),
        path_display: path.clone(),
        bytes,
    };
    files.insert(path.to_lowercase(), file.clone());
    Ok(file)
}

// ---- the fixture the tests share ------------------------------------------------------------

/// The double, the throwaway credentials it accepts, and a folder for their secret files.
pub struct Fixture {
    pub double: DropboxDouble,
    pub app_key: String,
    pub secret: String,
    pub refresh: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn start() -> Self {
        let app_key = throwaway("app");
        let secret = throwaway("dropbox-secret");
        let refresh = throwaway("dropbox-refresh");
        Fixture {
            double: DropboxDouble::start(&app_key, &secret, &refresh),
            app_key,
            secret,
            refresh,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn options_with_secret(&self, secret: &str) -> DropboxOptions {
        let base = self.double.base();
        DropboxOptions::new(
            &self.app_key,
            secret_file(self.dir.path(), secret),
            secret_file(self.dir.path(), &self.refresh),
        )
        .with_folder("/Reports")
        .with_subfolder("{recipient.id}")
        .with_token_url(format!("{base}/oauth2/token"))
        .with_api_url(format!("{base}/2"))
        .with_content_url(format!("{base}/2"))
        .with_timeout_secs(20)
    }

    pub fn options(&self) -> DropboxOptions {
        self.options_with_secret(&self.secret)
    }

    pub fn channel(&self, options: DropboxOptions) -> Arc<DropboxChannel> {
        Arc::new(DropboxChannel::new(options).unwrap())
    }
}
