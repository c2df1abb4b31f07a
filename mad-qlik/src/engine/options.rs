//! The options of a `qlik` source, as written in definitions.

use std::path::{Path, PathBuf};

use mad_core::{Error, Result, SecretRef};
use serde::{Deserialize, Serialize};

use super::errors::BACKEND;

/// Where the engine is, which app to read and how to authenticate: the options of a `qlik`
/// source.
///
/// ```toml
/// [sources.sales]
/// kind = "qlik"
/// url = "wss://acme.eu.qlikcloud.com"
/// app = "0c6e1a4b-3f7d-4a4e-9a55-3c2f1d3b8e10"
/// auth = { mode = "api_key", api_key = "env:QLIK_API_KEY" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QlikOptions {
    /// The engine or tenant: `wss://tenant.region.qlikcloud.com`, `wss://host/prefix` (a
    /// virtual proxy), `wss://host:4747` (the engine port). `https://` and `http://` are
    /// read as `wss://` and `ws://`.
    pub url: String,
    /// The app id (a GUID on Qlik Sense and Qlik Cloud).
    pub app: String,
    #[serde(default)]
    pub auth: QlikAuth,
    /// Read this existing object (a chart or table of the app, with its master items)
    /// instead of building a hypercube from the report's columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// A field unique per row (such as `Row ID`) added as a hidden dimension to queries
    /// without measures, so rows with equal values in every asked column stay separate rows
    /// (in load order) instead of collapsing into one distinct combination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_key: Option<String>,
    /// Engine sessions open at once per user (at most 5, the proxies' limit).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Seconds to wait for one engine answer before cancelling the request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: f64,
    /// How often a fetch that failed on a dropped connection or an aborted request is run
    /// again from the start, with a growing pause in between.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// PEM file of a private CA to trust (a client-managed site's `root.pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate; for tests against throwaway servers only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_invalid_certs_dangerous: bool,
    /// The `Origin` header the sockets send (`https://host[:port]`), for proxies that accept
    /// WebSockets only from the hosts on their allow-list. None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

fn default_max_sessions() -> usize {
    4
}

fn default_request_timeout() -> f64 {
    60.0
}

fn default_retries() -> u32 {
    3
}

/// How the source authenticates, by `mode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum QlikAuth {
    /// No authentication (Qlik Core, or an engine behind a proxy that adds it).
    #[default]
    None,
    /// Qlik Cloud: `Authorization: Bearer <api key>` on the socket and on REST calls.
    ApiKey { api_key: SecretRef },
    /// Client-managed, straight to the engine port (4747): mutual TLS with the certificate
    /// and key exported from the QMC, plus `X-Qlik-User` naming the user.
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        /// The site's CA (`root.pem`); `ca_file` works too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root: Option<PathBuf>,
        user_directory: String,
        user_id: String,
    },
    /// Client-managed, through a header-authentication virtual proxy: the header `header`
    /// carries the user id. With `csrf_token`, for CSRF-protected proxies, each identity
    /// first gets a proxy session at `GET <url>/qps/csrftoken` (sending the header), and its
    /// sockets send the session's cookies and `?qlik-csrf-token=` besides the header.
    Header {
        header: String,
        user: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        csrf_token: bool,
    },
    /// Client-managed, through a proxy that issues a session cookie and CSRF token for a
    /// bearer login (a signed JWT): `GET <url>/qps/csrftoken` with the login, then the socket
    /// with the cookie and `?qlik-csrf-token=`, and no Authorization header.
    SessionCookie {
        login: SecretRef,
        #[serde(default = "default_cookie")]
        cookie: String,
    },
    /// Windows authentication (NTLM or Kerberos). Not supported: configure the virtual proxy
    /// for header, certificate or JWT (session-cookie) authentication instead.
    Windows {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
}

fn default_cookie() -> String {
    "X-Qlik-Session".to_string()
}

/// Headers the proxies reserve; a header-authentication proxy cannot use them.
const RESERVED_HEADERS: [&str; 4] = [
    "x-qlik-security",
    "x-qlik-user",
    "x-qlik-proxysession",
    "x-qlik-xrfkey",
];

impl QlikAuth {
    /// The mode's name as written in definitions.
    pub fn mode(&self) -> &'static str {
        match self {
            QlikAuth::None => "none",
            QlikAuth::ApiKey { .. } => "api_key",
            QlikAuth::Certificate { .. } => "certificate",
            QlikAuth::Header { .. } => "header",
            QlikAuth::SessionCookie { .. } => "session_cookie",
            QlikAuth::Windows { .. } => "windows",
        }
    }

    /// Whether each fetch can run as its own user (the recipient's identity).
    pub fn supports_identity(&self) -> bool {
        matches!(self, QlikAuth::Certificate { .. } | QlikAuth::Header { .. })
    }

    fn resolve_paths(&mut self, base: impl Fn(&Path) -> PathBuf) {
        if let QlikAuth::Certificate {
            cert, key, root, ..
        } = self
        {
            *cert = base(cert);
            *key = base(key);
            if let Some(root) = root {
                *root = base(root);
            }
        }
    }
}

impl QlikOptions {
    /// Options for an app with no authentication and the defaults.
    pub fn new(url: impl Into<String>, app: impl Into<String>) -> Self {
        QlikOptions {
            url: url.into(),
            app: app.into(),
            auth: QlikAuth::None,
            object: None,
            row_key: None,
            max_sessions: default_max_sessions(),
            request_timeout: default_request_timeout(),
            retries: default_retries(),
            ca_file: None,
            accept_invalid_certs_dangerous: false,
            origin: None,
        }
    }

    pub fn with_auth(mut self, auth: QlikAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Makes relative file paths (certificates, CA) relative to `base` instead.
    pub fn resolve_paths(&mut self, base: impl Fn(&Path) -> PathBuf) {
        self.auth.resolve_paths(&base);
        if let Some(ca) = &self.ca_file {
            self.ca_file = Some(base(ca));
        }
    }

    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::invalid_config(message).with_backend(BACKEND));
        if self.app.trim().is_empty() {
            return invalid("the qlik source needs an app id (option app)".into());
        }
        if !(1..=5).contains(&self.max_sessions) {
            return invalid(format!(
                "max_sessions is {}; it must be between 1 and 5, since Qlik's proxies refuse a \
                 user's sixth session",
                self.max_sessions
            ));
        }
        if !(self.request_timeout.is_finite() && self.request_timeout > 0.0) {
            return invalid("request_timeout must be a positive number of seconds".into());
        }
        if let Some(origin) = &self.origin {
            check_origin(origin)?;
        }
        match &self.auth {
            QlikAuth::Header { header, user, .. } => {
                if RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
                    return invalid(format!(
                        "{header} is reserved by the Qlik proxy; use the header name configured \
                         on the virtual proxy"
                    ));
                }
                if !user.is_ascii() || user.is_empty() {
                    return invalid("the header user must be non-empty US-ASCII".into());
                }
            }
            QlikAuth::Windows { .. } => {
                return Err(Error::unsupported(
                    BACKEND,
                    "Windows (NTLM/Kerberos) authentication; configure the virtual proxy for \
                     header authentication (mode = \"header\"), use the QMC-exported client \
                     certificates on the engine port (mode = \"certificate\"), or a JWT login \
                     (mode = \"session_cookie\")",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// An origin is a scheme and a host, with a port at most: what a browser sends.
fn check_origin(origin: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(origin).ok();
    let serialized = parsed
        .as_ref()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .map(|url| url.origin().ascii_serialization());
    if serialized.as_deref() == Some(origin.trim_end_matches('/')) {
        return Ok(());
    }
    Err(Error::invalid_config(format!(
        "the origin '{origin}' must be a scheme and a host such as https://reports.example.com          (a port is allowed, a path is not)"
    ))
    .with_backend(BACKEND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_modes_read_from_toml() {
        let options: QlikOptions = toml::from_str(
            r#"
            url = "wss://tenant.example"
            app = "abc"
            auth = { mode = "api_key", api_key = "env:QLIK_API_KEY" }
            "#,
        )
        .unwrap();
        assert_eq!(options.auth.mode(), "api_key");
        assert_eq!(options.max_sessions, 4);
        let err = toml::from_str::<QlikOptions>(
            r#"
            url = "wss://tenant.example"
            app = "abc"
            auth = { mode = "api_key", api_key = "env:K", extra = 1 }
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn windows_is_refused_naming_the_alternatives() {
        let options = QlikOptions::new("wss://h", "a").with_auth(QlikAuth::Windows { user: None });
        let err = options.validate().unwrap_err();
        assert_eq!(err.kind(), mad_core::ErrorKind::Unsupported);
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn an_origin_is_a_scheme_and_a_host() {
        let mut options = QlikOptions::new("wss://h", "a");
        for good in ["https://reports.example.com", "http://localhost:8080"] {
            options.origin = Some(good.into());
            options.validate().unwrap();
        }
        for bad in ["reports.example.com", "https://h/path", "ftp://h", ""] {
            options.origin = Some(bad.into());
            let err = options.validate().unwrap_err();
            assert!(err.to_string().contains("origin"), "{bad}: {err}");
        }
    }

    #[test]
    fn more_than_five_sessions_is_refused() {
        let mut options = QlikOptions::new("wss://h", "a");
        options.max_sessions = 6;
        assert!(options.validate().is_err());
    }
}
