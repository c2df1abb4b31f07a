//! The e-mail channel's errors: SMTP replies and connection failures mapped to stable kinds.

use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use mad_core::{Error, ErrorKind, Secret};

/// The backend name of errors about messages and the pickup folder.
pub(super) const BACKEND: &str = "email";

/// The backend name of errors from the SMTP server or the connection to it.
pub(super) const SMTP: &str = "smtp";

/// SMTP replies that mean the credentials were refused or are needed: authentication
/// required, mechanism too weak, credentials invalid, encryption required for the mechanism.
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

/// Maps a failure talking to `server` to a kind and a message saying what to do next.
///
/// The password never appears in the message: the server's own reply is scrubbed of it too.
pub(super) fn smtp(err: SmtpError, server: &str, password: Option<&Secret>) -> Error {
    let code = err.status().map(u16::from);
    let (kind, advice) = if err.is_timeout() {
        (
            ErrorKind::Timeout,
            "the server did not answer in time; check host and port, or raise timeout_secs",
        )
    } else if code.is_some_and(|c| AUTH_CODES.contains(&c)) {
        (
            ErrorKind::Unauthenticated,
            "the server refused the user name or password; check username and the password secret",
        )
    } else if err.is_transient() {
        (ErrorKind::Transient, "the server asked to try again later")
    } else if err.is_permanent() {
        (ErrorKind::Delivery, "the server refused the message")
    } else if err.is_tls() || io_kind(&err) == Some(std::io::ErrorKind::InvalidData) {
        (
            ErrorKind::Delivery,
            "the encrypted connection failed; check security (starttls or tls), that the \
             certificate matches host, and ca_file for a private CA",
        )
    } else if err.is_client() || err.is_response() {
        (
            ErrorKind::Delivery,
            "the server and mad do not understand each other (for example no common \
             authentication method)",
        )
    } else {
        (
            ErrorKind::Transient,
            "could not reach the server or lost the connection; check host and port, and that \
             the server is running",
        )
    };

    let detail = scrub(&err.to_string(), password);
    Error::new(kind, format!("{server}: {advice} ({detail})"))
        .with_backend(SMTP)
        .with_source(Scrubbed(detail))
}

/// Whether the server refused the message as too large (552, or the enhanced status 5.3.4).
pub(super) fn is_too_large(err: &SmtpError) -> bool {
    err.status().map(u16::from) == Some(552) || err.to_string().contains("5.3.4")
}

/// A message larger than the server takes, with no fallback left.
pub(super) fn too_large(size: u64, limit: u64, target: &str, advice: &str) -> Error {
    Error::new(
        ErrorKind::Delivery,
        format!(
            "the message is {size} bytes, more than the {limit} bytes {target} takes \
             (smtp.max_message_bytes); {advice}"
        ),
    )
    .with_backend(BACKEND)
}

/// The whole delivery took longer than allowed.
pub(super) fn timed_out(server: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "{server}: the message was not sent within {} s; check that the server answers, or \
             raise timeout_secs",
            limit.as_secs()
        ),
    )
    .with_backend(SMTP)
}

/// A message that cannot be built from the delivery and the options.
pub(super) fn message(err: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("building the message: {err}")).with_backend(BACKEND)
}

/// The kind of the first I/O error in the chain of causes. TLS handshake failures (an unknown
/// certificate issuer, a name mismatch) arrive as I/O errors of kind `InvalidData`.
fn io_kind(err: &SmtpError) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// `text` without the password: as itself, and every base64 word that decodes to something
/// holding it (a server quoting the `AUTH PLAIN` or `AUTH LOGIN` it was sent), each replaced
/// by `***`.
fn scrub(text: &str, password: Option<&Secret>) -> String {
    let Some(secret) = password.map(Secret::expose).filter(|s| !s.is_empty()) else {
        return text.to_string();
    };
    let text = text.replace(secret, "***");

    let mut scrubbed = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(is_base64_letter) {
        scrubbed.push_str(&rest[..start]);
        let word = base64_word(&rest[start..]);
        scrubbed.push_str(if encodes(word, secret) { "***" } else { word });
        rest = &rest[start + word.len()..];
    }
    scrubbed.push_str(rest);
    scrubbed
}

fn is_base64_letter(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

/// The base64 word `text` starts with: its letters and the padding after them.
fn base64_word(text: &str) -> &str {
    let letters = text.find(|c| !is_base64_letter(c)).unwrap_or(text.len());
    let padding = text[letters..]
        .find(|c| c != '=')
        .unwrap_or(text.len() - letters);
    &text[..letters + padding]
}

/// Whether `word` is base64 for bytes that hold `secret`.
fn encodes(word: &str, secret: &str) -> bool {
    use base64::Engine as _;

    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(word)
        .is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
}

/// The scrubbed text of the underlying error, kept as the error's source (the original may
/// quote the server's reply verbatim).
#[derive(Debug)]
struct Scrubbed(String);

impl std::fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Scrubbed {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_the_password() {
        let secret = Secret::new("s3cr3t-pw");
        let text = scrub("535 bad: s3cr3t-pw", Some(&secret));
        assert_eq!(text, "535 bad: ***");
        assert_eq!(scrub("x", None), "x");
    }

    #[test]
    fn scrubbing_removes_the_password_in_base64() {
        use base64::Engine as _;

        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = Secret::new("s3cr3t-pw");
        let plain = b64("\0ann\0s3cr3t-pw");
        let login = b64("s3cr3t-pw");
        let user = b64("ann");
        let text = format!(
            "535 5.7.8 refused AUTH PLAIN {plain}; LOGIN {user} {login} (was={login}, \
             unpadded {})",
            login.trim_end_matches('=')
        );

        let scrubbed = scrub(&text, Some(&secret));

        assert_eq!(
            scrubbed,
            format!("535 5.7.8 refused AUTH PLAIN ***; LOGIN {user} *** (was=***, unpadded ***)")
        );
    }
}
