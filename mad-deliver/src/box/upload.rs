//! The Box requests: folders, simple (multipart) uploads, new versions, chunked upload
//! sessions, the pre-flight name check and removal.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mad_core::{Document, Error, ErrorKind, Result};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::BoxChannel;
use super::error::{BACKEND, conflict_type, conflicting_file};
use crate::http::client::{error_body, join, same_origin, server_address};
use crate::http::multipart::{Multipart, quoted};
use crate::http::upload::{Step, UploadSession, drive};

/// How often a commit that Box is still processing (202) is asked again.
const COMMIT_POLLS: u32 = 10;

/// The longest pause between two such asks.
const MAX_COMMIT_PAUSE: Duration = Duration::from_secs(5);

/// The parts of a file this channel reads.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BoxFile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub sha1: Option<String>,
}

#[derive(Deserialize)]
struct Entries<T> {
    entries: Vec<T>,
}

/// A file this delivery put in place.
#[derive(Debug)]
pub(super) struct Uploaded {
    pub file: BoxFile,
    /// Whether the file is new (and so removed again when a later document fails).
    pub created: bool,
}

/// A name already taken in the folder, by the file with this id.
pub(super) struct Taken {
    pub id: String,
    pub sha1: Option<String>,
}

/// The SHA-1 of `bytes` in hex, as Box reports it.
pub(super) fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digest_header(bytes: &[u8]) -> String {
    format!("sha={}", BASE64.encode(Sha1::digest(bytes)))
}

impl BoxChannel {
    /// The folder `name` in `parent`, created when missing.
    pub(super) async fn folder(&self, parent: &str, name: &str) -> Result<String> {
        // Box compares folder names without case.
        let key = name.to_lowercase();
        if let Some(id) = self.folders.get(parent, &key) {
            return Ok(id);
        }

        let what = "creating a folder";
        let url = join(&self.api_url, ["folders"]);
        let body = json!({"name": name, "parent": {"id": parent}});
        let resp = self
            .api
            .send(what, |http| http.post(url.clone()).json(&body))
            .await?;
        let id = if resp.status() == StatusCode::CONFLICT {
            let (status, wait, text) = error_body(resp).await;
            match (conflicting_file(&text), conflict_type(&text).as_deref()) {
                (Some((id, _)), Some("folder")) => id,
                (Some(_), _) => {
                    return Err(Error::new(
                        ErrorKind::Delivery,
                        format!("{what}: a file named \"{name}\" is where the folder should be"),
                    )
                    .with_backend(BACKEND));
                }
                _ => return Err(self.api.refusal_of(what, status, wait, &text)),
            }
        } else {
            let folder: BoxFile = self.api.json(what, resp).await?;
            folder.id
        };
        self.folders.insert(parent, &key, &id);
        Ok(id)
    }

    /// Uploads `doc` as a new file `name` in `folder`, or says who holds the name.
    pub(super) async fn upload_new(
        &self,
        folder: &str,
        name: &str,
        doc: &Document,
    ) -> Result<std::result::Result<BoxFile, Taken>> {
        if doc.len() as u64 >= self.chunked_from {
            let url = join(&self.upload_url, ["files", "upload_sessions"]);
            let body = json!({"folder_id": folder, "file_size": doc.len(), "file_name": name});
            return self.upload_in_chunks(url, body, doc).await;
        }

        let attributes = json!({"name": name, "parent": {"id": folder}});
        let url = join(&self.upload_url, ["files", "content"]);
        self.upload_simple(url, attributes, name, doc).await
    }

    /// Uploads `doc` as a new version of the file `id`.
    pub(super) async fn upload_version(
        &self,
        id: &str,
        name: &str,
        doc: &Document,
    ) -> Result<BoxFile> {
        let taken = |_| {
            Error::new(
                ErrorKind::AlreadyExists,
                "uploading a new version: Box refused the file's own name",
            )
            .with_backend(BACKEND)
        };
        if doc.len() as u64 >= self.chunked_from {
            let url = join(&self.upload_url, ["files", id, "upload_sessions"]);
            let body = json!({"file_size": doc.len(), "file_name": name});
            return self.upload_in_chunks(url, body, doc).await?.map_err(taken);
        }
        let url = join(&self.upload_url, ["files", id, "content"]);
        self.upload_simple(url, json!({"name": name}), name, doc)
            .await?
            .map_err(taken)
    }

    async fn upload_simple(
        &self,
        url: Url,
        attributes: Value,
        name: &str,
        doc: &Document,
    ) -> Result<std::result::Result<BoxFile, Taken>> {
        let what = "uploading a file";
        let (content_type, body) = Multipart::new()
            .part(
                &["Content-Disposition: form-data; name=\"attributes\"".to_string()],
                attributes.to_string().as_bytes(),
            )
            .part(
                &[
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename={}",
                        quoted(name)
                    ),
                    "Content-Type: application/octet-stream".to_string(),
                ],
                &doc.bytes,
            )
            .finish("form-data");
        let sha1 = sha1_hex(&doc.bytes);
        let resp = self
            .api
            .send(what, |http| {
                http.post(url.clone())
                    .header(CONTENT_TYPE, content_type.as_str())
                    .header("Content-MD5", sha1.as_str())
                    .body(body.clone())
            })
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            return read_taken(self, what, resp).await.map(Err);
        }
        let mut files: Entries<BoxFile> = self.api.json(what, resp).await?;
        files.entries.pop().map(Ok).ok_or_else(|| {
            Error::new(
                ErrorKind::Delivery,
                format!("{what}: the answer lists no file"),
            )
            .with_backend(BACKEND)
        })
    }

    async fn upload_in_chunks(
        &self,
        url: Url,
        body: Value,
        doc: &Document,
    ) -> Result<std::result::Result<BoxFile, Taken>> {
        let what = "starting an upload session";
        let resp = self
            .api
            .send(what, |http| http.post(url.clone()).json(&body))
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            return read_taken(self, what, resp).await.map(Err);
        }
        let session: Value = self.api.json(what, resp).await?;
        let endpoint = |name: &str| -> Result<Url> {
            let value = session["session_endpoints"][name]
                .as_str()
                .unwrap_or_default();
            let url = server_address(BACKEND, what, value)?;
            if !same_origin(&url, &self.upload_url) {
                return Err(Error::new(
                    ErrorKind::Delivery,
                    format!(
                        "{what}: the session's {name} address is on another host than upload_url; \
                         no credentials were sent there"
                    ),
                )
                .with_backend(BACKEND));
            }
            Ok(url)
        };
        let part_size = session["part_size"]
            .as_u64()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Delivery,
                    format!("{what}: the answer has no part_size"),
                )
                .with_backend(BACKEND)
            })?;

        let mut upload = BoxSession {
            channel: self,
            upload_part: endpoint("upload_part")?,
            commit: endpoint("commit")?,
            abort: endpoint("abort")?,
            list_parts: endpoint("list_parts")?,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            total: doc.len() as u64,
            parts: Vec::new(),
            digest: digest_header(&doc.bytes),
        };
        drive(&mut upload, &doc.bytes).await.map(Ok)
    }

    /// Whether the name is taken in `folder` (Box's pre-flight check), and by which file.
    pub(super) async fn preflight(
        &self,
        folder: &str,
        name: &str,
        size: u64,
    ) -> Result<Option<Taken>> {
        let what = "checking a file name";
        let url = join(&self.api_url, ["files", "content"]);
        let body = json!({"name": name, "parent": {"id": folder}, "size": size});
        let resp = self
            .api
            .send(what, |http| {
                http.request(Method::OPTIONS, url.clone()).json(&body)
            })
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            return read_taken(self, what, resp).await.map(Some);
        }
        self.api.check(what, resp).await?;
        Ok(None)
    }

    pub(super) async fn remove(&self, id: &str) {
        let url = join(&self.api_url, ["files", id]);
        self.api
            .remove_quietly(|http| http.delete(url.clone()))
            .await;
    }
}

/// Reads a 409 answer: the file holding the name, or the refusal it stands for.
async fn read_taken(channel: &BoxChannel, what: &str, resp: reqwest::Response) -> Result<Taken> {
    let (status, wait, text) = error_body(resp).await;
    match (conflicting_file(&text), conflict_type(&text).as_deref()) {
        (Some((id, sha1)), Some("file") | None) => Ok(Taken { id, sha1 }),
        _ => Err(channel.api.refusal_of(what, status, wait, &text)),
    }
}

/// One chunked upload session.
struct BoxSession<'a> {
    channel: &'a BoxChannel,
    upload_part: Url,
    commit: Url,
    abort: Url,
    list_parts: Url,
    part_size: usize,
    total: u64,
    /// The parts Box confirmed, by offset.
    parts: Vec<Value>,
    /// The `Digest` header of the whole file.
    digest: String,
}

impl BoxSession<'_> {
    fn record(&mut self, part: Value) {
        let offset = part["offset"].as_u64();
        self.parts.retain(|p| p["offset"].as_u64() != offset);
        self.parts.push(part);
        self.parts.sort_by_key(|p| p["offset"].as_u64());
    }

    /// Where the confirmed parts end, counted from the start without gaps.
    fn contiguous_end(&self) -> u64 {
        let mut end = 0;
        for part in &self.parts {
            match (part["offset"].as_u64(), part["size"].as_u64()) {
                (Some(offset), Some(size)) if offset == end => end += size,
                _ => break,
            }
        }
        end
    }
}

#[async_trait]
impl UploadSession for BoxSession<'_> {
    type Item = BoxFile;

    fn chunk_size(&self) -> usize {
        self.part_size
    }

    async fn send_chunk(
        &mut self,
        offset: u64,
        chunk: Bytes,
        _last: bool,
    ) -> Result<Step<BoxFile>> {
        let what = "uploading a part of a file";
        let end = offset + chunk.len() as u64;
        let range = format!("bytes {offset}-{}/{}", end.saturating_sub(1), self.total);
        let digest = digest_header(&chunk);
        let url = self.upload_part.clone();
        let resp = self
            .channel
            .api
            .send(what, |http| {
                http.put(url.clone())
                    .header("Digest", digest.as_str())
                    .header(CONTENT_RANGE, range.as_str())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(chunk.clone())
            })
            .await?;
        let answer: Value = self.channel.api.json(what, resp).await?;
        self.record(answer["part"].clone());
        Ok(Step::Next(end))
    }

    async fn resume(&mut self, _total: u64) -> Result<Step<BoxFile>> {
        let what = "asking an upload session which parts it holds";
        let url = self.list_parts.clone();
        let resp = self
            .channel
            .api
            .send(what, |http| http.get(url.clone()))
            .await?;
        let listed: Entries<Value> = self.channel.api.json(what, resp).await?;
        self.parts.clear();
        for part in listed.entries {
            self.record(part);
        }
        Ok(Step::Next(self.contiguous_end()))
    }

    async fn commit(&mut self) -> Result<BoxFile> {
        let what = "committing an upload session";
        let body = json!({"parts": self.parts, "attributes": {}});
        let url = self.commit.clone();
        for _ in 0..COMMIT_POLLS {
            let resp = self
                .channel
                .api
                .send(what, |http| {
                    http.post(url.clone())
                        .header("Digest", self.digest.as_str())
                        .json(&body)
                })
                .await?;
            if resp.status() == StatusCode::ACCEPTED {
                let wait = crate::http::client::retry_after(resp.headers())
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_COMMIT_PAUSE);
                tokio::time::sleep(wait).await;
                continue;
            }
            let mut files: Entries<BoxFile> = self.channel.api.json(what, resp).await?;
            return files.entries.pop().ok_or_else(|| {
                Error::new(
                    ErrorKind::Delivery,
                    format!("{what}: the answer lists no file"),
                )
                .with_backend(BACKEND)
            });
        }
        Err(Error::new(
            ErrorKind::Transient,
            format!("{what}: Box was still processing the parts; try again later"),
        )
        .with_backend(BACKEND))
    }

    async fn abort(&mut self) {
        let url = self.abort.clone();
        let result = self
            .channel
            .api
            .send("cancelling an upload session", |http| {
                http.delete(url.clone())
            })
            .await;
        if let Err(err) = result {
            tracing::debug!(kind = %err.kind(), "could not cancel an upload session");
        }
    }
}
