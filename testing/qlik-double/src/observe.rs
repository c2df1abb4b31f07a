//! What tests can observe: requests, sessions, selections and protocol violations.

use std::collections::BTreeMap;

/// A request that did not follow the published protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// `Class.Method` when the handle was known, else the method name as sent.
    pub method: String,
    pub handle: Option<i64>,
    /// What was wrong, in words.
    pub reason: String,
    /// The request frame as received.
    pub frame: String,
}

/// One selection call a session made.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionEvent {
    /// `Field.SelectValues`, `Doc.ClearAll`, ...
    pub method: String,
    /// The field, empty for calls on all fields.
    pub field: String,
    /// The field's selected values after the call, as texts.
    pub selected: Vec<String>,
}

/// A session: its user, app and identity, its selections now and the calls that made them.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The user as `DIRECTORY\id`.
    pub user: String,
    /// The app id from the URL, empty for `/app/engineData`.
    pub app: String,
    pub identity: Option<String>,
    /// The open app, if any.
    pub open_app: Option<String>,
    /// The current selections: field to selected values.
    pub selections: BTreeMap<String, Vec<String>>,
    pub history: Vec<SelectionEvent>,
    /// Sockets attached now (0 for sessions kept alive by their TTL or ended).
    pub sockets: usize,
    pub ended: bool,
}

/// Counters kept for the whole life of a double.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub requests: BTreeMap<String, usize>,
    pub sessions_created: usize,
    pub sessions_attached: usize,
    pub violations: Vec<Violation>,
    pub ended_sessions: Vec<SessionInfo>,
    pub handshakes_refused: usize,
}
