//! The Dropbox channel's errors: Dropbox's error bodies read into kinds.

use std::time::Duration;

use mad_core::ErrorKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::http::client::Refusal;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "dropbox";

/// Reads `{"error_summary": "path/conflict/file/..", "error": {...}}`; 400 answers are plain
/// text.
pub(super) fn read_refusal(status: StatusCode, body: &str) -> Refusal {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Refusal {
            message: body.to_string(),
            ..Refusal::default()
        };
    };
    let summary = value["error_summary"].as_str().unwrap_or_default();
    let code = summary.trim_end_matches(['.', '/']).to_string();
    let retry_after = value["error"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs);
    Refusal {
        kind: kind_of(status, &code),
        code,
        message: value["user_message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        retry_after,
    }
}

fn kind_of(status: StatusCode, summary: &str) -> Option<ErrorKind> {
    let has = |tag: &str| summary.split('/').any(|part| part == tag);
    if status == StatusCode::TOO_MANY_REQUESTS || has("too_many_write_operations") {
        Some(ErrorKind::RateLimited)
    } else if has("expired_access_token") || has("invalid_access_token") {
        Some(ErrorKind::Unauthenticated)
    } else if has("conflict") {
        Some(ErrorKind::AlreadyExists)
    } else if has("no_write_permission") || has("disallowed_name") {
        Some(ErrorKind::PermissionDenied)
    } else if has("insufficient_space") {
        Some(ErrorKind::Delivery)
    } else if has("not_found") {
        Some(ErrorKind::NotFound)
    } else if status == StatusCode::CONFLICT {
        Some(ErrorKind::Delivery)
    } else {
        None
    }
}

/// The offset the server holds, from an `incorrect_offset` refusal of an upload session.
pub(super) fn correct_offset(body: &str) -> Option<u64> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = &value["error"];
    let tagged = |e: &Value| {
        (e[".tag"] == "incorrect_offset")
            .then(|| e["correct_offset"].as_u64())
            .flatten()
    };
    tagged(error).or_else(|| tagged(&error["lookup_failed"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_offsets_and_waits_are_read() {
        let body = r#"{"error_summary": "path/conflict/file/..", "error": {".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "file"}}}}"#;
        assert_eq!(
            read_refusal(StatusCode::CONFLICT, body).kind,
            Some(ErrorKind::AlreadyExists)
        );
        let body = r#"{"error_summary": "too_many_requests/..", "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 300}}"#;
        let refusal = read_refusal(StatusCode::TOO_MANY_REQUESTS, body);
        assert_eq!(refusal.kind, Some(ErrorKind::RateLimited));
        assert_eq!(refusal.retry_after, Some(Duration::from_secs(300)));
        let body = r#"{"error_summary": "incorrect_offset/..", "error": {".tag": "incorrect_offset", "correct_offset": 8388608}}"#;
        assert_eq!(correct_offset(body), Some(8_388_608));
        let body = r#"{"error_summary": "lookup_failed/incorrect_offset/..", "error": {".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 4}}}"#;
        assert_eq!(correct_offset(body), Some(4));
        assert_eq!(
            read_refusal(StatusCode::BAD_REQUEST, "Error in call").kind,
            None
        );
    }
}
