//! Checking the server's host key against a `known_hosts` file, the way OpenSSH does, so a
//! connection to an impostor is refused before any secret or report is sent.

use std::path::{Path, PathBuf};

use mad_core::{Error, ErrorKind, Result};
use russh::keys::{HashAlg, PublicKey, PublicKeyBase64};

use super::error::BACKEND;

/// Which server keys to accept.
#[derive(Debug, Clone)]
pub(super) enum HostKeyPolicy {
    /// Only keys the file lists for the host.
    KnownHosts(PathBuf),
    /// Every key (`trust_unknown_host_key_dangerous`).
    TrustAnything,
    /// None: no `known_hosts` was given.
    RefuseUnknown,
}

impl HostKeyPolicy {
    /// Refuses `key` of `host`:`port` unless the policy accepts it, naming its fingerprint and
    /// the line that would make it known.
    pub(super) fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<()> {
        let path = match self {
            HostKeyPolicy::TrustAnything => {
                tracing::debug!(host, port, fingerprint = %fingerprint(key), "accepting the host key without checking it");
                return Ok(());
            }
            HostKeyPolicy::RefuseUnknown => return Err(unknown(host, port, key, None)),
            HostKeyPolicy::KnownHosts(path) => path,
        };

        let recorded =
            russh::keys::known_hosts::known_host_keys_path(host, port, path).map_err(|e| {
                Error::invalid_config(format!(
                    "the known_hosts file {} could not be read for {host}: {e}",
                    path.display()
                ))
                .with_backend(BACKEND)
            })?;
        if recorded
            .iter()
            .any(|(_, known)| known.key_data() == key.key_data())
        {
            return Ok(());
        }
        if let Some((line, _)) = recorded
            .iter()
            .find(|(_, known)| known.algorithm() == key.algorithm())
        {
            return Err(changed(host, port, key, path, *line));
        }
        Err(unknown(host, port, key, Some(path)))
    }
}

/// The key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:...`).
pub(super) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The `known_hosts` line that lists `key` for `host`:`port`.
pub(super) fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> String {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    format!(
        "{name} {} {}",
        key.algorithm().as_str(),
        key.public_key_base64()
    )
}

fn unknown(host: &str, port: u16, key: &PublicKey, file: Option<&Path>) -> Error {
    let source = match file {
        Some(path) => format!("is not listed in {}", path.display()),
        None => "cannot be checked because no known_hosts file is set".to_string(),
    };
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "{host}:{port}: the server's host key {} {source}; nothing was sent. If that is the \
             server's key (ask its administrator), add this line to the known_hosts file: {}",
            fingerprint(key),
            known_hosts_line(host, port, key)
        ),
    )
    .with_backend(BACKEND)
}

fn changed(host: &str, port: u16, key: &PublicKey, file: &Path, line: usize) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "{host}:{port}: the server's host key {} differs from the one on line {line} of {}; \
             someone may be intercepting the connection, or the server got a new key. Nothing \
             was sent; ask the server's administrator before changing known_hosts",
            fingerprint(key),
            file.display()
        ),
    )
    .with_backend(BACKEND)
}
