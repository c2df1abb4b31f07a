//! The Box channel's errors: Box's error bodies read into kinds.

use mad_core::ErrorKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::http::client::Refusal;

/// The backend name in this channel's errors.
pub(super) const BACKEND: &str = "box";

/// Reads `{"type": "error", "status": 409, "code": "item_name_in_use", "message": ...}`.
pub(super) fn read_refusal(status: StatusCode, body: &str) -> Refusal {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = value["code"].as_str().unwrap_or_default().to_string();
    let kind = match code.as_str() {
        "item_name_in_use" => Some(ErrorKind::AlreadyExists),
        "rate_limit_exceeded" => Some(ErrorKind::RateLimited),
        "storage_limit_exceeded" | "file_size_limit_exceeded" => Some(ErrorKind::Delivery),
        "access_denied_insufficient_permissions" | "insufficient_scope" | "forbidden" => {
            Some(ErrorKind::PermissionDenied)
        }
        "not_found" | "trashed" => Some(ErrorKind::NotFound),
        "unauthorized" => Some(ErrorKind::Unauthenticated),
        _ if status == StatusCode::CONFLICT => Some(ErrorKind::Delivery),
        _ => None,
    };
    Refusal {
        kind,
        code,
        message: value["message"].as_str().unwrap_or_default().to_string(),
        retry_after: None,
    }
}

/// The id and SHA-1 of the file an `item_name_in_use` conflict names.
pub(super) fn conflicting_file(body: &str) -> Option<(String, Option<String>)> {
    let value: Value = serde_json::from_str(body).ok()?;
    if value["code"] != "item_name_in_use" {
        return None;
    }
    let conflicts = &value["context_info"]["conflicts"];
    let item = match conflicts {
        Value::Array(items) => items.first()?,
        item => item,
    };
    let id = item["id"].as_str()?.to_string();
    Some((id, item["sha1"].as_str().map(str::to_string)))
}

/// The type of the item an `item_name_in_use` conflict names (`file`, `folder`).
pub(super) fn conflict_type(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let conflicts = &value["context_info"]["conflicts"];
    let item = match conflicts {
        Value::Array(items) => items.first()?,
        item => item,
    };
    item["type"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_read() {
        let body = r#"{"type": "error", "status": 409, "code": "item_name_in_use", "context_info": {"conflicts": {"type": "file", "id": "12345", "sha1": "85136c79cbf9fe36bb9d05d0639c70c265c18d37", "name": "a.pdf"}}, "message": "Item with the same name already exists", "request_id": "abc"}"#;
        assert_eq!(
            read_refusal(StatusCode::CONFLICT, body).kind,
            Some(ErrorKind::AlreadyExists)
        );
        let (id, sha1) = conflicting_file(body).unwrap();
        assert_eq!(id, "12345");
        assert_eq!(
            sha1.as_deref(),
            Some("85136c79cbf9fe36bb9d05d0639c70c265c18d37")
        );
        assert_eq!(conflict_type(body).as_deref(), Some("file"));
        let folders = r#"{"code": "item_name_in_use", "context_info": {"conflicts": [{"type": "folder", "id": "7"}]}}"#;
        assert_eq!(conflicting_file(folders).unwrap().0, "7");
        assert_eq!(conflict_type(folders).as_deref(), Some("folder"));
    }
}
