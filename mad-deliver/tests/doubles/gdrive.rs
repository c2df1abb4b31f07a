//! The Google Drive API v3 and Google's OAuth2 token endpoint.
//!
//! - `POST /token`: the refresh-token grant; a wrong client secret gives 401
//!   `invalid_client`, an unknown refresh token 400 `invalid_grant`.
//! - `GET /drive/v3/files?q=...`: searches of the form `name = '..' and '..' in parents and
//!   trashed = false and mimeType (=|!=) '..'` (string literals with `\'` and `\\`).
//! - `POST /drive/v3/files`: a folder; `DELETE /drive/v3/files/{id}`.
//! - `POST /upload/drive/v3/files?uploadType=multipart` (and `PATCH .../files/{id}`):
//!   `multipart/related` with the JSON metadata first and the media second.
//! - `uploadType=resumable`: the session address comes back in `Location`; `PUT` chunks with
//!   `Content-Range` (multiples of 256 KiB except the last) are answered 308 with
//!   `Range: bytes=0-N` until the last, which answers 200 with the file; `bytes */TOTAL`
//!   asks where the upload stands; `DELETE` cancels (499).
//! - Errors: `{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}`;
//!   401 `authError`; rate limits as 403 `userRateLimitExceeded` or 429.
//! - Files carry `size` as a string and `md5Checksum`. Names need not be unique.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::{
    Auth, Dropped, Faults, Plan, Reply, Request, Server, TokenDialect, content_range, multipart,
    token_string,
};
use crate::support::{secret_file, throwaway};
use mad_deliver::gdrive::{GdriveChannel, GdriveOptions};

/// Resumable chunks must be multiples of this, except the last.
pub const CHUNK_UNIT: u64 = 256 * 1024;

const FOLDER_TYPE: &str = "application/vnd.google-apps.folder";

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: String,
    pub name: String,
    pub parent: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

struct Session {
    /// Metadata of a new file, or the id of the file to update.
    metadata: Value,
    file_id: Option<String>,
    mime_type: String,
    total: u64,
    received: Vec<u8>,
}

pub struct GdriveState {
    pub auth: Auth,
    pub faults: Faults,
    pub calls: Mutex<Vec<String>>,
    base: OnceLock<String>,
    files: Mutex<BTreeMap<String, StoredFile>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The size of every resumable chunk accepted, in order.
    pub chunks: Mutex<Vec<u64>>,
}

pub struct GdriveDouble {
    pub state: Arc<GdriveState>,
    server: Server,
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl GdriveDouble {
    /// A double holding the folder `root_folder`.
    pub fn start(
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        root_folder: &str,
    ) -> Self {
        let dialect = TokenDialect {
            invalid_client_status: 401,
            invalid_client_description: "Unauthorized",
            invalid_grant_status: 400,
            invalid_grant_description: "Token has been expired or revoked.",
            extra: json!({"scope": "https://www.googleapis.com/auth/drive.file"}),
        };
        let mut files = BTreeMap::new();
        files.insert(
            root_folder.to_string(),
            StoredFile {
                id: root_folder.to_string(),
                name: "Reports".to_string(),
                parent: "root".to_string(),
                mime_type: FOLDER_TYPE.to_string(),
                bytes: Vec::new(),
            },
        );
        let state = Arc::new(GdriveState {
            auth: Auth::new(client_id, client_secret, dialect).with_refresh_token(refresh_token),
            faults: Faults::default(),
            calls: Mutex::new(Vec::new()),
            base: OnceLock::new(),
            files: Mutex::new(files),
            sessions: Mutex::new(HashMap::new()),
            chunks: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let server = Server::start(move |req| handle(handler_state.clone(), req));
        state.base.set(server.base.clone()).unwrap();
        GdriveDouble { state, server }
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// Every file that is not a folder.
    pub fn files(&self) -> Vec<StoredFile> {
        let files = self.state.files.lock().unwrap();
        files
            .values()
            .filter(|f| f.mime_type != FOLDER_TYPE)
            .cloned()
            .collect()
    }

    /// Every folder, the double's own included.
    pub fn folders(&self) -> Vec<StoredFile> {
        let files = self.state.files.lock().unwrap();
        files
            .values()
            .filter(|f| f.mime_type == FOLDER_TYPE)
            .cloned()
            .collect()
    }

    /// The files at `path` below the double's folders (`Reports/ann/r.pdf`).
    pub fn files_at(&self, path: &str) -> Vec<StoredFile> {
        self.files()
            .into_iter()
            .filter(|f| self.path_of(f) == path)
            .collect()
    }

    pub fn path_of(&self, file: &StoredFile) -> String {
        let files = self.state.files.lock().unwrap();
        let mut parts = vec![file.name.clone()];
        let mut at = file.parent.clone();
        while let Some(folder) = files.get(&at) {
            parts.push(folder.name.clone());
            at = folder.parent.clone();
        }
        parts.reverse();
        parts.join("/")
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

fn google_error(status: u16, reason: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }}),
    )
}

fn file_json(file: &StoredFile) -> Value {
    let mut value =
        json!({"kind": "drive#file", "id": file.id, "name": file.name, "mimeType": file.mime_type});
    if file.mime_type != FOLDER_TYPE {
        value["size"] = json!(file.bytes.len().to_string());
        value["md5Checksum"] = json!(md5_hex(&file.bytes));
    }
    value
}

async fn handle(state: Arc<GdriveState>, req: Request) -> Result<Reply, Dropped> {
    let path = req.path.clone();
    let method = req.method.as_str().to_string();
    let upload_type = req.query.get("uploadType").cloned();
    let session_id = req.query.get("upload_id").cloned();
    let route = match (
        method.as_str(),
        path.as_str(),
        upload_type.as_deref(),
        session_id.is_some(),
    ) {
        ("POST", "/token", _, _) => "token",
        ("GET", "/drive/v3/files", _, _) => "list",
        ("POST", "/drive/v3/files", _, _) => "create",
        ("DELETE", p, _, _) if p.starts_with("/drive/v3/files/") => "delete",
        ("PUT", "/upload/drive/v3/files", _, true) => "chunk",
        ("DELETE", "/upload/drive/v3/files", _, true) => "cancel",
        ("POST" | "PATCH", _, Some("multipart"), false)
            if path.starts_with("/upload/drive/v3/files") =>
        {
            "multipart"
        }
        ("POST" | "PATCH", _, Some("resumable"), false)
            if path.starts_with("/upload/drive/v3/files") =>
        {
            "start_resumable"
        }
        _ => return Ok(google_error(404, "notFound", "Not Found")),
    };
    let (drop_after, lose_answer) = match super::plan(&state.faults, &state.calls, route) {
        Plan::Answer(reply) => return Ok(reply),
        Plan::Proceed {
            drop_after,
            lose_answer,
            ..
        } => (drop_after, lose_answer),
    };
    if route == "token" {
        return state.auth.token(req, |_| None).await;
    }
    if route == "chunk" || route == "cancel" {
        if req.header("authorization").is_some() {
            return Ok(google_error(
                400,
                "badRequest",
                "the session address needs no Authorization header",
            ));
        }
    } else if !state.auth.check(&req) {
        return Ok(google_error(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        ));
    }

    let file_id = path
        .strip_prefix("/upload/drive/v3/files/")
        .or_else(|| path.strip_prefix("/drive/v3/files/"))
        .map(super::decode);
    let query = req.query.clone();
    let headers = req.headers.clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body = req.body_or_drop(drop_after).await?.to_vec();
    let reply = match route {
        "list" => list(
            &state,
            query.get("q").map(String::as_str).unwrap_or_default(),
        ),
        "create" => {
            let meta: Value = serde_json::from_slice(&body).unwrap_or_default();
            create(
                &state,
                &meta,
                meta["mimeType"]
                    .as_str()
                    .unwrap_or("application/octet-stream"),
                Vec::new(),
            )
        }
        "delete" => match state
            .files
            .lock()
            .unwrap()
            .remove(file_id.as_deref().unwrap_or_default())
        {
            Some(_) => Reply::empty(204),
            None => google_error(404, "notFound", "File not found."),
        },
        "multipart" => {
            let Some(parts) = header("content-type")
                .filter(|t| t.starts_with("multipart/related"))
                .and_then(|t| multipart(&t, &body))
            else {
                return Ok(google_error(
                    400,
                    "badContent",
                    "Media type is not multipart/related",
                ));
            };
            if parts.len() != 2
                || !parts[0]
                    .0
                    .get("content-type")
                    .is_some_and(|t| t.starts_with("application/json"))
            {
                return Ok(google_error(
                    400,
                    "badContent",
                    "The metadata part must come first, as JSON",
                ));
            }
            let meta: Value = serde_json::from_slice(&parts[0].1).unwrap_or_default();
            let mime = parts[1].0.get("content-type").cloned().unwrap_or_default();
            save(&state, file_id.as_deref(), &meta, &mime, parts[1].1.clone())
        }
        "start_resumable" => {
            let meta: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let Some(total) = header("x-upload-content-length").and_then(|v| v.parse().ok()) else {
                return Ok(google_error(
                    400,
                    "badRequest",
                    "X-Upload-Content-Length is required",
                ));
            };
            let id = token_string("upload");
            state.sessions.lock().unwrap().insert(
                id.clone(),
                Session {
                    metadata: meta,
                    file_id: file_id.clone(),
                    mime_type: header("x-upload-content-type").unwrap_or_default(),
                    total,
                    received: Vec::new(),
                },
            );
            let location = format!(
                "{}/upload/drive/v3/files?uploadType=resumable&upload_id={id}",
                state.base.get().unwrap()
            );
            Reply::empty(200).with_header("location", location)
        }
        "chunk" => chunk(
            &state,
            session_id.as_deref().unwrap_or_default(),
            header("content-range"),
            body,
        ),
        "cancel" => {
            state
                .sessions
                .lock()
                .unwrap()
                .remove(session_id.as_deref().unwrap_or_default());
            Reply::empty(499)
        }
        _ => unreachable!(),
    };
    if lose_answer {
        return Err(Dropped);
    }
    Ok(reply)
}

/// A new file from `meta`, or new content for `file_id`.
fn save(
    state: &GdriveState,
    file_id: Option<&str>,
    meta: &Value,
    mime: &str,
    bytes: Vec<u8>,
) -> Reply {
    match file_id {
        Some(id) => {
            let mut files = state.files.lock().unwrap();
            match files.get_mut(id) {
                Some(file) => {
                    file.bytes = bytes;
                    Reply::json(200, file_json(file))
                }
                None => google_error(404, "notFound", &format!("File not found: {id}.")),
            }
        }
        None => create(state, meta, mime, bytes),
    }
}

fn create(state: &GdriveState, meta: &Value, mime: &str, bytes: Vec<u8>) -> Reply {
    let name = meta["name"].as_str().unwrap_or("Untitled").to_string();
    let parent = meta["parents"][0].as_str().unwrap_or("root").to_string();
    let mut files = state.files.lock().unwrap();
    if files
        .get(&parent)
        .is_none_or(|f| f.mime_type != FOLDER_TYPE)
    {
        return google_error(404, "notFound", &format!("File not found: {parent}."));
    }
    let file = StoredFile {
        id: token_string("1x").replace('-', "_"),
        name,
        parent,
        mime_type: meta["mimeType"].as_str().unwrap_or(mime).to_string(),
        bytes,
    };
    files.insert(file.id.clone(), file.clone());
    Reply::json(200, file_json(&file))
}

fn chunk(state: &GdriveState, id: &str, range: Option<String>, body: Vec<u8>) -> Reply {
    let mut sessions = state.sessions.lock().unwrap();
    let Some(session) = sessions.get_mut(id) else {
        return google_error(
            404,
            "notFound",
            "The upload session was not found or has expired.",
        );
    };
    let Some((range, total)) = range.as_deref().and_then(content_range) else {
        return google_error(400, "badRequest", "Content-Range is required");
    };
    if total != session.total {
        return google_error(400, "badRequest", "The total size changed");
    }
    if let Some((first, last)) = range {
        let size = last + 1 - first;
        let is_last = last + 1 == total;
        if first != session.received.len() as u64 || body.len() as u64 != size {
            return google_error(400, "badRequest", "The chunk does not continue the upload");
        }
        if !is_last && size % CHUNK_UNIT != 0 {
            return google_error(
                400,
                "badRequest",
                "Chunks must be multiples of 256 KiB, except the last",
            );
        }
        session.received.extend_from_slice(&body);
        state.chunks.lock().unwrap().push(size);
    }
    if session.received.len() as u64 == session.total {
        let session = sessions.remove(id).unwrap();
        drop(sessions);
        return save(
            state,
            session.file_id.as_deref(),
            &session.metadata,
            &session.mime_type,
            session.received,
        );
    }
    let reply = Reply::empty(308);
    match session.received.len() {
        0 => reply,
        n => reply.with_header("range", format!("bytes=0-{}", n - 1)),
    }
}

/// Answers the searches the channel makes.
fn list(state: &GdriveState, q: &str) -> Reply {
    let Some(terms) = parse_query(q) else {
        return google_error(400, "invalid", &format!("Invalid Value: q = {q}"));
    };
    let files = state.files.lock().unwrap();
    let found: Vec<Value> = files
        .values()
        .filter(|f| {
            terms.iter().all(|t| match t {
                Term::Name(n) => f.name == *n,
                Term::Parent(p) => f.parent == *p,
                Term::NotTrashed => true,
                Term::MimeType(m, equal) => (f.mime_type == *m) == *equal,
            })
        })
        .map(file_json)
        .collect();
    Reply::json(
        200,
        json!({"kind": "drive#fileList", "incompleteSearch": false, "files": found}),
    )
}

enum Term {
    Name(String),
    Parent(String),
    NotTrashed,
    MimeType(String, bool),
}

/// Parses `term and term and ...` with the terms the channel uses.
fn parse_query(q: &str) -> Option<Vec<Term>> {
    let mut terms = Vec::new();
    let mut rest = q.trim();
    loop {
        if let Some(r) = rest.strip_prefix("name = ") {
            let (value, r) = literal(r)?;
            terms.push(Term::Name(value));
            rest = r;
        } else if rest.starts_with('\'') {
            let (value, r) = literal(rest)?;
            terms.push(Term::Parent(value));
            rest = r.strip_prefix(" in parents")?;
        } else if let Some(r) = rest.strip_prefix("trashed = false") {
            terms.push(Term::NotTrashed);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("mimeType ") {
            let (equal, r) = match r.strip_prefix("!= ") {
                Some(r) => (false, r),
                None => (true, r.strip_prefix("= ")?),
            };
            let (value, r) = literal(r)?;
            terms.push(Term::MimeType(value, equal));
            rest = r;
        } else {
            return None;
        }
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(terms);
        }
        rest = rest.strip_prefix("and ")?;
    }
}

/// A `'...'` literal with `\'` and `\\` escapes, and what follows it.
fn literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('\'')?.char_indices();
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '\'' => return Some((value, &s[i + 2..])),
            c => value.push(c),
        }
    }
    None
}

pub const FOLDER: &str = "1ReportsFolder";

// ---- the fixture the tests share ------------------------------------------------------------

/// The double, the throwaway credentials it accepts, and a folder for their secret files.
pub struct Fixture {
    pub double: GdriveDouble,
    pub client_id: String,
    pub secret: String,
    pub refresh: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn start() -> Self {
        let client_id = throwaway("client");
        let secret = throwaway("gdrive-secret");
        let refresh = throwaway("gdrive-refresh");
        Fixture {
            double: GdriveDouble::start(&client_id, &secret, &refresh, FOLDER),
            client_id,
            secret,
            refresh,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn options_with_secret(&self, secret: &str) -> GdriveOptions {
        let base = self.double.base();
        GdriveOptions::new(
            &self.client_id,
            secret_file(self.dir.path(), secret),
            secret_file(self.dir.path(), &self.refresh),
            FOLDER,
        )
        .with_subfolder("{recipient.id}")
        .with_token_url(format!("{base}/token"))
        .with_api_url(format!("{base}/drive/v3"))
        .with_upload_url(format!("{base}/upload/drive/v3"))
        .with_timeout_secs(20)
    }

    pub fn options(&self) -> GdriveOptions {
        self.options_with_secret(&self.secret)
    }

    pub fn channel(&self, options: GdriveOptions) -> Arc<GdriveChannel> {
        Arc::new(GdriveChannel::new(options).unwrap())
    }

    pub fn only(&self, path: &str) -> StoredFile {
        let mut files = self.double.files_at(path);
        assert_eq!(files.len(), 1, "one file at {path}");
        files.remove(0)
    }
}
