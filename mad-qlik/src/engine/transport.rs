//! Opening the WebSocket: TCP, TLS (rustls with ring) and the HTTP upgrade with the
//! authentication headers, with handshake failures turned into errors that say what to fix.

use std::sync::Arc;
use std::time::Duration;

use mad_core::{Error, ErrorKind, Result, Secret};
use reqwest::Url;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self};

use super::errors::BACKEND;
use super::rpc::{Io, Socket};

/// Everything needed to open one socket: the URL and the headers (values may be secret).
pub(crate) struct Handshake<'a> {
    pub url: &'a Url,
    pub headers: &'a [(String, Secret)],
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
    pub presents_certificate: bool,
    pub timeout: Duration,
}

/// Opens the socket, or explains why the engine (or its proxy) refused it.
pub(crate) async fn open_socket(handshake: Handshake<'_>) -> Result<Socket> {
    match tokio::time::timeout(handshake.timeout, open(&handshake)).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "connecting to {} took longer than {:?}",
                redacted(handshake.url),
                handshake.timeout
            ),
        )
        .with_backend(BACKEND)),
    }
}

async fn open(handshake: &Handshake<'_>) -> Result<Socket> {
    let url = handshake.url;
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid_config(format!("the engine url {url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| {
            Error::io(format!("connecting to the engine at {host}:{port}"), e).with_backend(BACKEND)
        })?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = match (url.scheme(), handshake.tls) {
        ("wss", Some(config)) => {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| Error::invalid_config(format!("{host} is not a valid host name")))?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| tls_error(e, handshake.presents_certificate))?;
            Box::new(tls)
        }
        _ => Box::new(tcp),
    };

    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::invalid_config(format!("the engine url is not usable: {e}")))?;
    for (name, value) in handshake.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::invalid_config(format!("'{name}' is not a valid header name")))?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            Error::invalid_config(format!(
                "the value of the header {name} must be visible US-ASCII"
            ))
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(name, value);
    }
    let (socket, _) = client_async(request, stream)
        .await
        .map_err(|e| handshake_error(e, url, handshake.presents_certificate))?;
    Ok(socket)
}

/// The URL without its query, which may carry a CSRF token.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn tls_error(err: std::io::Error, presents_certificate: bool) -> Error {
    use rustls::AlertDescription as Alert;
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .cloned();
    let (kind, message) = match inner {
        Some(rustls::Error::InvalidCertificate(reason)) => (
            ErrorKind::InvalidConfig,
            format!(
                "the engine's TLS certificate is not trusted ({reason:?}); set ca_file to the \
                 PEM of the CA that issued it"
            ),
        ),
        Some(rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateRequired
            | Alert::CertificateUnknown
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::AccessDenied
            | Alert::DecryptError,
        )) if presents_certificate => (
            ErrorKind::Unauthenticated,
            "the engine refused the client certificate; use the client.pem and client_key.pem \
             exported from this site's QMC"
                .to_string(),
        ),
        Some(other) => (
            ErrorKind::Transient,
            format!("the TLS handshake failed: {other}"),
        ),
        None => (
            ErrorKind::Transient,
            format!("the TLS handshake failed: {err}"),
        ),
    };
    Error::new(kind, message).with_backend(BACKEND)
}

fn handshake_error(err: tungstenite::Error, url: &Url, presents_certificate: bool) -> Error {
    let shown = redacted(url);
    // With TLS 1.3 the server judges a client certificate after the handshake, so its
    // refusal arrives as an alert while the upgrade is read.
    if let tungstenite::Error::Io(io) = err {
        if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) {
            return tls_error(io, presents_certificate);
        }
        return Error::io(format!("the WebSocket handshake with {shown}"), io)
            .with_backend(BACKEND);
    }
    let tungstenite::Error::Http(response) = err else {
        return Error::new(
            ErrorKind::Transient,
            format!("the WebSocket handshake with {shown} failed: {err}"),
        )
        .with_backend(BACKEND);
    };
    let status = response.status().as_u16();
    let body = response
        .body()
        .as_deref()
        .map(|b| {
            String::from_utf8_lossy(b)
                .chars()
                .take(200)
                .collect::<String>()
        })
        .unwrap_or_default();
    let (kind, advice) = match status {
        401 => (
            ErrorKind::Unauthenticated,
            "the credentials were missing or not accepted",
        ),
        403 => (
            ErrorKind::PermissionDenied,
            "the credentials were accepted but this access is not allowed",
        ),
        404 => (
            ErrorKind::NotFound,
            "no engine answers on this path; check the url and the virtual-proxy prefix",
        ),
        429 => (
            ErrorKind::RateLimited,
            "too many connections; try again later",
        ),
        500..=599 => (ErrorKind::Transient, "the server failed; try again later"),
        _ => (
            ErrorKind::DataSource,
            "the server refused the WebSocket upgrade",
        ),
    };
    let detail = if body.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", body.trim())
    };
    Error::new(
        kind,
        format!("{shown} answered HTTP {status}: {advice}{detail}"),
    )
    .with_backend(BACKEND)
}
