//! The SFTP channel's errors: SSH and SFTP failures mapped to stable kinds.

use std::io;
use std::time::Duration;

use mad_core::{Error, ErrorKind};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "sftp";

/// A failure of the SSH connection while doing `what` on `server`.
pub(super) fn ssh(err: &russh::Error, what: &str, server: &str) -> Error {
    use russh::Error as E;
    let (kind, advice) = match err {
        E::IO(io) => connection(io),
        E::ConnectionTimeout | E::KeepaliveTimeout | E::InactivityTimeout | E::Elapsed(_) => (
            ErrorKind::Timeout,
            "the server did not answer in time; check host and port, or raise timeout_secs",
        ),
        E::Disconnect | E::HUP | E::SendError | E::Join(_) => (
            ErrorKind::Transient,
            "the server closed the connection; check that it is running and accepts SSH",
        ),
        E::NoCommonAlgo { .. } | E::KexInit | E::Kex | E::Version | E::UnknownAlgo => (
            ErrorKind::Delivery,
            "the server and mad have no SSH algorithm in common, or it is not an SSH server",
        ),
        E::WrongServerSig | E::PacketAuth | E::DecryptionError => (
            ErrorKind::Delivery,
            "the server's messages could not be verified; something on the way may be \
             tampering with the connection",
        ),
        E::ChannelOpenFailure(_) | E::RequestDenied => (
            ErrorKind::PermissionDenied,
            "the server refused an SFTP session; check that it offers the sftp subsystem to \
             this user",
        ),
        E::NotAuthenticated | E::NoAuthMethod | E::UnsupportedAuthMethod => (
            ErrorKind::Unauthenticated,
            "the server refused to log in; check username and the password or private key",
        ),
        _ => (ErrorKind::Delivery, "the SSH connection failed"),
    };
    Error::new(kind, format!("{server}: {what}: {advice} ({err})")).with_backend(BACKEND)
}

/// A failed SFTP request while doing `what` on `server`.
pub(super) fn sftp(err: &SftpError, what: &str, server: &str) -> Error {
    let (kind, advice) = match err {
        SftpError::Status(status) => match status.status_code {
            StatusCode::NoSuchFile => (ErrorKind::NotFound, "it does not exist"),
            StatusCode::PermissionDenied => (
                ErrorKind::PermissionDenied,
                "the server refused; check path and that the user may write there",
            ),
            StatusCode::NoConnection | StatusCode::ConnectionLost => (
                ErrorKind::Transient,
                "the connection to the server was lost",
            ),
            StatusCode::OpUnsupported => (
                ErrorKind::Unsupported,
                "the server does not support this operation",
            ),
            _ => (ErrorKind::Delivery, "the server refused the request"),
        },
        SftpError::Timeout => (
            ErrorKind::Timeout,
            "the server did not answer in time; raise timeout_secs if it is just slow",
        ),
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => (
            ErrorKind::Transient,
            "the connection to the server was lost",
        ),
        SftpError::Limited(_) => (ErrorKind::Delivery, "the server's limits were exceeded"),
        SftpError::UnexpectedPacket => (
            ErrorKind::Delivery,
            "the server answered something unexpected",
        ),
    };
    Error::new(kind, format!("{server}: {what}: {advice} ({err})")).with_backend(BACKEND)
}

/// Whether `err` says there is no such file.
pub(super) fn is_missing(err: &SftpError) -> bool {
    matches!(err, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// A step that took longer than allowed.
pub(super) fn timed_out(server: &str, what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "{server}: {what}: no answer within {} s; check that the server answers, or raise \
             timeout_secs",
            limit.as_secs()
        ),
    )
    .with_backend(BACKEND)
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}

pub(super) fn unauthenticated(server: &str, username: &str, tried: &str) -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        format!(
            "{server}: the server refused {username} with {tried}; check username and the \
             secrets, and that the server allows that way of logging in"
        ),
    )
    .with_backend(BACKEND)
}

fn connection(err: &io::Error) -> (ErrorKind, &'static str) {
    match err.kind() {
        io::ErrorKind::TimedOut => (
            ErrorKind::Timeout,
            "the server did not answer in time; check host and port, or raise timeout_secs",
        ),
        _ => (
            ErrorKind::Transient,
            "could not reach the server or lost the connection; check host and port, and that \
             the server is running",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_kinds() {
        let refused = russh::Error::IO(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(ssh(&refused, "x", "h:22").kind(), ErrorKind::Transient);
        assert_eq!(
            ssh(&russh::Error::Disconnect, "x", "h:22").kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            sftp(&SftpError::Timeout, "x", "h:22").kind(),
            ErrorKind::Timeout
        );
    }
}
