//! The Graph channel's errors: Graph's error bodies read into kinds.

use mad_core::ErrorKind;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::http::client::Refusal;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "graph";

#[derive(Deserialize, Default)]
struct Body {
    #[serde(default)]
    error: Detail,
}

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads `{"error": {"code": ..., "message": ...}}`.
pub(super) fn read_refusal(status: StatusCode, body: &str) -> Refusal {
    let Body { error } = serde_json::from_str(body).unwrap_or_default();
    let kind = match error.code.as_str() {
        "nameAlreadyExists" => Some(ErrorKind::AlreadyExists),
        "activityLimitReached" | "TooManyRequests" | "throttledRequest" => {
            Some(ErrorKind::RateLimited)
        }
        "quotaLimitReached" | "insufficientStorage" => Some(ErrorKind::Delivery),
        "accessDenied" | "notAllowed" => Some(ErrorKind::PermissionDenied),
        "itemNotFound" => Some(ErrorKind::NotFound),
        "InvalidAuthenticationToken" | "unauthenticated" => Some(ErrorKind::Unauthenticated),
        _ if status == StatusCode::CONFLICT => Some(ErrorKind::AlreadyExists),
        _ => None,
    };
    Refusal {
        kind,
        code: error.code,
        message: error.message,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_throttling_have_their_kinds() {
        let body = r#"{"error":{"code":"nameAlreadyExists","message":"The specified item name already exists."}}"#;
        let refusal = read_refusal(StatusCode::CONFLICT, body);
        assert_eq!(refusal.kind, Some(ErrorKind::AlreadyExists));
        assert_eq!(refusal.code, "nameAlreadyExists");
        let body = r#"{"error":{"code":"activityLimitReached","message":"slow down"}}"#;
        let refusal = read_refusal(StatusCode::TOO_MANY_REQUESTS, body);
        assert_eq!(refusal.kind, Some(ErrorKind::RateLimited));
        assert_eq!(read_refusal(StatusCode::BAD_GATEWAY, "<html>").kind, None);
    }
}
