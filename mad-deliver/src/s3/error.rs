//! The S3 channel's errors: object store failures and HTTP replies mapped to stable kinds,
//! with every credential scrubbed from the text.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use mad_core::{Error, ErrorKind, Secret};
use object_store::client::{HttpError, HttpErrorKind};

/// The backend name in this channel's errors.
pub(crate) const BACKEND: &str = "s3";

/// S3 error codes that mean the credentials themselves were refused.
const CREDENTIAL_CODES: [&str; 6] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
];

/// S3 error codes of a 400 reply that may pass when the upload is made again (the body was
/// slow or damaged on the way).
const TRANSIENT_CODES: [&str; 4] = [
    "RequestTimeout",
    "BadDigest",
    "XAmzContentSHA256Mismatch",
    "IncompleteBody",
];

/// A reply the store gave with an error status, kept apart from object_store's own
/// classification so the status, the store's error code and `Retry-After` survive.
#[derive(Debug)]
pub(crate) struct StoreReply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
}

impl fmt::Display for StoreReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the store answered {}", self.status)?;
        if let Some(code) = error_code(&self.body) {
            write!(f, " {code}")?;
        }
        Ok(())
    }
}

impl StdError for StoreReply {}

/// Turns credential values into `***` wherever they appear in a text.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    secrets: Vec<Secret>,
}

impl Scrubber {
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        Scrubber {
            secrets: secrets
                .into_iter()
                .filter(|s| !s.expose().is_empty())
                .collect(),
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.expose(), "***"))
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

/// Maps a failure of `what` (an upload, a look-up) to a kind and a message saying what to do
/// next; the store's reply is scrubbed of every credential.
pub(crate) fn store(err: object_store::Error, what: impl fmt::Display, scrub: &Scrubber) -> Error {
    use object_store::Error as E;

    let reply = find::<StoreReply>(&err);
    let (kind, advice) = match &err {
        E::NotFound { .. } => (
            ErrorKind::NotFound,
            "the bucket or object does not exist; check bucket, region and endpoint",
        ),
        E::Unauthenticated { .. } => (
            ErrorKind::Unauthenticated,
            "the store wants credentials; check access_key_id and secret_access_key",
        ),
        E::PermissionDenied { .. } if mentions_credentials(&err.to_string()) => (
            ErrorKind::Unauthenticated,
            "the store refused the credentials; check access_key_id and secret_access_key",
        ),
        E::PermissionDenied { .. } => (
            ErrorKind::PermissionDenied,
            "the credentials may not write there; check the bucket policy and the key's rights",
        ),
        E::AlreadyExists { .. } | E::Precondition { .. } => (
            ErrorKind::AlreadyExists,
            "an object with that key already exists",
        ),
        E::NotSupported { .. } | E::NotImplemented { .. } => (
            ErrorKind::Unsupported,
            "the store does not support this operation",
        ),
        E::UnknownConfigurationKey { .. } => (ErrorKind::InvalidConfig, "check the options"),
        _ => match reply {
            Some(reply) => classify_reply(reply),
            None => classify_transport(&err),
        },
    };

    let full = scrub.scrub(&err.to_string());
    let detail = summary(&full);
    let mut error = Error::new(kind, format!("{what}: {advice} ({detail})"))
        .with_backend(BACKEND)
        .with_source(Scrubbed(full));
    if kind == ErrorKind::RateLimited
        && let Some(wait) = reply.and_then(|r| r.retry_after)
    {
        error = error.with_retry_after(wait);
    }
    error
}

fn classify_reply(reply: &StoreReply) -> (ErrorKind, &'static str) {
    let code = error_code(&reply.body).unwrap_or_default();
    match reply.status {
        429 => (ErrorKind::RateLimited, "the store asked to slow down"),
        503 if code == "SlowDown" => (ErrorKind::RateLimited, "the store asked to slow down"),
        408 => (
            ErrorKind::Timeout,
            "the store timed out waiting for the upload",
        ),
        400 if TRANSIENT_CODES.contains(&code) => (
            ErrorKind::Transient,
            "the upload arrived incomplete or damaged",
        ),
        400 if CREDENTIAL_CODES.contains(&code) => (
            ErrorKind::Unauthenticated,
            "the store refused the credentials; check access_key_id and secret_access_key",
        ),
        s if s >= 500 => (ErrorKind::Transient, "the store failed; it may pass later"),
        _ => (ErrorKind::Delivery, "the store refused the request"),
    }
}

fn classify_transport(err: &object_store::Error) -> (ErrorKind, &'static str) {
    match find::<HttpError>(err).map(HttpError::kind) {
        Some(HttpErrorKind::Timeout) => (
            ErrorKind::Timeout,
            "the store did not answer in time; check the endpoint, or raise timeout_secs",
        ),
        Some(_) => (
            ErrorKind::Transient,
            "could not reach the store or lost the connection; check endpoint and region, and \
             that the store is running",
        ),
        None => (
            ErrorKind::Delivery,
            "the store could not be used; check the options",
        ),
    }
}

/// One line from object_store's text: what failed, the status, and the store's error code and
/// message instead of its whole XML reply.
fn summary(text: &str) -> String {
    let head = text.split('<').next().unwrap_or(text);
    let head = head.trim_end_matches([':', ' ', '\n', '\r']);
    let mut line: String = head.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(code) = error_code(text) {
        line.push_str(": ");
        line.push_str(code);
        if let Some(message) = element(text, "Message") {
            line.push_str(": ");
            line.push_str(message);
        }
    }
    line
}

fn mentions_credentials(text: &str) -> bool {
    CREDENTIAL_CODES.iter().any(|code| text.contains(code))
}

/// The `<Code>` of an S3 XML error body.
fn error_code(body: &str) -> Option<&str> {
    element(body, "Code")
}

/// The text of the first `<name>` element of an XML body.
fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].trim())
}

/// The first error of type `T` in the chain of causes.
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The scrubbed text of the underlying error, kept as the error's source (the original
/// quotes the store's reply verbatim).
#[derive(Debug)]
struct Scrubbed(String);

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Scrubbed {}

/// A configuration problem, named for the user.
pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::invalid_config(message).with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_xml() {
        let body = "<Error><Code>SlowDown</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body), Some("SlowDown"));
        assert_eq!(error_code("nothing"), None);
    }

    #[test]
    fn summaries_are_one_line() {
        let text = "Error performing PUT http://h/b/k in 3ms - Server returned non-2xx status \
                    code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code>\
                    <Message>Access Denied</Message></Error>";
        assert_eq!(
            summary(text),
            "Error performing PUT http://h/b/k in 3ms - Server returned non-2xx status code: 403 \
             Forbidden: AccessDenied: Access Denied"
        );
        assert_eq!(summary("plain\ntext"), "plain text");
    }

    #[test]
    fn replies_map_to_kinds() {
        let reply = |status, body: &str| StoreReply {
            status,
            body: body.to_string(),
            retry_after: None,
        };
        let kind = |r: StoreReply| classify_reply(&r).0;
        assert_eq!(kind(reply(429, "")), ErrorKind::RateLimited);
        assert_eq!(
            kind(reply(503, "<Code>SlowDown</Code>")),
            ErrorKind::RateLimited
        );
        assert_eq!(kind(reply(503, "")), ErrorKind::Transient);
        assert_eq!(kind(reply(500, "")), ErrorKind::Transient);
        assert_eq!(
            kind(reply(400, "<Code>RequestTimeout</Code>")),
            ErrorKind::Transient
        );
        assert_eq!(kind(reply(400, "<Code>Other</Code>")), ErrorKind::Delivery);
        assert_eq!(kind(reply(408, "")), ErrorKind::Timeout);
    }

    #[test]
    fn scrubbing_hides_every_secret() {
        let scrub = Scrubber::new([Secret::new("AKIDEXAMPLE"), Secret::new("s3cr3t")]);
        assert_eq!(scrub.scrub("key AKIDEXAMPLE and s3cr3t"), "key *** and ***");
        assert!(!format!("{scrub:?}").contains("s3cr3t"));
    }
}
