//! The Qlik Cloud REST client: apps, items, reloads and server-side reports.
//!
//! Every call sends `Authorization: Bearer <api key>`. A `429 Too Many Requests` answer is
//! waited out as its `Retry-After` header says (up to a limit) and the call is sent again;
//! report creation is also paced on the client side to the tenant's 10 per minute. Errors
//! carry the kind the HTTP status stands for and the `errors[].title`/`detail` Qlik sends.

mod reports;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use mad_core::{Error, ErrorKind, Result, Secret};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value as Json, json};

pub use self::reports::{ReportOutput, ReportRequest, ReportStatus, ReportTicket};
use crate::tls::TlsSettings;

const BACKEND: &str = "qlik-cloud";

/// Builds a [`CloudClient`].
#[derive(Debug, Clone)]
pub struct CloudClientBuilder {
    tenant: String,
    api_key: Option<Secret>,
    tls: TlsSettings,
    poll_interval: Duration,
    max_rate_limit_wait: Duration,
    rate_limit_retries: u32,
    report_rate: (usize, Duration),
    timeout: Duration,
    page_size: usize,
}

impl CloudClientBuilder {
    /// Items asked for per page when listing (1 to 100, default 100).
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.clamp(1, 100);
        self
    }

    /// The API key (from the tenant's profile settings, or an OAuth access token).
    pub fn with_api_key(mut self, key: Secret) -> Self {
        self.api_key = Some(key);
        self
    }

    /// A private CA to trust besides the public roots.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Accepts any server certificate; for tests against throwaway servers only.
    pub fn accept_invalid_certs_dangerous(mut self) -> Self {
        self.tls.accept_invalid_certs_dangerous = true;
        self
    }

    /// How often a reload or report is asked for its status (default 2 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The longest `Retry-After` waited out before giving up with `RateLimited`
    /// (default 60 s), and how many times a rate-limited call is sent again (default 5).
    pub fn with_rate_limit_wait(mut self, longest: Duration, retries: u32) -> Self {
        self.max_rate_limit_wait = longest;
        self.rate_limit_retries = retries;
        self
    }

    /// Report requests created at most `count` per `window` (default 10 per minute, the
    /// tenant's limit).
    pub fn with_report_rate(mut self, count: usize, window: Duration) -> Self {
        self.report_rate = (count.max(1), window);
        self
    }

    /// The timeout of one HTTP request (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn build(self) -> Result<CloudClient> {
        let api_key = self.api_key.ok_or_else(|| {
            Error::invalid_config("the Qlik Cloud client needs an API key").with_backend(BACKEND)
        })?;
        let base = tenant_url(&self.tenant)?;
        let tls = self.tls.client_config(BACKEND)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| {
                Error::internal(format!("building the HTTP client: {e}")).with_backend(BACKEND)
            })?;
        Ok(CloudClient {
            http,
            base,
            api_key,
            poll_interval: self.poll_interval,
            max_rate_limit_wait: self.max_rate_limit_wait,
            rate_limit_retries: self.rate_limit_retries,
            report_rate: self.report_rate,
            report_pace: Mutex::new(ReportPace::default()),
            page_size: self.page_size,
        })
    }
}

/// A client of one Qlik Cloud tenant's REST API.
pub struct CloudClient {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    poll_interval: Duration,
    max_rate_limit_wait: Duration,
    rate_limit_retries: u32,
    report_rate: (usize, Duration),
    report_pace: Mutex<ReportPace>,
    page_size: usize,
}

impl fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudClient")
            .field("tenant", &self.base.as_str())
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// An app's attributes (`GET /api/v1/apps/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAttributes {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub last_reload_time: String,
    #[serde(default)]
    pub owner_id: String,
    #[serde(default)]
    pub published: bool,
    #[serde(default)]
    pub has_section_access: bool,
}

/// An item of the tenant's catalogue (`GET /api/v1/items`); for apps, `resource_id` is the
/// app id the Engine API opens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resource_id: String,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub space_id: Option<String>,
    #[serde(default)]
    pub updated_at: String,
}

/// A reload of an app (`/api/v1/reloads`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reload {
    pub id: String,
    pub app_id: String,
    /// `QUEUED`, `RELOADING`, `CANCELING`, `SUCCEEDED`, `FAILED`, `CANCELED`, ...
    pub status: String,
    #[serde(default)]
    pub log: String,
}

impl Reload {
    /// Whether the reload has ended, well or not.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "SUCCEEDED" | "FAILED" | "CANCELED" | "EXCEEDED_LIMIT"
        )
    }
}

impl CloudClient {
    /// A client for the tenant at `tenant` (`https://acme.eu.qlikcloud.com`).
    pub fn builder(tenant: impl Into<String>) -> CloudClientBuilder {
        CloudClientBuilder {
            tenant: tenant.into(),
            api_key: None,
            tls: TlsSettings::default(),
            poll_interval: Duration::from_secs(2),
            max_rate_limit_wait: Duration::from_secs(60),
            rate_limit_retries: 5,
            report_rate: (10, Duration::from_secs(60)),
            timeout: Duration::from_secs(60),
            page_size: 100,
        }
    }

    /// The tenant's base URL.
    pub fn tenant(&self) -> &Url {
        &self.base
    }

    /// An app's attributes.
    pub async fn app(&self, app_id: &str) -> Result<AppAttributes> {
        let url = self.url(&["api", "v1", "apps", app_id])?;
        let body: Json = self.json(Method::GET, url, None).await?;
        serde_json::from_value(body["attributes"].clone())
            .map_err(|e| unexpected(&format!("the app {app_id}"), e))
    }

    /// Every app the key's user can see (items of type `app`).
    pub async fn apps(&self) -> Result<Vec<Item>> {
        self.items(&[("resourceType", "app")]).await
    }

    /// Items matching `query` (pairs such as `("resourceType", "app")`, `("name", "Sales")`),
    /// following the `next` links until the last page.
    pub async fn items(&self, query: &[(&str, &str)]) -> Result<Vec<Item>> {
        let mut url = self.url(&["api", "v1", "items"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("limit", &self.page_size.to_string());
        }
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let page = self.json(Method::GET, url, None).await?;
            let data: Vec<Item> = serde_json::from_value(page["data"].clone())
                .map_err(|e| unexpected("the items list", e))?;
            items.extend(data);
            if let Some(href) = page["links"]["next"]["href"].as_str() {
                next = Some(self.same_origin(href)?);
            }
        }
        Ok(items)
    }

    /// Starts a reload of `app_id`.
    pub async fn reload(&self, app_id: &str) -> Result<Reload> {
        let url = self.url(&["api", "v1", "reloads"])?;
        let body = self
            .json(
                Method::POST,
                url,
                Some(json!({"appId": app_id, "partial": false})),
            )
            .await?;
        serde_json::from_value(body).map_err(|e| unexpected("the reload", e))
    }

    /// A reload's current state.
    pub async fn reload_status(&self, reload_id: &str) -> Result<Reload> {
        let url = self.url(&["api", "v1", "reloads", reload_id])?;
        let body = self.json(Method::GET, url, None).await?;
        serde_json::from_value(body).map_err(|e| unexpected("the reload", e))
    }

    /// Reloads `app_id` and waits until the reload ends, for "run after reload". A reload
    /// that fails or is cancelled is a `DataSource` error; one still running after `limit`
    /// is `Timeout`.
    pub async fn reload_and_wait(&self, app_id: &str, limit: Duration) -> Result<Reload> {
        let started = Instant::now();
        let mut reload = self.reload(app_id).await?;
        while !reload.is_finished() {
            if started.elapsed() >= limit {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the reload {} of app {app_id} was still {} after {limit:?}",
                        reload.id, reload.status
                    ),
                )
                .with_backend(BACKEND));
            }
            tokio::time::sleep(self.poll_interval).await;
            reload = self.reload_status(&reload.id).await?;
        }
        if reload.status != "SUCCEEDED" {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the reload {} of app {app_id} ended {}; see its log in the tenant",
                    reload.id, reload.status
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(reload)
    }

    /// A URL on the tenant from path segments (each percent-encoded).
    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| {
                Error::internal("the tenant url cannot take a path").with_backend(BACKEND)
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A URL the tenant handed back (a `Location` or a `next` link), refused when it points
    /// at another host: the API key is only ever sent to the tenant.
    fn same_origin(&self, href: &str) -> Result<Url> {
        let url = self.base.join(href).map_err(|e| {
            Error::new(
                ErrorKind::DataSource,
                format!("the tenant returned a bad link '{href}': {e}"),
            )
            .with_backend(BACKEND)
        })?;
        if url.origin() != self.base.origin() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the tenant pointed to {}, another host; the API key is not sent there",
                    url.origin().ascii_serialization()
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(url)
    }

    async fn json(&self, method: Method, url: Url, body: Option<Json>) -> Result<Json> {
        let what = format!("{method} {}", url.path());
        let response = self
            .send(|| {
                let request = self.http.request(method.clone(), url.clone());
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        response
            .json::<Json>()
            .await
            .map_err(|e| unexpected(&what, e))
    }

    /// Sends a request built by `build` with the API key, waiting out 429 answers as the
    /// server's `Retry-After` says; any other failure status is an error of its kind.
    async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let response = build()
                .bearer_auth(self.api_key.expose())
                .send()
                .await
                .map_err(transport_error)?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&response);
                if attempt < self.rate_limit_retries && wait <= self.max_rate_limit_wait {
                    attempt += 1;
                    tracing::info!(
                        backend = BACKEND,
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "rate limited; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let detail = error_detail(response).await;
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!("the tenant's rate limit was reached ({detail}); try again later"),
                )
                .with_retry_after(wait)
                .with_backend(BACKEND));
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(status_error(response).await);
        }
    }

    /// Waits until a report may be created without passing the report rate, and holds one
    /// of the window's slots until the returned guard is dropped.
    ///
    /// A slot's window starts when the creation's answer arrives, not when it is sent: the
    /// tenant counts a request when it arrives, which is somewhere between the two, so a
    /// window measured from the answer never ends before the tenant's does, however long the
    /// request took on the way.
    async fn pace_report(&self) -> ReportSlot<'_> {
        let (count, window) = self.report_rate;
        loop {
            let wait = {
                let mut pace = self.report_pace.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                pace.forget_before(now, window);
                if pace.finished.len() + pace.in_flight < count {
                    pace.in_flight += 1;
                    return ReportSlot {
                        pace: &self.report_pace,
                    };
                }
                match pace.finished.front() {
                    Some(oldest) => window.saturating_sub(now.duration_since(*oldest)),
                    None => IN_FLIGHT_POLL,
                }
            };
            tracing::debug!(
                backend = BACKEND,
                wait_ms = wait.as_millis() as u64,
                "pacing report requests"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// How often a report creation waiting for slots that are all in flight looks again.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);

/// The report creations of the current window: when each answered, and how many are still
/// waiting for their answer.
#[derive(Debug, Default)]
struct ReportPace {
    finished: VecDeque<Instant>,
    in_flight: usize,
}

impl ReportPace {
    fn forget_before(&mut self, now: Instant, window: Duration) {
        while self
            .finished
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.finished.pop_front();
        }
    }
}

/// A report creation's place in the rate window; dropping it (answered, failed or
/// cancelled) starts its window.
struct ReportSlot<'a> {
    pace: &'a Mutex<ReportPace>,
}

impl Drop for ReportSlot<'_> {
    fn drop(&mut self) {
        let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
        pace.in_flight -= 1;
        pace.finished.push_back(Instant::now());
    }
}

fn tenant_url(written: &str) -> Result<Url> {
    let mut url = Url::parse(written.trim()).map_err(|e| {
        Error::invalid_config(format!(
            "the tenant url '{written}' is not a URL ({e}); write it as https://tenant.region.qlikcloud.com"
        ))
        .with_backend(BACKEND)
    })?;
    match url.scheme() {
        "https" | "http" => {}
        "wss" => url
            .set_scheme("https")
            .map_err(|_| Error::internal("scheme"))?,
        other => {
            return Err(Error::invalid_config(format!(
                "the tenant url uses '{other}'; use https://"
            ))
            .with_backend(BACKEND));
        }
    }
    if url.host_str().is_none() {
        return Err(
            Error::invalid_config(format!("the tenant url '{written}' has no host"))
                .with_backend(BACKEND),
        );
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The wait a 429 answer asks for: `Retry-After` in seconds or as an HTTP date (a date in
/// the past is no wait); one second when the header is missing or unreadable.
fn retry_after(response: &Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
        .unwrap_or(Duration::from_secs(1))
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let until = httpdate::parse_http_date(value).ok()?;
    Some(until.duration_since(now).unwrap_or(Duration::ZERO))
}

fn transport_error(err: reqwest::Error) -> Error {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transient
    };
    // reqwest's message names the URL, which holds no secret (the key is a header).
    Error::new(kind, format!("the request to the tenant failed: {err}")).with_backend(BACKEND)
}

fn unexpected(what: &str, err: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::DataSource,
        format!("the tenant's answer for {what} is not what the API describes: {err}"),
    )
    .with_backend(BACKEND)
}

/// The `errors[0]` title and detail of a Qlik error body, or the status text.
async fn error_detail(response: Response) -> String {
    let status = response.status();
    let body: Json = response.json().await.unwrap_or(Json::Null);
    let first = &body["errors"][0];
    let parts: Vec<&str> = ["code", "title", "detail"]
        .iter()
        .filter_map(|k| first[*k].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        status.to_string()
    } else {
        parts.join(": ")
    }
}

async fn status_error(response: Response) -> Error {
    let status = response.status();
    let path = response.url().path().to_string();
    let kind = match status.as_u16() {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 | 410 => ErrorKind::NotFound,
        409 => ErrorKind::AlreadyExists,
        400 | 422 => ErrorKind::InvalidConfig,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::DataSource,
    };
    let advice = match kind {
        ErrorKind::Unauthenticated => "; check the API key",
        ErrorKind::PermissionDenied => "; the key's user lacks access",
        _ => "",
    };
    let detail = error_detail(response).await;
    Error::new(
        kind,
        format!("{path} answered HTTP {}: {detail}{advice}", status.as_u16()),
    )
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let wait = |v: &str| parse_retry_after(v, now);
        assert_eq!(wait("120"), Some(Duration::from_secs(120)));
        assert_eq!(wait(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(wait("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("-3"), None);
        assert_eq!(wait("soon"), None);
    }

    #[test]
    fn debug_hides_the_key() {
        let client = CloudClient::builder("https://tenant.example")
            .with_api_key(Secret::new("key-1234-very-secret"))
            .build()
            .unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn links_to_other_hosts_are_refused() {
        let client = CloudClient::builder("https://tenant.example")
            .with_api_key(Secret::new("k"))
            .build()
            .unwrap();
        assert!(client.same_origin("/api/v1/items?next=x").is_ok());
        let err = client
            .same_origin("https://elsewhere.example/x")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }
}
