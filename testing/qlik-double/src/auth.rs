//! Authentication at the WebSocket handshake, in the forms Qlik deployments use.

use std::fmt;

use mad_core::Secret;

use crate::http::{RequestHead, percent_decode};

/// A user as the engine knows it: a user directory and a user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct User {
    pub directory: String,
    pub id: String,
}

impl User {
    pub fn new(directory: impl Into<String>, id: impl Into<String>) -> Self {
        User {
            directory: directory.into(),
            id: id.into(),
        }
    }

    /// `DIRECTORY\id`, or the bare id when there is no directory.
    pub fn qualified(&self) -> String {
        if self.directory.is_empty() {
            self.id.clone()
        } else {
            format!("{}\\{}", self.directory, self.id)
        }
    }

    fn anonymous() -> Self {
        User::new("", "anonymous")
    }
}

impl fmt::Display for User {
    /// The form of `Global.GetAuthenticatedUser` and of the `X-Qlik-User` header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserDirectory={}; UserId={}", self.directory, self.id)
    }
}

/// How the double authenticates a WebSocket handshake. A refused handshake is answered with
/// HTTP 401 (no or unknown credentials) or 403 (credentials present but not acceptable) and
/// never upgraded.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No check, as a Qlik Core engine without JWT validation. The user is taken from an
    /// `X-Qlik-User` header when one is sent, else `anonymous`.
    #[default]
    None,
    /// Qlik Cloud API keys: `Authorization: Bearer <key>`; each key belongs to one user.
    ApiKey { keys: Vec<(Secret, User)> },
    /// Client-managed engine port: a client certificate issued by the double's CA (mutual
    /// TLS) plus the `X-Qlik-User: UserDirectory=…; UserId=…` header naming the user.
    ClientCertificate,
    /// A header-authentication virtual proxy: the header `header` carries the user id, the
    /// directory is fixed. With `csrf_cookie`, the proxy is CSRF-protected: `GET
    /// /qps/csrftoken` with the header answers a session cookie of that name and a
    /// `qlik-csrf-token` header, and the socket must send the same user's cookie and token
    /// (`?qlik-csrf-token=` or header). With `origins`, the socket's `Origin` header must be
    /// one of them.
    Header {
        header: String,
        directory: String,
        csrf_cookie: Option<String>,
        origins: Vec<String>,
    },
    /// The session cookie and CSRF token of recent client-managed proxies. `GET /qps/csrftoken`
    /// (or `/api/v1/csrf-token`) with `Authorization: Bearer <login>` answers with a session
    /// cookie and a `qlik-csrf-token` header; the socket must then send that cookie, the token
    /// as `?qlik-csrf-token=` (or header), and no `Authorization` header.
    SessionCookie {
        logins: Vec<(Secret, User)>,
        cookie: String,
    },
}

impl Auth {
    /// API-key authentication with one key; add more with [`Auth::and_credential`].
    pub fn api_key(key: impl Into<String>, user: User) -> Self {
        Auth::ApiKey {
            keys: vec![(Secret::new(key), user)],
        }
    }

    /// Header authentication through a virtual proxy.
    pub fn header(header: impl Into<String>, directory: impl Into<String>) -> Self {
        Auth::Header {
            header: header.into(),
            directory: directory.into(),
            csrf_cookie: None,
            origins: Vec::new(),
        }
    }

    /// Makes a header proxy CSRF-protected, issuing session cookies named `cookie` (a real
    /// proxy names them `X-Qlik-Session-<prefix>`); other modes are returned unchanged.
    pub fn with_csrf_token(mut self, cookie: impl Into<String>) -> Self {
        if let Auth::Header { csrf_cookie, .. } = &mut self {
            *csrf_cookie = Some(cookie.into());
        }
        self
    }

    /// Makes a header proxy accept sockets only from these origins (`https://host[:port]`);
    /// other modes are returned unchanged.
    pub fn with_allowed_origins<I, S>(mut self, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Auth::Header { origins, .. } = &mut self {
            origins.extend(allowed.into_iter().map(Into::into));
        }
        self
    }

    /// The name of the session cookie the token endpoint issues, if it issues any.
    pub(crate) fn session_cookie_name(&self) -> Option<&str> {
        match self {
            Auth::SessionCookie { cookie, .. } => Some(cookie),
            Auth::Header { csrf_cookie, .. } => csrf_cookie.as_deref(),
            _ => None,
        }
    }

    /// Session-cookie authentication; `login` is the bearer credential (a JWT on a real
    /// proxy) that the token endpoint accepts for `user`. The cookie is `X-Qlik-Session`.
    pub fn session_cookie(login: impl Into<String>, user: User) -> Self {
        Auth::SessionCookie {
            logins: vec![(Secret::new(login), user)],
            cookie: "X-Qlik-Session".into(),
        }
    }

    /// Adds a credential to an API-key or session-cookie configuration; other modes are
    /// returned unchanged.
    pub fn and_credential(mut self, secret: impl Into<String>, user: User) -> Self {
        match &mut self {
            Auth::ApiKey { keys: list } | Auth::SessionCookie { logins: list, .. } => {
                list.push((Secret::new(secret), user));
            }
            _ => {}
        }
        self
    }

    /// Whether the double stands for a proxy, which greets with `OnAuthenticationInformation`.
    pub(crate) fn is_proxy(&self) -> bool {
        matches!(self, Auth::Header { .. } | Auth::SessionCookie { .. })
    }
}

/// A refused handshake: the HTTP status and a body saying what is missing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// A proxy session issued by the token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct ProxySession {
    pub user: User,
    pub csrf_token: String,
}

/// Checks a WebSocket handshake. `find_session` looks a session cookie up.
pub(crate) fn check_handshake(
    auth: &Auth,
    head: &RequestHead,
    has_client_certificate: bool,
    find_session: impl Fn(&str) -> Option<ProxySession>,
) -> Result<User, Refusal> {
    match auth {
        Auth::None => match head.header("x-qlik-user") {
            Some(value) => parse_qlik_user(value).ok_or_else(|| {
                refuse(
                    400,
                    "the X-Qlik-User header must read UserDirectory=<dir>; UserId=<id>",
                )
            }),
            None => Ok(User::anonymous()),
        },
        Auth::ApiKey { keys } => {
            let token = bearer(head)
                .ok_or_else(|| refuse(401, "send the API key as Authorization: Bearer <key>"))?;
            keys.iter()
                .find(|(k, _)| k.expose() == token)
                .map(|(_, user)| user.clone())
                .ok_or_else(|| refuse(401, "the API key is not valid"))
        }
        Auth::ClientCertificate => {
            if !has_client_certificate {
                return Err(refuse(
                    401,
                    "a client certificate issued by the engine's CA is required",
                ));
            }
            let value = head.header("x-qlik-user").ok_or_else(|| {
                refuse(
                    403,
                    "send X-Qlik-User: UserDirectory=<dir>; UserId=<id> with the certificate",
                )
            })?;
            parse_qlik_user(value).ok_or_else(|| {
                refuse(
                    403,
                    "the X-Qlik-User header must read UserDirectory=<dir>; UserId=<id>",
                )
            })
        }
        Auth::Header {
            header,
            directory,
            csrf_cookie,
            origins,
        } => {
            check_origin(head, origins)?;
            let user = header_user(head, header, directory)?;
            let Some(cookie) = csrf_cookie else {
                return Ok(user);
            };
            let session = proxy_session(head, cookie, find_session)?;
            if session.user != user {
                return Err(refuse(
                    403,
                    "Cross-Site WebSocket Hijacking: the session cookie belongs to another user",
                ));
            }
            Ok(user)
        }
        Auth::SessionCookie { cookie, .. } => {
            if head.header("authorization").is_some() {
                return Err(refuse(
                    403,
                    "Cross-Site WebSocket Hijacking: the socket must not send an Authorization header; use the session cookie",
                ));
            }
            proxy_session(head, cookie, find_session).map(|session| session.user)
        }
    }
}

/// The user a header proxy reads from `header`, in its fixed `directory`.
fn header_user(head: &RequestHead, header: &str, directory: &str) -> Result<User, Refusal> {
    let value = head
        .header(header)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            refuse(
                401,
                format!("the virtual proxy expects the user in the {header} header"),
            )
        })?;
    if !value.is_ascii() {
        return Err(refuse(403, format!("the {header} header must be US-ASCII")));
    }
    Ok(User::new(directory, value))
}

/// The proxy session of the socket's `cookie`, whose CSRF token the socket must send.
fn proxy_session(
    head: &RequestHead,
    cookie: &str,
    find_session: impl Fn(&str) -> Option<ProxySession>,
) -> Result<ProxySession, Refusal> {
    let id = head.cookie(cookie).ok_or_else(|| {
        refuse(
            401,
            format!("no {cookie} session cookie; get one from /qps/csrftoken"),
        )
    })?;
    let session = find_session(id).ok_or_else(|| refuse(401, "the session cookie is not valid"))?;
    let token = head
        .query_param("qlik-csrf-token")
        .or_else(|| head.header("qlik-csrf-token"))
        .ok_or_else(|| {
            refuse(
                403,
                "Cross-Site WebSocket Hijacking: the qlik-csrf-token is missing",
            )
        })?;
    if token != session.csrf_token {
        return Err(refuse(
            403,
            "Cross-Site WebSocket Hijacking: the qlik-csrf-token does not match the session",
        ));
    }
    Ok(session)
}

/// With an allow-list, the socket's `Origin` must be on it.
fn check_origin(head: &RequestHead, origins: &[String]) -> Result<(), Refusal> {
    if origins.is_empty() {
        return Ok(());
    }
    match head.header("origin") {
        Some(origin) if origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) => Ok(()),
        Some(_) => Err(refuse(
            403,
            "Cross-Site WebSocket Hijacking: the Origin is not on the proxy's allow-list",
        )),
        None => Err(refuse(
            403,
            "Cross-Site WebSocket Hijacking: the socket sent no Origin header",
        )),
    }
}

/// Checks the credential sent to the token endpoint of session-cookie authentication.
pub(crate) fn check_login(auth: &Auth, head: &RequestHead) -> Result<User, Refusal> {
    if let Auth::Header {
        header,
        directory,
        csrf_cookie: Some(_),
        ..
    } = auth
    {
        return header_user(head, header, directory);
    }
    let Auth::SessionCookie { logins, .. } = auth else {
        return Err(refuse(404, "this engine does not issue session cookies"));
    };
    let token = bearer(head)
        .ok_or_else(|| refuse(401, "send the login as Authorization: Bearer <token>"))?;
    logins
        .iter()
        .find(|(k, _)| k.expose() == token)
        .map(|(_, user)| user.clone())
        .ok_or_else(|| refuse(401, "the login is not valid"))
}

fn bearer(head: &RequestHead) -> Option<&str> {
    let value = head.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Parses `UserDirectory=<dir>; UserId=<id>` (values may be percent-encoded).
pub(crate) fn parse_qlik_user(value: &str) -> Option<User> {
    let mut directory = None;
    let mut id = None;
    for part in value.split(';') {
        let (key, val) = part.trim().split_once('=')?;
        match key.trim().to_ascii_lowercase().as_str() {
            "userdirectory" => directory = Some(percent_decode(val.trim())),
            "userid" => id = Some(percent_decode(val.trim())),
            _ => {}
        }
    }
    let id = id.filter(|i| !i.is_empty())?;
    Some(User::new(directory.unwrap_or_default(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qlik_user_header_parses() {
        let user = parse_qlik_user("UserDirectory=CORP; UserId=j%20doe").unwrap();
        assert_eq!(user, User::new("CORP", "j doe"));
        assert_eq!(user.qualified(), "CORP\\j doe");
        assert!(parse_qlik_user("UserDirectory=CORP").is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let auth = Auth::api_key("k-123-secret", User::new("", "alice"));
        assert!(!format!("{auth:?}").contains("k-123-secret"));
    }
}
