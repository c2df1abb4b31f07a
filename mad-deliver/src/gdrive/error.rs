//! The Google Drive channel's errors: Google's error bodies read into kinds.

use mad_core::ErrorKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::http::client::Refusal;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "gdrive";

/// Reads `{"error": {"code": 403, "message": ..., "errors": [{"reason": ...}]}}`. Drive
/// reports rate limits as 403 with a `rateLimitExceeded` reason as well as 429.
pub(super) fn read_refusal(_status: StatusCode, body: &str) -> Refusal {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = &value["error"];
    let reason = error["errors"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = match reason.as_str() {
        "rateLimitExceeded" | "userRateLimitExceeded" | "sharingRateLimitExceeded" => {
            Some(ErrorKind::RateLimited)
        }
        "storageQuotaExceeded" | "teamDriveFileLimitExceeded" => Some(ErrorKind::Delivery),
        "notFound" => Some(ErrorKind::NotFound),
        "insufficientFilePermissions" | "forbidden" | "domainPolicy" => {
            Some(ErrorKind::PermissionDenied)
        }
        "authError" => Some(ErrorKind::Unauthenticated),
        _ => None,
    };
    Refusal {
        kind,
        code: reason,
        message: error["message"].as_str().unwrap_or_default().to_string(),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_sent_as_403_are_rate_limits() {
        let body = r#"{"error": {"code": 403, "message": "User Rate Limit Exceeded", "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}]}}"#;
        let refusal = read_refusal(StatusCode::FORBIDDEN, body);
        assert_eq!(refusal.kind, Some(ErrorKind::RateLimited));
        assert_eq!(refusal.code, "userRateLimitExceeded");
        assert_eq!(read_refusal(StatusCode::FORBIDDEN, "{}").kind, None);
    }
}
