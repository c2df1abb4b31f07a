//! Secrets: passwords, keys and tokens, referenced from definitions and never printed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A secret value. Its `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to a protocol. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret lives: `env:NAME` (an environment variable) or `file:PATH` (a file whose
/// contents, without a trailing newline, are the secret). Definitions hold these references,
/// never the secret itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SecretRef {
    Env(String),
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret now.
    pub fn resolve(&self) -> Result<Secret> {
        match self {
            SecretRef::Env(name) => std::env::var(name).map(Secret).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("the environment variable {name} holding a secret is not set"),
                )
            }),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| Error::io(format!("reading the secret file {}", path.display()), e)),
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        if let Some(name) = s.strip_prefix("env:") {
            return Ok(SecretRef::Env(name.to_string()));
        }
        if let Some(path) = s.strip_prefix("file:") {
            return Ok(SecretRef::File(path.into()));
        }
        Err("a secret must be a reference such as \"env:SMTP_PASSWORD\" or \"file:/run/secrets/smtp\"; \
             secrets are never written into definitions"
            .to_string())
    }
}

impl From<SecretRef> for String {
    fn from(r: SecretRef) -> String {
        match r {
            SecretRef::Env(n) => format!("env:{n}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({})", String::from(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn literal_secrets_are_refused() {
        assert!(SecretRef::try_from("hunter2".to_string()).is_err());
        let r = SecretRef::try_from("env:MAD_TEST_UNSET_VARIABLE".to_string()).unwrap();
        let err = r.resolve().unwrap_err();
        assert!(err.to_string().contains("MAD_TEST_UNSET_VARIABLE"));
    }
}
