//! Turning options into engine sessions: the URL, the authentication headers per identity,
//! the proxy's session cookie and CSRF token, and the app opened on the new socket.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mad_core::{Error, ErrorKind, Result, Secret};
use reqwest::Url;
use serde_json::json;

use super::errors::BACKEND;
use super::options::{QlikAuth, QlikOptions};
use super::rpc::RpcConnection;
use super::session::EngineSession;
use super::transport::{Handshake, open_socket, redacted};
use crate::tls::TlsSettings;

/// How long a new socket waits for `OnConnected` before assuming a new session.
const GREETING_WAIT: Duration = Duration::from_secs(5);

/// Authentication with its secrets read.
enum Credentials {
    None,
    ApiKey(Secret),
    Certificate {
        directory: String,
        user: String,
    },
    Header {
        header: String,
        user: String,
        csrf_token: bool,
    },
    SessionCookie {
        login: Secret,
        cookie: String,
    },
}

/// A proxy session: the cookies and the CSRF token that go with them.
struct ProxySession {
    cookie: Secret,
    csrf_token: Secret,
}

/// Opens engine sessions for one app: each on its own socket and with its own selection
/// state (a distinct `/identity/<label>` in the URL), authenticated as the source's user or
/// as a recipient's identity where the authentication mode allows it.
pub struct Connector {
    base: Url,
    app: String,
    credentials: Credentials,
    presents_certificate: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    http: Option<reqwest::Client>,
    request_timeout: Duration,
    origin: Option<String>,
    /// Proxy sessions by identity (empty for the source's own user).
    proxy_sessions: tokio::sync::Mutex<HashMap<String, ProxySession>>,
    run_tag: String,
    next_label: AtomicU64,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.credentials {
            Credentials::None => "none",
            Credentials::ApiKey(_) => "api_key",
            Credentials::Certificate { .. } => "certificate",
            Credentials::Header { .. } => "header",
            Credentials::SessionCookie { .. } => "session_cookie",
        };
        f.debug_struct("Connector")
            .field("url", &redacted(&self.base))
            .field("app", &self.app)
            .field("auth", &mode)
            .finish()
    }
}

impl Connector {
    /// Checks the options, reads the secrets and certificates, and prepares TLS.
    pub fn new(options: &QlikOptions) -> Result<Self> {
        options.validate()?;
        let base = engine_url(&options.url)?;
        let (credentials, client_certificate) = match &options.auth {
            QlikAuth::None => (Credentials::None, None),
            QlikAuth::ApiKey { api_key } => (Credentials::ApiKey(api_key.resolve()?), None),
            QlikAuth::Certificate {
                cert,
                key,
                user_directory,
                user_id,
                ..
            } => (
                Credentials::Certificate {
                    directory: user_directory.clone(),
                    user: user_id.clone(),
                },
                Some((cert.clone(), key.clone())),
            ),
            QlikAuth::Header {
                header,
                user,
                csrf_token,
            } => (
                Credentials::Header {
                    header: header.clone(),
                    user: user.clone(),
                    csrf_token: *csrf_token,
                },
                None,
            ),
            QlikAuth::SessionCookie { login, cookie } => (
                Credentials::SessionCookie {
                    login: login.resolve()?,
                    cookie: cookie.clone(),
                },
                None,
            ),
            QlikAuth::Windows { .. } => unreachable!("refused by validate"),
        };
        let root = match &options.auth {
            QlikAuth::Certificate { root, .. } => root.clone(),
            _ => None,
        };
        let settings = TlsSettings {
            ca_file: options.ca_file.clone().or(root),
            client_certificate,
            accept_invalid_certs_dangerous: options.accept_invalid_certs_dangerous,
        };
        let presents_certificate = settings.client_certificate.is_some();
        let tls = match base.scheme() {
            "wss" => Some(settings.client_config(BACKEND)?),
            _ if presents_certificate => {
                return Err(
                    Error::invalid_config("certificate authentication needs a wss:// url")
                        .with_backend(BACKEND),
                );
            }
            _ => None,
        };
        let request_timeout = Duration::from_secs_f64(options.request_timeout);
        let exchanges_token = matches!(
            credentials,
            Credentials::SessionCookie { .. }
                | Credentials::Header {
                    csrf_token: true,
                    ..
                }
        );
        let http = match exchanges_token {
            true => Some(http_client(tls.clone(), request_timeout)?),
            false => None,
        };
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Connector {
            base,
            app: options.app.clone(),
            credentials,
            presents_certificate,
            tls,
            http,
            request_timeout,
            origin: options.origin.clone(),
            proxy_sessions: tokio::sync::Mutex::new(HashMap::new()),
            run_tag: format!("{:x}{:x}", std::process::id(), since.as_micros()),
            next_label: AtomicU64::new(1),
        })
    }

    /// The app sessions open.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Whether sessions can be opened as a given identity.
    pub fn supports_identity(&self) -> bool {
        matches!(
            self.credentials,
            Credentials::Certificate { .. } | Credentials::Header { .. }
        )
    }

    /// Opens a new engine session with its own selection state and the app open, as the
    /// source's user or, where the authentication mode allows, as `identity`.
    pub async fn connect(&self, identity: Option<&str>) -> Result<EngineSession> {
        let headers = self.headers(identity)?;
        let label = format!(
            "mad-{}-{}",
            self.run_tag,
            self.next_label.fetch_add(1, Ordering::Relaxed)
        );
        let mut url = self.base.clone();
        let path = format!(
            "{}/app/{}/identity/{label}",
            url.path().trim_end_matches('/'),
            percent_encode(&self.app)
        );
        url.set_path(&path);

        let who = identity.unwrap_or_default();
        let socket = match self.open_with_proxy_session(&url, &headers, who).await {
            Err(err) if err.kind() == ErrorKind::Unauthenticated && self.http.is_some() => {
                // The proxy session may have expired: log in again once.
                self.proxy_sessions.lock().await.remove(who);
                self.open_with_proxy_session(&url, &headers, who).await?
            }
            other => other?,
        };
        let (rpc, state) =
            RpcConnection::start(socket, self.request_timeout, GREETING_WAIT).await?;
        tracing::debug!(backend = BACKEND, ?state, "engine session connected");
        let mut session = EngineSession::new(rpc, state);
        if let Some(identity) = identity {
            self.check_served_as(&session, identity).await?;
        }
        session.open_doc(&self.app).await?;
        Ok(session)
    }

    /// Fails closed unless the engine authenticated the session as `identity`: a proxy
    /// that ignores the user it is sent (a static or anonymous user) would otherwise serve
    /// one recipient another user's data.
    async fn check_served_as(&self, session: &EngineSession, identity: &str) -> Result<()> {
        let answer = session.call(-1, "GetAuthenticatedUser", json!([])).await?;
        let reported = answer["qReturn"].as_str().unwrap_or("");
        let served = ServedUser::parse(reported);
        if served
            .as_ref()
            .is_some_and(|served| served.is(&self.asked_user(identity)))
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the engine served the session as '{}' instead of the identity '{identity}'; \
                 the recipient is not served",
                served.map_or_else(|| reported.to_string(), |s| s.qualified())
            ),
        )
        .with_backend(BACKEND))
    }

    /// The user the engine should report for `identity`: the directory is known for
    /// certificates (the configured one unless the identity names its own); behind a header
    /// proxy it is only known when the identity names it.
    fn asked_user(&self, identity: &str) -> AskedUser {
        let split = identity.split_once('\\');
        let (directory, id) = match split {
            Some((directory, id)) => (Some(directory.to_string()), id.to_string()),
            None => (None, identity.to_string()),
        };
        match &self.credentials {
            Credentials::Certificate { directory: own, .. } => AskedUser {
                directory: directory.or_else(|| Some(own.clone())),
                id,
                whole_id: None,
            },
            _ => AskedUser {
                directory,
                id,
                whole_id: split.map(|_| identity.to_string()),
            },
        }
    }

    /// Opens the socket; where the proxy wants a proxy session, with the cookies and CSRF
    /// token of `who`'s (exchanged first when there is none yet).
    async fn open_with_proxy_session(
        &self,
        url: &Url,
        headers: &[(String, Secret)],
        who: &str,
    ) -> Result<super::rpc::Socket> {
        let mut url = url.clone();
        let mut headers = headers.to_vec();
        if let Some(origin) = &self.origin {
            headers.push(("Origin".into(), Secret::new(origin.clone())));
        }
        if self.http.is_some() {
            let mut sessions = self.proxy_sessions.lock().await;
            if !sessions.contains_key(who) {
                let session = self.log_in(&headers).await?;
                sessions.insert(who.to_string(), session);
            }
            if let Some(session) = sessions.get(who) {
                url.query_pairs_mut()
                    .append_pair("qlik-csrf-token", session.csrf_token.expose());
                headers.push(("Cookie".into(), session.cookie.clone()));
            }
        }
        open_socket(Handshake {
            url: &url,
            headers: &headers,
            tls: self.tls.as_ref(),
            presents_certificate: self.presents_certificate,
            timeout: self.request_timeout,
        })
        .await
    }

    /// The handshake headers for `identity` (or the configured user).
    fn headers(&self, identity: Option<&str>) -> Result<Vec<(String, Secret)>> {
        let refuse = |why: &str| {
            Err(Error::unsupported(
                BACKEND,
                format!(
                    "fetching as a per-recipient identity with {why}; use certificate or header \
                     authentication for per-recipient access"
                ),
            ))
        };
        match &self.credentials {
            Credentials::None if identity.is_some() => refuse("no authentication"),
            Credentials::None => Ok(Vec::new()),
            Credentials::ApiKey(_) if identity.is_some() => {
                refuse("an API key, which always acts as its owner")
            }
            Credentials::ApiKey(key) => Ok(vec![(
                "Authorization".into(),
                Secret::new(format!("Bearer {}", key.expose())),
            )]),
            Credentials::SessionCookie { .. } if identity.is_some() => {
                refuse("a session-cookie login, which always acts as its owner")
            }
            Credentials::SessionCookie { .. } => Ok(Vec::new()),
            Credentials::Certificate { directory, user } => {
                let (directory, user) = match identity {
                    Some(id) => match id.split_once('\\') {
                        Some((dir, user)) => (dir, user),
                        None => (directory.as_str(), id),
                    },
                    None => (directory.as_str(), user.as_str()),
                };
                if user.is_empty() {
                    return Err(Error::invalid_config("the user id is empty").with_backend(BACKEND));
                }
                let value = format!(
                    "UserDirectory={}; UserId={}",
                    percent_encode(directory),
                    percent_encode(user)
                );
                Ok(vec![("X-Qlik-User".into(), Secret::new(value))])
            }
            Credentials::Header { header, user, .. } => {
                let user = identity.unwrap_or(user);
                if user.is_empty() || !user.is_ascii() || user.chars().any(|c| c.is_control()) {
                    return Err(Error::invalid_config(format!(
                        "the user '{user}' cannot go in the {header} header: it must be \
                         non-empty, printable US-ASCII"
                    ))
                    .with_backend(BACKEND));
                }
                Ok(vec![(header.clone(), Secret::new(user))])
            }
        }
    }

    /// Exchanges a credential for a proxy session cookie and its CSRF token
    /// (`GET <url>/qps/csrftoken`): the bearer login of session-cookie authentication, or the
    /// user header (`headers`, the socket's own) of a header proxy.
    async fn log_in(&self, headers: &[(String, Secret)]) -> Result<ProxySession> {
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| Error::internal("no HTTP client for the proxy login"))?;
        let mut url = self.base.clone();
        let scheme = if url.scheme() == "wss" {
            "https"
        } else {
            "http"
        };
        url.set_scheme(scheme)
            .map_err(|_| Error::internal("cannot turn the engine url into an HTTP url"))?;
        let path = format!("{}/qps/csrftoken", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let mut request = http.get(url.clone());
        let (cookie_name, check) = match &self.credentials {
            Credentials::SessionCookie { login, cookie } => {
                request = request.bearer_auth(login.expose());
                (Some(cookie.as_str()), "check the JWT")
            }
            _ => {
                for (name, value) in headers.iter().filter(|(n, _)| n != "Origin") {
                    request = request.header(name.as_str(), value.expose());
                }
                (None, "check the user and the header name")
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| login_failed(&url, &e, self.request_timeout))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("the proxy refused the login at {url} (HTTP {status}); {check}"),
            )
            .with_backend(BACKEND));
        }
        if !response.status().is_success() {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!("the proxy's token endpoint {url} answered HTTP {status}"),
            )
            .with_backend(BACKEND));
        }
        let headers = response.headers();
        let csrf_token = headers
            .get("qlik-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let pairs: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|pair| pair.trim().to_string())
            .filter(|pair| {
                pair.split_once('=')
                    .is_some_and(|(n, _)| cookie_name.is_none_or(|wanted| n.trim() == wanted))
            })
            .collect();
        match (pairs.is_empty(), csrf_token) {
            (false, Some(token)) => Ok(ProxySession {
                cookie: Secret::new(pairs.join("; ")),
                csrf_token: Secret::new(token),
            }),
            _ => Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the proxy's token endpoint {url} did not return {} and the qlik-csrf-token \
                     header",
                    cookie_name.map_or("a session cookie".to_string(), |n| format!(
                        "the {n} cookie"
                    ))
                ),
            )
            .with_backend(BACKEND)),
        }
    }
}

/// A failed login request: a timeout when the proxy did not answer in time, else transient.
fn login_failed(url: &Url, err: &reqwest::Error, timeout: Duration) -> Error {
    let url = redacted(url);
    let error = if err.is_timeout() {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the proxy's token endpoint {url} did not answer within {:.1} s \
                 (request_timeout)",
                timeout.as_secs_f64()
            ),
        )
    } else {
        Error::new(ErrorKind::Transient, format!("logging in at {url}: {err}"))
    };
    error.with_backend(BACKEND)
}

/// The client for the proxy login; every request ends within `timeout`, so a proxy that
/// never answers cannot hold the login (and every fetch waiting on it) forever.
fn http_client(
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<reqwest::Client> {
    let tls = match tls {
        Some(tls) => (*tls).clone(),
        None => TlsSettings::default()
            .client_config(BACKEND)
            .map(|c| (*c).clone())?,
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| {
            Error::internal(format!("building the HTTP client: {e}")).with_backend(BACKEND)
        })
}

/// The engine's base URL: `ws(s)://host[:port][/prefix]`, from what a user writes.
fn engine_url(written: &str) -> Result<Url> {
    let mut url = Url::parse(written.trim()).map_err(|e| {
        Error::invalid_config(format!(
            "the qlik url '{written}' is not a URL ({e}); write it as wss://host or \
             wss://host/prefix"
        ))
        .with_backend(BACKEND)
    })?;
    let scheme = match url.scheme() {
        "wss" | "https" => "wss",
        "ws" | "http" => "ws",
        other => {
            return Err(Error::invalid_config(format!(
                "the qlik url uses '{other}'; use wss:// (or ws:// for a local engine)"
            ))
            .with_backend(BACKEND));
        }
    };
    if url.host_str().is_none() {
        return Err(
            Error::invalid_config(format!("the qlik url '{written}' has no host"))
                .with_backend(BACKEND),
        );
    }
    url.set_scheme(scheme)
        .map_err(|_| Error::invalid_config("the qlik url cannot use a WebSocket scheme"))?;
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes; anything else, including a malformed escape, is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user a session was asked to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AskedUser {
    directory: Option<String>,
    id: String,
    /// The identity as written when it names a directory, which a header proxy with a fixed
    /// directory takes whole as the user id.
    whole_id: Option<String>,
}

/// The user the engine reports for a session (`Global.GetAuthenticatedUser`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServedUser {
    directory: String,
    id: String,
}

impl ServedUser {
    /// Reads `UserDirectory=<dir>; UserId=<id>` (values may be percent-encoded), or
    /// `DIR\id`, or a bare id.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if !text.contains('=') {
            let (directory, id) = text.split_once('\\').unwrap_or(("", text));
            return Some(ServedUser {
                directory: directory.to_string(),
                id: id.to_string(),
            });
        }
        let mut directory = String::new();
        let mut id = None;
        for part in text.split(';') {
            let (key, value) = part.trim().split_once('=')?;
            let value = percent_decode(value.trim());
            match key.trim().to_ascii_lowercase().as_str() {
                "userdirectory" => directory = value,
                "userid" => id = Some(value),
                _ => {}
            }
        }
        let id = id.filter(|id| !id.is_empty())?;
        Some(ServedUser { directory, id })
    }

    fn qualified(&self) -> String {
        if self.directory.is_empty() {
            self.id.clone()
        } else {
            format!("{}\\{}", self.directory, self.id)
        }
    }

    /// Whether this is the asked user; user directories and ids compare without case, as
    /// Qlik compares them.
    fn is(&self, asked: &AskedUser) -> bool {
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        let id_matches = same(&self.id, &asked.id)
            && asked
                .directory
                .as_deref()
                .is_none_or(|directory| same(&self.directory, directory));
        id_matches
            || asked
                .whole_id
                .as_deref()
                .is_some_and(|whole| same(&self.id, whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(directory: Option<&str>, id: &str, whole_id: Option<&str>) -> AskedUser {
        AskedUser {
            directory: directory.map(str::to_string),
            id: id.to_string(),
            whole_id: whole_id.map(str::to_string),
        }
    }

    #[test]
    fn the_engine_user_is_read_in_its_forms() {
        let served = ServedUser::parse("UserDirectory=CORP; UserId=j%20doe").unwrap();
        assert_eq!(served.qualified(), "CORP\\j doe");
        assert_eq!(ServedUser::parse("CORP\\bob").unwrap().directory, "CORP");
        assert_eq!(ServedUser::parse("bob").unwrap().id, "bob");
        assert!(ServedUser::parse("").is_none());
        assert!(ServedUser::parse("UserDirectory=CORP").is_none());
    }

    #[test]
    fn only_the_asked_user_is_accepted() {
        let served = ServedUser::parse("UserDirectory=CORP; UserId=Bob").unwrap();
        assert!(served.is(&asked(Some("corp"), "bob", None)));
        assert!(served.is(&asked(None, "bob", None)));
        assert!(!served.is(&asked(Some("OTHER"), "bob", None)));
        assert!(!served.is(&asked(None, "carol", None)));

        let whole = ServedUser::parse("UserDirectory=FIXED; UserId=CORP\\bob").unwrap();
        assert!(whole.is(&asked(Some("CORP"), "bob", Some("CORP\\bob"))));
        assert!(!whole.is(&asked(Some("CORP"), "bob", None)));
    }
}
