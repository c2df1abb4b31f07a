//! The Graph requests: simple uploads, upload sessions, item look-ups and removal.

use async_trait::async_trait;
use bytes::Bytes;
use mad_core::{Document, Error, ErrorKind, Result};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use super::GraphChannel;
use super::error::BACKEND;
use crate::http::IfExists;
use crate::http::client::{join, server_address};
use crate::http::upload::{Step, UploadSession, drive};

/// The parts of a drive item this channel reads.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct DriveItem {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub size: Option<u64>,
}

/// A file this delivery put in place.
#[derive(Debug)]
pub(super) struct Uploaded {
    pub item: DriveItem,
    /// Whether the file is new (and so removed again when a later document fails).
    pub created: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionInfo {
    #[serde(default)]
    upload_url: Option<String>,
    #[serde(default)]
    next_expected_ranges: Vec<String>,
}

fn conflict_behavior(policy: IfExists) -> &'static str {
    match policy {
        IfExists::Fail => "fail",
        IfExists::Replace => "replace",
        IfExists::Rename => "rename",
    }
}

impl GraphChannel {
    /// `{api}/{drive}/root:/{path}` with `action` after a closing colon when given.
    fn item_url(&self, path: &[String], action: Option<&str>) -> Url {
        let mut segments: Vec<String> = self.drive.clone();
        segments.push("root:".to_string());
        segments.extend(path.iter().cloned());
        if let Some(action) = action {
            if let Some(last) = segments.last_mut() {
                last.push(':');
            }
            segments.push(action.to_string());
        }
        join(&self.api_url, segments)
    }

    pub(super) async fn upload(&self, path: &[String], doc: &Document) -> Result<Uploaded> {
        if doc.len() as u64 <= self.simple_upload_max {
            self.put_small(path, doc).await
        } else {
            self.put_large(path, doc).await
        }
    }

    async fn put_small(&self, path: &[String], doc: &Document) -> Result<Uploaded> {
        let what = "uploading a file";
        let mut url = self.item_url(path, Some("content"));
        url.query_pairs_mut().append_pair(
            "@microsoft.graph.conflictBehavior",
            conflict_behavior(self.if_exists),
        );
        let resp = self
            .api
            .send(what, |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, doc.media_type())
                    .body(doc.bytes.clone())
            })
            .await?;
        let created = resp.status() == StatusCode::CREATED;
        let item: DriveItem = self.api.json(what, resp).await?;
        Ok(Uploaded { item, created })
    }

    async fn put_large(&self, path: &[String], doc: &Document) -> Result<Uploaded> {
        let what = "starting an upload session";
        let url = self.item_url(path, Some("createUploadSession"));
        let body = json!({
            "item": { "@microsoft.graph.conflictBehavior": conflict_behavior(self.if_exists) }
        });
        let resp = self
            .api
            .send(what, |http| http.post(url.clone()).json(&body))
            .await?;
        let info: SessionInfo = self.api.json(what, resp).await?;
        let upload_url = info.upload_url.ok_or_else(|| {
            Error::new(
                ErrorKind::Delivery,
                format!("{what}: the answer has no uploadUrl"),
            )
            .with_backend(BACKEND)
        })?;
        let upload_url = server_address(BACKEND, what, &upload_url)?;

        let mut session = GraphSession {
            channel: self,
            upload_url,
            path: path.to_vec(),
            total: doc.len() as u64,
        };
        drive(&mut session, &doc.bytes).await
    }

    /// The item at `path`, or `None` when there is none.
    pub(super) async fn lookup(&self, path: &[String]) -> Result<Option<DriveItem>> {
        let what = "looking up a file";
        let url = self.item_url(path, None);
        let resp = self.api.send(what, |http| http.get(url.clone())).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.api.json(what, resp).await.map(Some)
    }

    /// Removes the files a failed delivery created; replaced files cannot be restored.
    pub(super) async fn roll_back(&self, uploaded: &[Uploaded]) {
        for up in uploaded.iter().filter(|u| u.created) {
            let mut segments = self.drive.clone();
            segments.extend(["items".to_string(), up.item.id.clone()]);
            let url = join(&self.api_url, segments);
            self.api
                .remove_quietly(|http| http.delete(url.clone()))
                .await;
        }
    }
}

/// One upload session. Its address carries its own authorisation, so no access token is
/// sent to it.
struct GraphSession<'a> {
    channel: &'a GraphChannel,
    upload_url: Url,
    path: Vec<String>,
    total: u64,
}

impl GraphSession<'_> {
    /// Reads an answer from the session: more ranges expected, or the finished item.
    async fn step(&self, what: &str, resp: reqwest::Response) -> Result<Step<Uploaded>> {
        let api = &self.channel.api;
        match resp.status() {
            StatusCode::ACCEPTED => {
                let info: SessionInfo = api.json(what, resp).await?;
                Ok(Step::Next(first_missing(&info.next_expected_ranges)?))
            }
            StatusCode::OK | StatusCode::CREATED => {
                let created = resp.status() == StatusCode::CREATED;
                let item: DriveItem = api.json(what, resp).await?;
                Ok(Step::Done(Uploaded { item, created }))
            }
            _ => Err(api.refusal(what, resp).await),
        }
    }
}

#[async_trait]
impl UploadSession for GraphSession<'_> {
    type Item = Uploaded;

    fn chunk_size(&self) -> usize {
        self.channel.chunk_size
    }

    async fn send_chunk(
        &mut self,
        offset: u64,
        chunk: Bytes,
        _last: bool,
    ) -> Result<Step<Uploaded>> {
        let what = "uploading a part of a file";
        let end = offset + chunk.len() as u64;
        let total = self.total;
        let request = self
            .channel
            .api
            .client()
            .put(self.upload_url.clone())
            .header(CONTENT_LENGTH, chunk.len())
            .header(CONTENT_RANGE, format!("bytes {offset}-{}/{total}", end - 1))
            .body(chunk);
        let resp = self.channel.api.send_anonymous(what, request).await?;
        self.step(what, resp).await
    }

    async fn resume(&mut self, total: u64) -> Result<Step<Uploaded>> {
        let what = "asking an upload session where it stands";
        let api = &self.channel.api;
        let request = api.client().get(self.upload_url.clone());
        let resp = api.send_anonymous(what, request).await?;
        if resp.status() != StatusCode::NOT_FOUND {
            let info: SessionInfo = api.json(what, resp).await?;
            return Ok(Step::Next(first_missing(&info.next_expected_ranges)?));
        }

        // The session is gone: either the last chunk completed the file (and only its answer
        // was lost) or the session expired.
        match self.channel.lookup(&self.path).await? {
            Some(item) if item.size == Some(total) => Ok(Step::Done(Uploaded {
                item,
                created: true,
            })),
            _ => Err(Error::new(
                ErrorKind::Transient,
                format!("{what}: the upload session expired before the file was complete"),
            )
            .with_backend(BACKEND)),
        }
    }

    async fn commit(&mut self) -> Result<Uploaded> {
        Err(Error::new(
            ErrorKind::Delivery,
            "the upload session accepted every byte but did not finish the file",
        )
        .with_backend(BACKEND))
    }

    async fn abort(&mut self) {
        let request = self.channel.api.client().delete(self.upload_url.clone());
        if let Err(err) = self
            .channel
            .api
            .send_anonymous("cancelling an upload session", request)
            .await
        {
            tracing::debug!(kind = %err.kind(), "could not cancel an upload session");
        }
    }
}

/// The start of the first range the server still misses (`"26-"`, `"26-127"`).
fn first_missing(ranges: &[String]) -> Result<u64> {
    ranges
        .iter()
        .filter_map(|r| r.split('-').next()?.trim().parse::<u64>().ok())
        .min()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Delivery,
                "the upload session did not say which bytes it expects next",
            )
            .with_backend(BACKEND)
        })
}
