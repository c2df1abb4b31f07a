//! The Dropbox requests: simple uploads, upload sessions, metadata and removal, and the
//! Dropbox content hash.

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{Document, Error, ErrorKind, Result};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::DropboxChannel;
use super::error::{BACKEND, correct_offset};
use crate::http::IfExists;
use crate::http::client::{error_body, join};
use crate::http::upload::{Step, UploadSession, drive};

/// Dropbox hashes files in blocks of this size.
const HASH_BLOCK: usize = 4 * 1024 * 1024;

/// The parts of a file's metadata this channel reads.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct FileMetadata {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub content_hash: Option<String>,
}

/// The Dropbox content hash: SHA-256 over the SHA-256 of each 4 MiB block, in hex.
pub(super) fn content_hash(bytes: &[u8]) -> String {
    let mut outer = Sha256::new();
    for block in bytes.chunks(HASH_BLOCK) {
        outer.update(Sha256::digest(block));
    }
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON fit for the `Dropbox-API-Arg` header: every character outside printable ASCII
/// escaped as `\uXXXX`.
fn header_json(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

impl DropboxChannel {
    fn commit_info(&self, path: &str) -> Value {
        let (mode, autorename) = match self.if_exists {
            IfExists::Fail => ("add", false),
            IfExists::Replace => ("overwrite", false),
            IfExists::Rename => ("add", true),
        };
        json!({"path": path, "mode": mode, "autorename": autorename, "mute": false, "strict_conflict": false})
    }

    fn content(&self, route: &str) -> Url {
        join(&self.content_url, route.split('/'))
    }

    fn rpc(&self, route: &str) -> Url {
        join(&self.api_url, route.split('/'))
    }

    /// Sends `body` to a content endpoint with `arg` in the `Dropbox-API-Arg` header.
    async fn content_call(
        &self,
        what: &str,
        route: &str,
        arg: &Value,
        body: Bytes,
    ) -> Result<reqwest::Response> {
        let url = self.content(route);
        let arg = header_json(arg);
        self.api
            .send(what, |http| {
                http.post(url.clone())
                    .header("Dropbox-API-Arg", arg.as_str())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await
    }

    pub(super) async fn upload(&self, path: &str, doc: &Document) -> Result<FileMetadata> {
        let what = "uploading a file";
        if doc.len() as u64 <= self.simple_upload_max {
            let resp = self
                .content_call(
                    what,
                    "files/upload",
                    &self.commit_info(path),
                    doc.bytes.clone(),
                )
                .await?;
            self.api.json(what, resp).await
        } else {
            self.upload_in_chunks(path, doc).await
        }
    }

    async fn upload_in_chunks(&self, path: &str, doc: &Document) -> Result<FileMetadata> {
        let what = "starting an upload session";
        let resp = self
            .content_call(
                what,
                "files/upload_session/start",
                &json!({"close": false}),
                Bytes::new(),
            )
            .await?;
        let started: Value = self.api.json(what, resp).await?;
        let session_id = started["session_id"].as_str().ok_or_else(|| {
            Error::new(
                ErrorKind::Delivery,
                format!("{what}: the answer has no session_id"),
            )
            .with_backend(BACKEND)
        })?;

        let mut session = DropboxSession {
            channel: self,
            session_id: session_id.to_string(),
            path: path.to_string(),
            acked: 0,
            total: doc.len() as u64,
        };
        drive(&mut session, &doc.bytes).await
    }

    /// The file at `path`, or `None` when there is none.
    pub(super) async fn lookup(&self, path: &str) -> Result<Option<FileMetadata>> {
        let what = "looking up a file";
        let url = self.rpc("files/get_metadata");
        let body = json!({"path": path});
        let resp = self
            .api
            .send(what, |http| http.post(url.clone()).json(&body))
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            let (status, wait, text) = error_body(resp).await;
            if text.contains("not_found") {
                return Ok(None);
            }
            return Err(self.api.refusal_of(what, status, wait, &text));
        }
        self.api.json(what, resp).await.map(Some)
    }

    /// Removes files a failed delivery created.
    pub(super) async fn remove(&self, id: &str) {
        let url = self.rpc("files/delete_v2");
        let body = json!({"path": id});
        self.api
            .remove_quietly(|http| http.post(url.clone()).json(&body))
            .await;
    }
}

/// One upload session: appends, then a finish that carries the last chunk and commits.
struct DropboxSession<'a> {
    channel: &'a DropboxChannel,
    session_id: String,
    path: String,
    /// The bytes the server confirmed.
    acked: u64,
    total: u64,
}

impl DropboxSession<'_> {
    fn cursor(&self, offset: u64) -> Value {
        json!({"session_id": self.session_id, "offset": offset})
    }

    /// Appends `chunk` at `offset`: the next offset, or where the server really stands.
    async fn append(&mut self, what: &str, offset: u64, chunk: Bytes) -> Result<u64> {
        let len = chunk.len() as u64;
        let arg = json!({"cursor": self.cursor(offset), "close": false});
        let resp = self
            .channel
            .content_call(what, "files/upload_session/append_v2", &arg, chunk)
            .await?;
        if resp.status().is_success() {
            self.acked = offset + len;
            return Ok(self.acked);
        }
        let (status, wait, body) = error_body(resp).await;
        if let Some(correct) = correct_offset(&body) {
            self.acked = correct;
            return Ok(correct);
        }
        Err(self.channel.api.refusal_of(what, status, wait, &body))
    }
}

#[async_trait]
impl UploadSession for DropboxSession<'_> {
    type Item = FileMetadata;

    fn chunk_size(&self) -> usize {
        self.channel.chunk_size
    }

    async fn send_chunk(
        &mut self,
        offset: u64,
        chunk: Bytes,
        last: bool,
    ) -> Result<Step<FileMetadata>> {
        if !last {
            let next = self
                .append("uploading a part of a file", offset, chunk)
                .await?;
            return Ok(Step::Next(next));
        }

        let what = "finishing an upload session";
        let arg =
            json!({"cursor": self.cursor(offset), "commit": self.channel.commit_info(&self.path)});
        let resp = self
            .channel
            .content_call(what, "files/upload_session/finish", &arg, chunk)
            .await?;
        if resp.status().is_success() {
            return Ok(Step::Done(self.channel.api.json(what, resp).await?));
        }
        let (status, wait, body) = error_body(resp).await;
        if let Some(correct) = correct_offset(&body) {
            self.acked = correct;
            return Ok(Step::Next(correct));
        }
        Err(self.channel.api.refusal_of(what, status, wait, &body))
    }

    async fn resume(&mut self, total: u64) -> Result<Step<FileMetadata>> {
        // An empty append at the last confirmed offset: the server either accepts it or says
        // where it really stands.
        let what = "asking an upload session where it stands";
        match self.append(what, self.acked, Bytes::new()).await {
            Ok(next) => Ok(Step::Next(next)),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                // The session is gone: the finish went through and only its answer was lost,
                // or the session expired.
                match self.channel.lookup(&self.path).await? {
                    Some(file) if file.size == Some(total) => Ok(Step::Done(file)),
                    _ => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn commit(&mut self) -> Result<FileMetadata> {
        match self.send_chunk(self.total, Bytes::new(), true).await? {
            Step::Done(file) => Ok(file),
            Step::Next(offset) => Err(Error::new(
                ErrorKind::Delivery,
                format!(
                    "the upload session holds {offset} of {} bytes after every byte was sent",
                    self.total
                ),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn abort(&mut self) {
        // Dropbox has no call to cancel a session: an unfinished one never becomes a file and
        // expires on its own.
        tracing::debug!("abandoned a Dropbox upload session");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_json_is_ascii() {
        let arg = json!({"path": "/Umsatz Zürich – 東京 😀.pdf"});
        let header = header_json(&arg);
        assert!(header.is_ascii(), "{header}");
        let back: Value = serde_json::from_str(&header).unwrap();
        assert_eq!(back, arg);
    }

    #[test]
    fn content_hash_of_nothing() {
        // SHA-256 of the empty string: no blocks, nothing hashed.
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
