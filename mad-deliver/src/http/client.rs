//! The HTTP client of the cloud channels, the addresses it may talk to, and how its failures
//! become [`mad_core::Error`]s.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mad_core::{Error, ErrorKind, Result, Secret};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::oauth::{Grant, TokenSource};

/// The longest wait for a TCP connection and the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of an error body that is read and the most of it quoted in a message.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_QUOTED: usize = 300;

/// A client for one channel: HTTP/1.1 over rustls with the ring provider and the public web
/// roots. Proxies from the environment are ignored and redirects are not followed, so a
/// bearer token only ever goes to the address it was meant for.
pub(crate) fn build_client(backend: &'static str, timeout: Duration) -> Result<Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("setting up TLS: {e}")).with_backend(backend))?
        .with_root_certificates(roots)
        .with_no_client_auth();

    Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .map_err(|e| {
            Error::internal(format!("setting up the HTTP client: {}", e.without_url()))
                .with_backend(backend)
        })
}

/// A base URL from the options: `https`, or plain `http` to this machine only (for local
/// doubles and gateways). User names and passwords in the URL are refused: secrets are never
/// written into definitions.
pub(crate) fn endpoint(backend: &'static str, option: &str, value: &str) -> Result<Url> {
    // A URL holding credentials is not repeated in the message.
    let shown = if value.contains('@') {
        "(hidden)"
    } else {
        value
    };
    let url = Url::parse(value.trim()).map_err(|e| {
        Error::invalid_config(format!("the {option} \"{shown}\" is not a URL: {e}"))
            .with_backend(backend)
    })?;
    check_address(&url).map_err(|problem| {
        Error::invalid_config(format!("the {option} \"{shown}\" {problem}")).with_backend(backend)
    })?;
    Ok(url)
}

/// An address the server handed out (an upload session): held to the same rules as the
/// configured ones, so a server cannot move the upload to plain HTTP elsewhere.
pub(crate) fn server_address(backend: &'static str, what: &str, value: &str) -> Result<Url> {
    let url = Url::parse(value).map_err(|_| {
        Error::new(
            ErrorKind::Delivery,
            format!("{what}: the server answered with an upload address that is not a URL"),
        )
        .with_backend(backend)
    })?;
    check_address(&url).map_err(|problem| {
        Error::new(
            ErrorKind::Delivery,
            format!("{what}: the server's upload address {problem}; nothing was sent there"),
        )
        .with_backend(backend)
    })?;
    Ok(url)
}

/// Whether `url` has the scheme, host and port of `base`, so the credentials for `base` may
/// go with a request to it.
pub(crate) fn same_origin(url: &Url, base: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
}

fn check_address(url: &Url) -> std::result::Result<(), &'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("holds a user name or password; put credentials in their secret options");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_this_machine(url) => Ok(()),
        "http" => Err("uses plain http; use https (plain http is only allowed to this machine)"),
        _ => Err("is not an http(s) URL"),
    }
}

fn is_this_machine(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
pub(crate) fn join<S: AsRef<str>>(base: &Url, segments: impl IntoIterator<Item = S>) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        for segment in segments {
            path.push(segment.as_ref());
        }
    }
    url
}

/// A request that never reached an answer: refused or lost connections, timeouts. The URL is
/// left out of the message (upload addresses carry access tokens in their query).
pub(crate) fn transport(backend: &'static str, what: &str, err: reqwest::Error) -> Error {
    let err = err.without_url();
    let (kind, advice) = if err.is_timeout() {
        (
            ErrorKind::Timeout,
            "the server did not answer in time; raise timeout_secs if uploads are large",
        )
    } else if err.is_builder() {
        (ErrorKind::Internal, "the request could not be built")
    } else if err.is_decode() {
        (ErrorKind::Delivery, "the server's answer could not be read")
    } else {
        (
            ErrorKind::Transient,
            "could not reach the server or lost the connection; check the network and the \
             configured URLs",
        )
    };
    let detail = causes(&err);
    Error::new(kind, format!("{what}: {advice} ({detail})"))
        .with_backend(backend)
        .with_source(err)
}

fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a provider's error body says, read by the channel's own `error.rs`.
#[derive(Debug, Default)]
pub(crate) struct Refusal {
    /// The kind, when the body says more than the status (a name conflict, a rate limit sent
    /// as 403).
    pub kind: Option<ErrorKind>,
    /// The provider's error code (`nameAlreadyExists`, `path/conflict/file`, ...).
    pub code: String,
    /// The provider's message.
    pub message: String,
    /// A wait the body asks for, when the header does not.
    pub retry_after: Option<Duration>,
}

/// Turns a refused request into an error of the right kind whose message says what to do.
pub(crate) fn refused(
    backend: &'static str,
    what: &str,
    status: StatusCode,
    header_wait: Option<Duration>,
    refusal: Refusal,
    secrets: &[&str],
) -> Error {
    let retry_after = header_wait.or(refusal.retry_after);
    let kind = refusal.kind.unwrap_or_else(|| match status.as_u16() {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 | 410 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        503 if retry_after.is_some() => ErrorKind::RateLimited,
        500 | 502 | 503 | 504 => ErrorKind::Transient,
        _ => ErrorKind::Delivery,
    });
    let advice = match kind {
        ErrorKind::Unauthenticated => {
            "the server refused the access token; check the app's credentials and that its \
             access was not revoked"
        }
        ErrorKind::PermissionDenied => {
            "the app may not write there; grant it access to the folder or drive"
        }
        ErrorKind::NotFound => "check the configured drive, site or folder",
        ErrorKind::AlreadyExists => {
            "a file of that name is already there and if_exists is \"fail\"; nothing was \
             replaced. Set if_exists to \"replace\" or \"rename\" to allow this"
        }
        ErrorKind::RateLimited => "the server asked to slow down; try again later",
        ErrorKind::Transient | ErrorKind::Timeout => "a temporary failure; try again",
        _ => "the server refused the request",
    };

    let mut detail = format!("HTTP {}", status.as_u16());
    for part in [&refusal.code, &refusal.message] {
        if !part.is_empty() {
            detail.push_str(", ");
            detail.push_str(&quote(part, secrets));
        }
    }
    let mut err = Error::new(kind, format!("{what}: {advice} ({detail})")).with_backend(backend);
    if let Some(wait) = retry_after.filter(|_| kind.is_retryable()) {
        err = err.with_retry_after(wait);
    }
    err
}

/// A piece of a server's text fit for a message: secrets replaced, control characters
/// dropped, shortened.
pub(crate) fn quote(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match clean.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &clean[..end]),
        None => clean,
    }
}

/// The `Retry-After` header in seconds (the date form is not read).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads the body of a refused request (at most [`MAX_ERROR_BODY`] bytes of it).
pub(crate) async fn error_body(resp: Response) -> (StatusCode, Option<Duration>, String) {
    let status = resp.status();
    let wait = retry_after(resp.headers());
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    (status, wait, String::from_utf8_lossy(&body).into_owned())
}

/// How a channel reads its provider's error bodies.
pub(crate) type ReadRefusal = fn(StatusCode, &str) -> Refusal;

/// A provider's API: the client, the access tokens, and how its refusals read.
pub(crate) struct Api {
    backend: &'static str,
    http: Client,
    tokens: TokenSource,
    read_refusal: ReadRefusal,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("backend", &self.backend)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API of a provider the app `client_id` signs in to at `token_url` with `grant`;
    /// each request may take `timeout_secs` (at least one second). Nothing is sent yet.
    pub(crate) fn signed_in(
        backend: &'static str,
        timeout_secs: u64,
        token_url: Url,
        client_id: &str,
        client_secret: Secret,
        grant: Grant,
        read_refusal: ReadRefusal,
    ) -> Result<Self> {
        let http = build_client(backend, Duration::from_secs(timeout_secs.max(1)))?;
        let tokens = TokenSource::new(
            backend,
            http.clone(),
            token_url,
            client_id,
            client_secret,
            grant,
        );
        Ok(Api {
            backend,
            http,
            tokens,
            read_refusal,
        })
    }

    /// Sends the request `build` makes, with the access token. When the server refuses the
    /// token (401), a new one is fetched and the request is sent once more.
    pub(crate) async fn send(
        &self,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response> {
        let token = self.tokens.token().await?;
        let resp = self.send_with(what, &build, &token).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }

        tracing::debug!(
            backend = self.backend,
            "access token refused; fetching a new one"
        );
        let token = self.tokens.renew(&token).await?;
        self.send_with(what, &build, &token).await
    }

    async fn send_with(
        &self,
        what: &str,
        build: &impl Fn(&Client) -> RequestBuilder,
        token: &Secret,
    ) -> Result<Response> {
        build(&self.http)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| transport(self.backend, what, e))
    }

    /// Sends a request that carries its own authorisation (an upload session address): no
    /// access token goes with it.
    pub(crate) async fn send_anonymous(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<Response> {
        request
            .send()
            .await
            .map_err(|e| transport(self.backend, what, e))
    }

    /// Sends the removal `build` makes of a file a failed delivery created. The delivery
    /// fails anyway, so a refusal or a lost connection is only logged.
    pub(crate) async fn remove_quietly(&self, build: impl Fn(&Client) -> RequestBuilder) {
        match self.send("removing a file", build).await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::debug!(
                status = resp.status().as_u16(),
                "could not remove a file of a failed delivery"
            ),
            Err(err) => {
                tracing::debug!(kind = %err.kind(), "could not remove a file of a failed delivery")
            }
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.http
    }

    /// `resp` when it succeeded, or the error its status and body say.
    pub(crate) async fn check(&self, what: &str, resp: Response) -> Result<Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.refusal(what, resp).await)
    }

    /// The error a refused response stands for.
    pub(crate) async fn refusal(&self, what: &str, resp: Response) -> Error {
        let (status, wait, body) = error_body(resp).await;
        self.refusal_of(what, status, wait, &body)
    }

    /// The error a refused response stands for, from its already read parts.
    pub(crate) fn refusal_of(
        &self,
        what: &str,
        status: StatusCode,
        wait: Option<Duration>,
        body: &str,
    ) -> Error {
        let refusal = (self.read_refusal)(status, body);
        let secrets = self.tokens.secrets();
        let secrets: Vec<&str> = secrets.iter().map(Secret::expose).collect();
        refused(self.backend, what, status, wait, refusal, &secrets)
    }

    /// The JSON body of a successful response.
    pub(crate) async fn json<T: DeserializeOwned>(&self, what: &str, resp: Response) -> Result<T> {
        let resp = self.check(what, resp).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(self.backend, what, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Delivery,
                format!("{what}: the server's answer is not what the API describes: {e}"),
            )
            .with_backend(self.backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_this_machine() {
        assert!(endpoint("t", "api_url", "https://api.example.com/2").is_ok());
        assert!(endpoint("t", "api_url", "http://127.0.0.1:8080/x").is_ok());
        assert!(endpoint("t", "api_url", "http://[::1]:80/").is_ok());
        assert!(endpoint("t", "api_url", "http://localhost/").is_ok());
        for bad in [
            "http://api.example.com/",
            "ftp://127.0.0.1/",
            "https://user:pw@api.example.com/",
            "not a url",
        ] {
            let err = endpoint("t", "api_url", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn segments_are_encoded() {
        let base = Url::parse("http://127.0.0.1/v1.0/").unwrap();
        let url = join(&base, ["drives", "b!x", "root:", "a b#?%.pdf:", "content"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1/v1.0/drives/b!x/root:/a%20b%23%3F%25.pdf:/content"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let base = Url::parse("https://upload.example.com/api/2.0").unwrap();
        let same = Url::parse("https://upload.example.com:443/api/2.0/x").unwrap();
        let other = Url::parse("https://evil.example.com/api").unwrap();
        assert!(same_origin(&same, &base));
        assert!(!same_origin(&other, &base));
    }

    #[test]
    fn refusals_map_to_kinds_and_keep_the_wait() {
        let err = refused(
            "t",
            "uploading",
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            Refusal::default(),
            &[],
        );
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let err = refused(
            "t",
            "uploading",
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            Refusal::default(),
            &[],
        );
        assert_eq!(err.kind(), ErrorKind::Transient);
        let err = refused(
            "t",
            "uploading",
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(2)),
            Refusal::default(),
            &[],
        );
        assert_eq!(err.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn quotes_hide_secrets_and_stay_short() {
        let text = format!("token abc123 leaked\n{}", "x".repeat(1000));
        let quoted = quote(&text, &["abc123"]);
        assert!(!quoted.contains("abc123"));
        assert!(!quoted.contains('\n'));
        assert!(quoted.chars().count() <= MAX_QUOTED + 3);
    }
}
