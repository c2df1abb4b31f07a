//! The one error type of the project and its stable kinds.

use std::borrow::Cow;
use std::fmt;

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a stable code.
///
/// The numeric values are frozen: the Python, Node and C# bindings expose the same codes, so a
/// value is never reused or renumbered. New kinds are only appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file, object, field value, app or definition does not exist.
    NotFound = 1,
    /// The caller is known but not allowed to do this.
    PermissionDenied = 2,
    /// Credentials are missing or wrong.
    Unauthenticated = 3,
    /// The input data is malformed (a damaged file, a ragged CSV row, a bad value).
    InvalidInput = 4,
    /// A definition is inconsistent (a filter on a missing field, an unknown placeholder).
    InvalidConfig = 5,
    /// The backend cannot honour an option it was given.
    Unsupported = 6,
    /// A filter set selects no rows, so the recipient is skipped.
    EmptyFilter = 7,
    /// A data source failed for a reason not covered by a more precise kind.
    DataSource = 8,
    /// A renderer failed.
    Render = 9,
    /// A channel failed permanently.
    Delivery = 10,
    /// An operation took longer than allowed.
    Timeout = 11,
    /// A server asked us to slow down.
    RateLimited = 12,
    /// A failure that may pass if the operation is tried again.
    Transient = 13,
    /// The run or operation was cancelled.
    Cancelled = 14,
    /// A bug: something the code did not expect.
    Internal = 15,
    /// The target already exists and the definition says not to overwrite it.
    AlreadyExists = 16,
}

impl ErrorKind {
    /// The frozen numeric code shared with the bindings.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The kind's name as the bindings spell it (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::EmptyFilter => "empty_filter",
            ErrorKind::DataSource => "data_source",
            ErrorKind::Render => "render",
            ErrorKind::Delivery => "delivery",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Transient => "transient",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
            ErrorKind::AlreadyExists => "already_exists",
        }
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::RateLimited | ErrorKind::Transient
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible operation in the project.
///
/// It carries a stable [`ErrorKind`], the backend that raised it (`csv`, `qvd`, `smtp`, ...),
/// a message that says what to do next, and the underlying cause.
pub struct Error {
    kind: ErrorKind,
    backend: Option<Cow<'static, str>>,
    message: String,
    retry_after: Option<std::time::Duration>,
    /// The failure came after the target may already have taken the delivery.
    maybe_delivered: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message for the user.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            backend: None,
            message: message.into(),
            retry_after: None,
            maybe_delivered: false,
            source: None,
        }
    }

    /// Says the failure came after the target may already have taken what was sent (a
    /// connection lost while a server was confirming a message), so sending again could make
    /// a duplicate. The engine does not retry such a delivery and treats it as interrupted.
    pub fn maybe_delivered(mut self) -> Self {
        self.maybe_delivered = true;
        self
    }

    /// Whether the target may already have taken what was sent; see [`Error::maybe_delivered`].
    pub fn is_maybe_delivered(&self) -> bool {
        self.maybe_delivered
    }

    /// Says how long the server asked us to wait before trying again (HTTP `Retry-After`).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// How long to wait before trying again, when the server said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Names the backend that raised the error.
    pub fn with_backend(mut self, backend: impl Into<Cow<'static, str>>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Puts more context in front of the message, keeping kind, backend and source.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn backend(&self) -> Option<&str> {
        self.backend.as_deref()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::InvalidConfig`] error.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error naming the option and the backend.
    pub fn unsupported(backend: impl Into<Cow<'static, str>>, option: impl fmt::Display) -> Self {
        let backend = backend.into();
        Error::new(
            ErrorKind::Unsupported,
            format!("{backend} does not support {option}"),
        )
        .with_backend(backend)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// Turns an I/O error into the matching kind, naming what was being done.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            // A file where a folder should be: the folder is not there.
            Io::NotFound | Io::NotADirectory => ErrorKind::NotFound,
            Io::PermissionDenied | Io::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::TimedOut => ErrorKind::Timeout,
            Io::InvalidData | Io::UnexpectedEof => ErrorKind::InvalidInput,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::Interrupted => ErrorKind::Transient,
            // The target's fault, not mad's: it has no room (retrying at once would not help).
            Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => ErrorKind::Delivery,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, format!("{what}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(backend) = &self.backend {
            write!(f, "{backend}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(backend) = &self.backend {
            d.field("backend", backend);
        }
        d.field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_frozen() {
        // Bindings and stored summaries depend on these numbers and names: never renumber.
        use ErrorKind::*;
        let frozen = [
            (NotFound, 1, "not_found"),
            (PermissionDenied, 2, "permission_denied"),
            (Unauthenticated, 3, "unauthenticated"),
            (InvalidInput, 4, "invalid_input"),
            (InvalidConfig, 5, "invalid_config"),
            (Unsupported, 6, "unsupported"),
            (EmptyFilter, 7, "empty_filter"),
            (DataSource, 8, "data_source"),
            (Render, 9, "render"),
            (Delivery, 10, "delivery"),
            (Timeout, 11, "timeout"),
            (RateLimited, 12, "rate_limited"),
            (Transient, 13, "transient"),
            (Cancelled, 14, "cancelled"),
            (Internal, 15, "internal"),
            (AlreadyExists, 16, "already_exists"),
        ];
        for (kind, code, name) in frozen {
            assert_eq!(kind.code(), code, "{kind:?}");
            assert_eq!(kind.as_str(), name, "{kind:?}");
            assert_eq!(serde_json::to_value(kind).unwrap(), name, "{kind:?}");
        }
    }

    #[test]
    fn a_file_where_a_folder_should_be_is_not_found() {
        let dir = std::env::temp_dir().join(format!("mad-error-{}", std::process::id()));
        std::fs::write(&dir, b"a file").unwrap();
        let err = std::fs::create_dir_all(dir.join("outbox")).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(Error::io("creating", err).kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_full_disk_is_the_target_failing_not_an_internal_error() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::QuotaExceeded,
            std::io::ErrorKind::FileTooLarge,
        ] {
            let err = Error::io("writing a.pdf", std::io::Error::from(kind));
            assert_eq!(err.kind(), ErrorKind::Delivery, "{kind:?}");
            assert!(!err.kind().is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn display_names_backend() {
        let err = Error::new(ErrorKind::NotFound, "no such file").with_backend("csv");
        assert_eq!(err.to_string(), "csv: no such file");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
