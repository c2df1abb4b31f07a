//! JSON-RPC frames as the engine writes them, and the engine's error codes.

use serde::Serialize;
use serde_json::Value as Json;

/// Engine error codes the double answers with (the `LocalizedErrorCode` values of the schema).
pub mod codes {
    pub const GENERIC_NOT_FOUND: i32 = 2;
    pub const GENERIC_ALREADY_EXISTS: i32 = 3;
    pub const GENERIC_INVALID_PATH: i32 = 4;
    pub const GENERIC_ACCESS_DENIED: i32 = 5;
    pub const GENERIC_INVALID_PARAMETERS: i32 = 8;
    pub const GENERIC_ABORTED: i32 = 15;
    pub const GENERIC_NOT_IMPLEMENTED: i32 = 20;
    pub const APP_ALREADY_OPEN: i32 = 1002;
    pub const APP_NOT_FOUND: i32 = 1003;
    pub const APP_INVALID: i32 = 1007;
    pub const HC_INVALID_OBJECT: i32 = 6000;
    pub const CALC_NOT_IN_LIB: i32 = 7001;
    pub const CALC_PAGES_TOO_LARGE: i32 = 7009;
    pub const JSON_RPC_INVALID_REQUEST: i32 = -32600;
    pub const JSON_RPC_METHOD_NOT_FOUND: i32 = -32601;
    pub const JSON_RPC_INVALID_PARAMETERS: i32 = -32602;
    pub const JSON_RPC_PARSE_ERROR: i32 = -32700;
}

/// An error answer: the JSON-RPC code, Qlik's `parameter` member and the message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    pub message: String,
}

impl RpcError {
    /// An error whose message is filled in from the schema's error table when it is sent.
    pub fn new(code: i32, parameter: impl Into<String>) -> Self {
        RpcError {
            code,
            parameter: Some(parameter.into()),
            message: String::new(),
        }
    }
}

/// A successful answer before it is framed: the result and the handles it changed or closed.
#[derive(Debug, Default)]
pub struct Reply {
    pub result: Json,
    pub change: Vec<i32>,
    pub close: Vec<i32>,
}

impl Reply {
    pub fn new(result: Json) -> Self {
        Reply {
            result,
            ..Default::default()
        }
    }

    pub fn changed(mut self, handles: Vec<i32>) -> Self {
        self.change = handles;
        self
    }
}

#[derive(Serialize)]
struct SuccessFrame<'a> {
    jsonrpc: &'static str,
    id: &'a Json,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    delta: bool,
    result: &'a Json,
    #[serde(skip_serializing_if = "<[i32]>::is_empty")]
    change: &'a [i32],
    #[serde(skip_serializing_if = "<[i32]>::is_empty")]
    close: &'a [i32],
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    jsonrpc: &'static str,
    id: &'a Json,
    error: &'a RpcError,
}

#[derive(Serialize)]
struct NotificationFrame<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a Json,
}

#[derive(Serialize)]
struct PushFrame<'a> {
    jsonrpc: &'static str,
    change: &'a [i32],
}

/// Frames a successful answer. With `delta`, every result member becomes a JSON-Patch that
/// adds the whole value at the root, the simplest form the delta protocol allows.
pub fn success(id: &Json, reply: &Reply, delta: bool) -> String {
    let patched;
    let result = if delta {
        patched = delta_result(&reply.result);
        &patched
    } else {
        &reply.result
    };
    let frame = SuccessFrame {
        jsonrpc: "2.0",
        id,
        delta,
        result,
        change: &reply.change,
        close: &reply.close,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

fn delta_result(result: &Json) -> Json {
    let Json::Object(members) = result else {
        return result.clone();
    };
    let patched = members
        .iter()
        .map(|(key, value)| {
            let op = serde_json::json!([{"op": "add", "path": "/", "value": value}]);
            (key.clone(), op)
        })
        .collect();
    Json::Object(patched)
}

pub fn error(id: &Json, error: &RpcError) -> String {
    let frame = ErrorFrame {
        jsonrpc: "2.0",
        id,
        error,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

pub fn notification(method: &str, params: &Json) -> String {
    let frame = NotificationFrame {
        jsonrpc: "2.0",
        method,
        params,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

/// A pushed change list: no id, only the handles whose layouts became invalid.
pub fn pushed_change(handles: &[i32]) -> String {
    let frame = PushFrame {
        jsonrpc: "2.0",
        change: handles,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

/// An object reference as the engine returns it from `OpenDoc`, `GetObject` and the like.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectInterface {
    pub q_type: &'static str,
    pub q_handle: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_generic_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_generic_id: Option<String>,
}

impl ObjectInterface {
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// The reference the engine returns for an object that does not exist: type and handle null.
pub fn null_object() -> Json {
    serde_json::json!({"qType": null, "qHandle": null})
}
