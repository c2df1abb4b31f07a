//! The FTP channel's errors: server replies and connection failures mapped to stable kinds.

use std::io;
use std::time::Duration;

use mad_core::{Error, ErrorKind, Secret};
use suppaftp::FtpError;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "ftp";

/// Maps a failure while doing `what` on `server` to a kind and a message saying what to do
/// next. The password never appears: the server's reply is scrubbed of it too.
pub(super) fn ftp(err: FtpError, what: &str, server: &str, password: Option<&Secret>) -> Error {
    let (kind, advice) = classify(&err);
    let detail = scrub(&err.to_string(), password);
    Error::new(kind, format!("{server}: {what}: {advice} ({detail})")).with_backend(BACKEND)
}

/// A step that took longer than allowed.
pub(super) fn timed_out(server: &str, what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "{server}: {what}: no answer within {} s; check that the server answers (and that \
             passive data connections are allowed through firewalls), or raise timeout_secs",
            limit.as_secs()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}

fn classify(err: &FtpError) -> (ErrorKind, &'static str) {
    match err {
        FtpError::ConnectionError(io) => connection(io),
        FtpError::SecureError(_) => (
            ErrorKind::Delivery,
            "the encrypted connection failed; check that the server offers explicit TLS (AUTH \
             TLS), that its certificate matches host, and ca_file for a private CA",
        ),
        FtpError::UnexpectedResponse(response) => reply(response.status.code()),
        FtpError::BadResponse => (
            ErrorKind::Delivery,
            "the server's reply could not be understood",
        ),
        FtpError::InvalidAddress(_) => (
            ErrorKind::Delivery,
            "the server gave an unusable address for the data connection",
        ),
        FtpError::DataConnectionAlreadyOpen => (
            ErrorKind::Internal,
            "a data connection was still open from an earlier transfer",
        ),
    }
}

fn connection(err: &io::Error) -> (ErrorKind, &'static str) {
    match err.kind() {
        io::ErrorKind::TimedOut => (
            ErrorKind::Timeout,
            "the server did not answer in time; check host and port, or raise timeout_secs",
        ),
        io::ErrorKind::InvalidData => (
            ErrorKind::Delivery,
            "the encrypted connection failed; check security, that the certificate matches host, \
             and ca_file for a private CA",
        ),
        _ => (
            ErrorKind::Transient,
            "could not reach the server or lost the connection; check host and port, and that \
             the server is running",
        ),
    }
}

/// FTP reply codes: 4xx may pass when tried again, 5xx will not.
fn reply(code: u32) -> (ErrorKind, &'static str) {
    match code {
        530 | 331 | 332 => (
            ErrorKind::Unauthenticated,
            "the server refused the user name or password; check username and the password secret",
        ),
        421 => (
            ErrorKind::Transient,
            "the server is closing connections (too many users, or shutting down); try again later",
        ),
        425 | 426 => (
            ErrorKind::Transient,
            "the data connection failed or was cut during the transfer; nothing was delivered",
        ),
        431 | 522 | 533 | 534 => (
            ErrorKind::Delivery,
            "the server and mad disagree about TLS; set security to match the server",
        ),
        400..=499 => (ErrorKind::Transient, "the server asked to try again later"),
        550 | 553 => (
            ErrorKind::PermissionDenied,
            "the server refused the file or folder; check path and that the user may write there",
        ),
        552 => (
            ErrorKind::Delivery,
            "the server's storage for this user is full",
        ),
        _ => (ErrorKind::Delivery, "the server refused the command"),
    }
}

fn scrub(text: &str, password: Option<&Secret>) -> String {
    match password.map(Secret::expose) {
        Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::Status;
    use suppaftp::types::Response;

    fn refused(code: Status, body: &str) -> FtpError {
        FtpError::UnexpectedResponse(Response::new(code, body.as_bytes().to_vec()))
    }

    #[test]
    fn replies_map_to_kinds() {
        let kind = |e| ftp(e, "x", "h:21", None).kind();
        assert_eq!(
            kind(refused(Status::NotLoggedIn, "530 no")),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            kind(refused(Status::TransferAborted, "426 cut")),
            ErrorKind::Transient
        );
        assert_eq!(
            kind(refused(Status::FileUnavailable, "550 no")),
            ErrorKind::PermissionDenied
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(kind(FtpError::ConnectionError(reset)), ErrorKind::Transient);
    }

    #[test]
    fn the_password_is_scrubbed() {
        let secret = Secret::new("s3cr3t-pw");
        let err = ftp(
            refused(Status::NotLoggedIn, "530 bad s3cr3t-pw"),
            "logging in",
            "h:21",
            Some(&secret),
        );
        assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"));
    }
}
