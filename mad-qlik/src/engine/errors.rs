//! What the engine's error codes, WebSocket close codes and notifications mean for a caller.

use mad_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "qlik";

/// Engine error codes the client acts on (`LocalizedErrorCode` in the engine's schema).
pub mod codes {
    pub const GENERIC_NOT_FOUND: i64 = 2;
    pub const GENERIC_ACCESS_DENIED: i64 = 5;
    pub const GENERIC_ABORTED: i64 = 15;
    pub const GENERIC_CONNECTION_LOST: i64 = 16;
    pub const GENERIC_ENGINE_TERMINATED: i64 = 21;
    pub const HTTP_TOO_MANY_REQUESTS: i64 = 429;
    pub const APP_ALREADY_OPEN: i64 = 1002;
    pub const APP_NOT_FOUND: i64 = 1003;
    pub const APP_INVALID: i64 = 1007;
    pub const APP_ALREADY_OPEN_IN_DIFFERENT_MODE: i64 = 1009;
    pub const USER_ACCESS_DENIED: i64 = 4000;
    pub const HC_MODAL_OBJECT_ERROR: i64 = 6003;
    pub const CALC_PAGES_TOO_LARGE: i64 = 7009;
    pub const RELOAD_IN_PROGRESS: i64 = 11000;
}

/// An error answer of the engine: `{code, parameter, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    pub code: i64,
    pub parameter: String,
    pub message: String,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "engine error {} ({})", self.code, self.message)?;
        if !self.parameter.is_empty() {
            write!(f, ": {}", self.parameter)?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineError {}

impl EngineError {
    /// The project error for this answer to `method`.
    pub fn into_error(self, method: &str) -> Error {
        let (kind, advice) = match self.code {
            codes::APP_NOT_FOUND => (
                ErrorKind::NotFound,
                "check the app id in the source's url/app",
            ),
            codes::GENERIC_NOT_FOUND => (
                ErrorKind::NotFound,
                "check the object, field or variable name",
            ),
            codes::GENERIC_ACCESS_DENIED | codes::USER_ACCESS_DENIED => (
                ErrorKind::PermissionDenied,
                "the user may not open this app or object; check its access rules",
            ),
            codes::GENERIC_ABORTED
            | codes::GENERIC_CONNECTION_LOST
            | codes::GENERIC_ENGINE_TERMINATED
            | codes::HC_MODAL_OBJECT_ERROR
            | codes::RELOAD_IN_PROGRESS => (ErrorKind::Transient, "trying again may succeed"),
            codes::HTTP_TOO_MANY_REQUESTS => (ErrorKind::RateLimited, "slow down and try again"),
            codes::CALC_PAGES_TOO_LARGE => (
                ErrorKind::Internal,
                "the client asked for a page over 10,000 cells, which is a bug",
            ),
            codes::APP_ALREADY_OPEN | codes::APP_ALREADY_OPEN_IN_DIFFERENT_MODE => (
                ErrorKind::DataSource,
                "the session holds another app; use a separate identity per app",
            ),
            -32699..=-32600 => (
                ErrorKind::Internal,
                "the client sent a request the engine does not accept, which is a bug",
            ),
            _ => (ErrorKind::DataSource, "see the engine's message"),
        };
        let message = format!("{method}: {self}; {advice}");
        Error::new(kind, message)
            .with_backend(BACKEND)
            .with_source(self)
    }
}

/// The error for a WebSocket the engine (or its proxy) closed with `code`.
pub fn close_error(code: u16, reason: &str) -> Error {
    let (kind, meaning) = match code {
        1000 | 1001 => (ErrorKind::Transient, "closed the connection"),
        4000 => (ErrorKind::Transient, "suspended the session"),
        4001 => (ErrorKind::Timeout, "closed the idle session"),
        4002 => (ErrorKind::Transient, "is renewing the license"),
        4003 => (ErrorKind::Transient, "is shutting down"),
        4004 => (ErrorKind::NotFound, "reports that the app was deleted"),
        4005 => (ErrorKind::RateLimited, "reached its session limit"),
        4006 => (
            ErrorKind::Unauthenticated,
            "could not authenticate the user",
        ),
        4007 => (ErrorKind::Transient, "changed the app's mode"),
        4201 => (ErrorKind::Timeout, "timed the client out"),
        4202 => (ErrorKind::Internal, "received a bad request"),
        4203 => (
            ErrorKind::PermissionDenied,
            "says the user may not open the app",
        ),
        4204 => (ErrorKind::NotFound, "did not find the app"),
        4205 => (ErrorKind::RateLimited, "received too many requests"),
        4230 => (
            ErrorKind::PermissionDenied,
            "says the tenant is not entitled",
        ),
        4200 | 4206 | 4210 | 4211 | 4220 | 4222 | 4240 => {
            (ErrorKind::Transient, "reported a failure on its side")
        }
        _ => (ErrorKind::Transient, "closed the connection"),
    };
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    Error::new(
        kind,
        format!("the engine {meaning}: close code {code}{reason}"),
    )
    .with_backend(BACKEND)
}

/// The error for a connection that ended without a close frame (close code 1006).
pub fn dropped_error() -> Error {
    Error::new(
        ErrorKind::Transient,
        "the connection to the engine dropped without a close frame (1006)",
    )
    .with_backend(BACKEND)
}

/// The error a fatal proxy or engine notification announces, if `method` is one.
pub fn notification_error(method: &str) -> Option<Error> {
    let (kind, meaning) = match method {
        "OnSessionTimedOut" => (ErrorKind::Timeout, "the session timed out"),
        "OnMaxParallelSessionsExceeded" => (
            ErrorKind::RateLimited,
            "the user has too many parallel sessions; lower max_sessions",
        ),
        "OnLicenseAccessDenied" | "OnLicenseAccessDeniedPendingUserSync" => (
            ErrorKind::PermissionDenied,
            "the user has no license to access the engine",
        ),
        "OnSessionClosed" | "OnSessionLoggedOut" => {
            (ErrorKind::Transient, "the proxy ended the session")
        }
        "OnEngineWebsocketFailed" | "OnNoEngineAvailable" => (
            ErrorKind::Transient,
            "no engine is available behind the proxy",
        ),
        "OnExcessLicenseAssignment" => (
            ErrorKind::PermissionDenied,
            "the site has assigned more licenses than it owns",
        ),
        _ => return None,
    };
    Some(Error::new(kind, format!("{meaning} ({method})")).with_backend(BACKEND))
}

/// The error for an `OnConnected` state other than created or attached.
pub fn session_state_error(state: &str) -> Error {
    let kind = match state {
        "SESSION_ERROR_NO_LICENSE"
        | "SESSION_ERROR_LICENSE_RENEW"
        | "SESSION_ERROR_APP_ACCESS_DENIED"
        | "SESSION_ACCESS_CONTROL_SETUP_FAILURE" => ErrorKind::PermissionDenied,
        "SESSION_ERROR_LIMIT_EXCEEDED" => ErrorKind::RateLimited,
        "SESSION_ERROR_SECURITY_HEADER_CHANGED" => ErrorKind::Unauthenticated,
        _ => ErrorKind::DataSource,
    };
    Error::new(kind, format!("the engine refused the session: {state}")).with_backend(BACKEND)
}

/// A copy of an error with the same kind, backend and message (errors are not `Clone`
/// because their source may not be).
pub fn copy_error(err: &Error) -> Error {
    let mut copy = Error::new(err.kind(), err.message().to_string());
    if let Some(backend) = err.backend() {
        copy = copy.with_backend(backend.to_string());
    }
    if let Some(wait) = err.retry_after() {
        copy = copy.with_retry_after(wait);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_map_to_kinds() {
        assert_eq!(close_error(4001, "").kind(), ErrorKind::Timeout);
        assert_eq!(close_error(4006, "").kind(), ErrorKind::Unauthenticated);
        assert_eq!(close_error(4203, "").kind(), ErrorKind::PermissionDenied);
        assert_eq!(close_error(4204, "").kind(), ErrorKind::NotFound);
        assert_eq!(close_error(4205, "").kind(), ErrorKind::RateLimited);
        assert_eq!(close_error(4003, "").kind(), ErrorKind::Transient);
        assert_eq!(dropped_error().kind(), ErrorKind::Transient);
    }

    #[test]
    fn engine_codes_map_to_kinds() {
        let err = |code| EngineError {
            code,
            parameter: "x".into(),
            message: "m".into(),
        };
        assert_eq!(err(1003).into_error("OpenDoc").kind(), ErrorKind::NotFound);
        assert_eq!(err(15).into_error("GetLayout").kind(), ErrorKind::Transient);
        assert_eq!(
            err(5).into_error("OpenDoc").kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            err(-32602).into_error("GetLayout").kind(),
            ErrorKind::Internal
        );
        let message = err(1003).into_error("OpenDoc").to_string();
        assert!(
            message.contains("OpenDoc") && message.contains("1003"),
            "{message}"
        );
    }
}
