//! OAuth2 access tokens: the client-credentials grant (an app acting as itself) and the
//! refresh-token grant (an app acting for a user who consented once).
//!
//! A token is kept until shortly before it expires. When an API refuses it anyway (revoked,
//! clock skew), [`TokenSource::renew`] fetches a new one, once for all requests that saw the
//! refusal at the same time.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mad_core::{Error, ErrorKind, Result, Secret, SecretRef};
use reqwest::{Client, Url};
use serde::Deserialize;

use super::client::{Refusal, error_body, quote, refused, transport};
use crate::common::unique_token;

/// A token is dropped this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// How long a token lives when the server does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How the app proves who it is.
pub(crate) enum Grant {
    /// `grant_type=client_credentials`, with the provider's extra parameters (a scope, a
    /// subject).
    ClientCredentials { params: Vec<(&'static str, String)> },
    /// `grant_type=refresh_token`. When the provider hands out a new refresh token and the
    /// old one came from a file, the new one is written back to that file.
    RefreshToken {
        token: Secret,
        file: Option<PathBuf>,
    },
}

/// The secret `reference` points to, read now; an error names the `option` it came from.
pub(crate) fn read_secret(
    backend: &'static str,
    option: &str,
    reference: &SecretRef,
) -> Result<Secret> {
    reference
        .resolve()
        .map_err(|e| e.with_backend(backend).context(format!("the {option}")))
}

impl Grant {
    /// A refresh-token grant whose token is read now from `reference`, the `refresh_token`
    /// option.
    pub(crate) fn refresh_token(backend: &'static str, reference: &SecretRef) -> Result<Grant> {
        let token = read_secret(backend, "refresh_token", reference)?;
        let file = match reference {
            SecretRef::File(path) => Some(path.clone()),
            SecretRef::Env(_) => None,
        };
        Ok(Grant::RefreshToken { token, file })
    }
}

struct Cached {
    token: Secret,
    expires: Instant,
}

struct State {
    access: Option<Cached>,
    refresh: Option<Secret>,
}

/// Access tokens from one token endpoint for one app.
pub(crate) struct TokenSource {
    backend: &'static str,
    http: Client,
    endpoint: Url,
    client_id: String,
    client_secret: Secret,
    params: Vec<(&'static str, String)>,
    refresh_file: Option<PathBuf>,
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grant = if self.refresh_file.is_some() || self.lock().refresh.is_some() {
            "refresh_token"
        } else {
            "client_credentials"
        };
        f.debug_struct("TokenSource")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("grant", &grant)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource {
    pub(crate) fn new(
        backend: &'static str,
        http: Client,
        endpoint: Url,
        client_id: impl Into<String>,
        client_secret: Secret,
        grant: Grant,
    ) -> Self {
        let (params, refresh, refresh_file) = match grant {
            Grant::ClientCredentials { params } => (params, None, None),
            Grant::RefreshToken { token, file } => (Vec::new(), Some(token), file),
        };
        TokenSource {
            backend,
            http,
            endpoint,
            client_id: client_id.into(),
            client_secret,
            params,
            refresh_file,
            state: Mutex::new(State {
                access: None,
                refresh,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// A valid access token: the cached one, or a new one.
    pub(crate) async fn token(&self) -> Result<Secret> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        self.fetch().await
    }

    /// A new access token after the API refused `rejected`; when another request already
    /// replaced it, that replacement.
    pub(crate) async fn renew(&self, rejected: &Secret) -> Result<Secret> {
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.cached().filter(|t| t != rejected) {
            return Ok(token);
        }
        self.lock().access = None;
        self.fetch().await
    }

    /// Every secret this source holds, for scrubbing server messages.
    pub(crate) fn secrets(&self) -> Vec<Secret> {
        let state = self.lock();
        let mut secrets = vec![self.client_secret.clone()];
        secrets.extend(state.refresh.clone());
        secrets.extend(state.access.as_ref().map(|c| c.token.clone()));
        secrets
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self) -> Option<Secret> {
        let state = self.lock();
        let cached = state.access.as_ref()?;
        (Instant::now() < cached.expires).then(|| cached.token.clone())
    }

    async fn fetch(&self) -> Result<Secret> {
        let refresh = self.lock().refresh.clone();
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
        ];
        match &refresh {
            Some(token) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", token.expose()));
            }
            None => form.push(("grant_type", "client_credentials")),
        }
        form.extend(self.params.iter().map(|(k, v)| (*k, v.as_str())));

        let what = "getting an access token";
        let started = Instant::now();
        let resp = self
            .http
            .post(self.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(self.backend, what, e))?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp, refresh.is_some()).await);
        }
        let body: TokenResponse = resp.json().await.map_err(|e| {
            Error::new(
                ErrorKind::Unauthenticated,
                format!(
                    "{what}: the token endpoint's answer is not an OAuth2 token response ({})",
                    e.without_url()
                ),
            )
            .with_backend(self.backend)
        })?;

        let lifetime = lifetime(body.expires_in.as_ref());
        let token = Secret::new(body.access_token);
        let mut state = self.lock();
        state.access = Some(Cached {
            token: token.clone(),
            expires: started + lifetime.saturating_sub(EXPIRY_MARGIN),
        });
        if let Some(new) = body.refresh_token.map(Secret::new)
            && state.refresh.as_ref().is_some_and(|old| *old != new)
        {
            state.refresh = Some(new.clone());
            drop(state);
            self.keep_refresh_token(&new);
        }
        tracing::debug!(
            backend = self.backend,
            lifetime_s = lifetime.as_secs(),
            "fetched an access token"
        );
        Ok(token)
    }

    async fn refusal(&self, resp: reqwest::Response, refreshing: bool) -> Error {
        let (status, wait, body) = error_body(resp).await;
        let parsed: TokenError = serde_json::from_str(&body).unwrap_or_default();
        let credentials_refused = matches!(status.as_u16(), 400 | 401 | 403)
            && (matches!(
                parsed.error.as_str(),
                "invalid_client" | "invalid_grant" | "unauthorized_client" | "access_denied"
            ) || status.as_u16() == 401);
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(Secret::expose).collect();
        if !credentials_refused {
            let refusal = Refusal {
                code: parsed.error,
                message: parsed.error_description,
                ..Refusal::default()
            };
            return refused(
                self.backend,
                "getting an access token",
                status,
                wait,
                refusal,
                &secrets,
            );
        }

        let check = if refreshing {
            "check client_id, client_secret and that the refresh token was not revoked or \
             replaced"
        } else {
            "check client_id, client_secret and the app's tenant or subject"
        };
        let mut detail = format!("HTTP {}", status.as_u16());
        for part in [&parsed.error, &parsed.error_description] {
            if !part.is_empty() {
                detail.push_str(", ");
                detail.push_str(&quote(part, &secrets));
            }
        }
        Error::new(
            ErrorKind::Unauthenticated,
            format!("the token endpoint refused the app's credentials; {check} ({detail})"),
        )
        .with_backend(self.backend)
    }

    /// Writes a new refresh token over the file the old one came from, so the next run can
    /// still sign in (some providers accept a refresh token only once).
    fn keep_refresh_token(&self, token: &Secret) {
        let Some(path) = &self.refresh_file else {
            tracing::warn!(
                backend = self.backend,
                "the provider replaced the refresh token; it is kept in memory only, since it \
                 came from an environment variable"
            );
            return;
        };
        if let Err(err) = write_secret_file(path, token) {
            tracing::warn!(backend = self.backend, path = %path.display(), error = %err, "could not save the new refresh token");
        }
    }
}

/// Replaces the file at `path` with `token` in one step; the new file is readable by its
/// owner only.
fn write_secret_file(path: &Path, token: &Secret) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(".mad-{}.tmp", unique_token()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);

    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(token.expose().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

fn lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let seconds = match expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    seconds.map_or(DEFAULT_LIFETIME, Duration::from_secs)
}
