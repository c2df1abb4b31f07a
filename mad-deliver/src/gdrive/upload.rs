//! The Drive requests: look-ups by name, folders, multipart and resumable uploads, removal.

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{Document, Error, ErrorKind, Result};
use md5::{Digest, Md5};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::GdriveChannel;
use super::error::BACKEND;
use crate::http::client::{join, server_address};
use crate::http::multipart::Multipart;
use crate::http::upload::{Step, UploadSession, drive};

const FOLDER_TYPE: &str = "application/vnd.google-apps.folder";

/// The fields asked for in every file answer.
const FILE_FIELDS: &str = "id,name,size,md5Checksum";

/// The parts of a file this channel reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveFile {
    pub id: String,
    pub name: String,
    /// Drive sends sizes as strings.
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub md5_checksum: Option<String>,
}

#[derive(Deserialize)]
struct FileList {
    #[serde(default)]
    files: Vec<DriveFile>,
}

/// The MD5 of `bytes` in hex, as Drive reports it.
pub(super) fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A string literal for a Drive search query.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Where an upload goes: a new file in a folder, or new content for an existing file.
pub(super) enum Target<'a> {
    New { folder: &'a str, name: &'a str },
    Existing { id: &'a str },
}

impl GdriveChannel {
    fn files_url(&self, base: &Url, id: Option<&str>) -> Url {
        let mut url = match id {
            Some(id) => join(base, ["files", id]),
            None => join(base, ["files"]),
        };
        url.query_pairs_mut()
            .append_pair("supportsAllDrives", "true");
        url
    }

    /// The files (or folders) named `name` in `parent`, not in the trash.
    pub(super) async fn find(
        &self,
        parent: &str,
        name: &str,
        folders: bool,
    ) -> Result<Vec<DriveFile>> {
        let what = "looking up a file";
        let kind = if folders { "=" } else { "!=" };
        let query = format!(
            "name = {} and {} in parents and trashed = false and mimeType {kind} '{FOLDER_TYPE}'",
            literal(name),
            literal(parent)
        );
        let mut url = self.files_url(&self.api_url, None);
        url.query_pairs_mut()
            .append_pair("q", &query)
            .append_pair("fields", &format!("files({FILE_FIELDS})"))
            .append_pair("includeItemsFromAllDrives", "true")
            .append_pair("pageSize", "100");
        let resp = self.api.send(what, |http| http.get(url.clone())).await?;
        let list: FileList = self.api.json(what, resp).await?;
        Ok(list.files)
    }

    /// The folder `name` in `parent`, created when missing; once per channel, also when
    /// deliveries ask for it at the same time (Drive allows two folders of the same name).
    pub(super) async fn folder(&self, parent: &str, name: &str) -> Result<String> {
        self.folders
            .get_or(parent, name, || self.find_or_create_folder(parent, name))
            .await
    }

    async fn find_or_create_folder(&self, parent: &str, name: &str) -> Result<String> {
        if let Some(folder) = self.find(parent, name, true).await?.into_iter().next() {
            return Ok(folder.id);
        }

        let what = "creating a folder";
        let mut url = self.files_url(&self.api_url, None);
        url.query_pairs_mut().append_pair("fields", "id,name");
        let body = json!({"name": name, "mimeType": FOLDER_TYPE, "parents": [parent]});
        let resp = self
            .api
            .send(what, |http| http.post(url.clone()).json(&body))
            .await?;
        let folder: DriveFile = self.api.json(what, resp).await?;
        Ok(folder.id)
    }

    fn upload_request(&self, target: &Target<'_>, upload_type: &str) -> (Method, Url, Value) {
        let (method, id, metadata) = match target {
            Target::New { folder, name } => (
                Method::POST,
                None,
                json!({"name": name, "parents": [folder]}),
            ),
            Target::Existing { id } => (Method::PATCH, Some(*id), json!({})),
        };
        let mut url = self.files_url(&self.upload_url, id);
        url.query_pairs_mut()
            .append_pair("uploadType", upload_type)
            .append_pair("fields", FILE_FIELDS);
        (method, url, metadata)
    }

    pub(super) async fn upload(&self, target: Target<'_>, doc: &Document) -> Result<DriveFile> {
        if doc.len() as u64 > self.simple_upload_max {
            return self.upload_resumable(target, doc).await;
        }

        let what = "uploading a file";
        let (method, url, metadata) = self.upload_request(&target, "multipart");
        let (content_type, body) = Multipart::new()
            .part(
                &["Content-Type: application/json; charset=UTF-8".to_string()],
                metadata.to_string().as_bytes(),
            )
            .part(&[format!("Content-Type: {}", doc.media_type())], &doc.bytes)
            .finish("related");
        let resp = self
            .api
            .send(what, |http| {
                http.request(method.clone(), url.clone())
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(body.clone())
            })
            .await?;
        self.api.json(what, resp).await
    }

    async fn upload_resumable(&self, target: Target<'_>, doc: &Document) -> Result<DriveFile> {
        let what = "starting a resumable upload";
        let (method, url, metadata) = self.upload_request(&target, "resumable");
        let resp = self
            .api
            .send(what, |http| {
                http.request(method.clone(), url.clone())
                    .header("X-Upload-Content-Type", doc.media_type())
                    .header("X-Upload-Content-Length", doc.len())
                    .json(&metadata)
            })
            .await?;
        let resp = self.api.check(what, resp).await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let session_url = server_address(BACKEND, what, &location)?;

        let mut session = ResumableSession {
            channel: self,
            session_url,
            total: doc.len() as u64,
        };
        drive(&mut session, &doc.bytes).await
    }

    pub(super) async fn remove(&self, id: &str) {
        let url = self.files_url(&self.api_url, Some(id));
        self.api
            .remove_quietly(|http| http.delete(url.clone()))
            .await;
    }
}

/// One resumable upload. The session address carries its own authorisation, so no access
/// token is sent to it.
struct ResumableSession<'a> {
    channel: &'a GdriveChannel,
    session_url: Url,
    total: u64,
}

impl ResumableSession<'_> {
    async fn put(&self, what: &str, range: String, chunk: Bytes) -> Result<Step<DriveFile>> {
        let api = &self.channel.api;
        let request = api
            .client()
            .put(self.session_url.clone())
            .header(CONTENT_LENGTH, chunk.len())
            .header(CONTENT_RANGE, range)
            .body(chunk);
        let resp = api.send_anonymous(what, request).await?;
        match resp.status().as_u16() {
            308 => Ok(Step::Next(received(resp.headers().get(RANGE)))),
            200 | 201 => Ok(Step::Done(api.json(what, resp).await?)),
            404 | 410 => Err(Error::new(
                ErrorKind::Transient,
                format!("{what}: the resumable upload expired before the file was complete"),
            )
            .with_backend(BACKEND)),
            _ => Err(api.refusal(what, resp).await),
        }
    }
}

/// The next byte to send after a `Range: bytes=0-N` header (none: nothing was received).
fn received(range: Option<&reqwest::header::HeaderValue>) -> u64 {
    range
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes=0-"))
        .and_then(|last| last.parse::<u64>().ok())
        .map_or(0, |last| last + 1)
}

#[async_trait]
impl UploadSession for ResumableSession<'_> {
    type Item = DriveFile;

    fn chunk_size(&self) -> usize {
        self.channel.chunk_size
    }

    async fn send_chunk(
        &mut self,
        offset: u64,
        chunk: Bytes,
        _last: bool,
    ) -> Result<Step<DriveFile>> {
        let end = offset + chunk.len() as u64;
        let range = format!("bytes {offset}-{}/{}", end.saturating_sub(1), self.total);
        self.put("uploading a part of a file", range, chunk).await
    }

    async fn resume(&mut self, total: u64) -> Result<Step<DriveFile>> {
        self.put(
            "asking a resumable upload where it stands",
            format!("bytes */{total}"),
            Bytes::new(),
        )
        .await
    }

    async fn commit(&mut self) -> Result<DriveFile> {
        match self.resume(self.total).await? {
            Step::Done(file) => Ok(file),
            Step::Next(offset) => Err(Error::new(
                ErrorKind::Delivery,
                format!(
                    "the resumable upload holds {offset} of {} bytes after every byte was sent",
                    self.total
                ),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn abort(&mut self) {
        let api = &self.channel.api;
        let request = api.client().delete(self.session_url.clone());
        if let Err(err) = api
            .send_anonymous("cancelling a resumable upload", request)
            .await
        {
            tracing::debug!(kind = %err.kind(), "could not cancel a resumable upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_literals_are_escaped() {
        assert_eq!(literal("O'Brien \\ x"), "'O\\'Brien \\\\ x'");
    }

    #[test]
    fn ranges_say_what_was_received() {
        let value = reqwest::header::HeaderValue::from_static("bytes=0-262143");
        assert_eq!(received(Some(&value)), 262_144);
        assert_eq!(received(None), 0);
    }
}
