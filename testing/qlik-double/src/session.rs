//! Engine sessions: one per user, app and identity, shared by the sockets that attach to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::mpsc::UnboundedSender;

use crate::auth::User;
use crate::data::{Cube, DocState};
use crate::observe::{SelectionEvent, SessionInfo};

/// The handle of the Global object.
pub const GLOBAL: i32 = -1;

/// What identifies a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub user: String,
    pub app: String,
    pub identity: Option<String>,
}

/// What a handle stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleKind {
    Doc,
    Object(String),
    Field(usize),
    Variable(String),
    Measure(String),
    Dimension(String),
}

impl HandleKind {
    /// The class name the protocol uses for methods on this handle.
    pub fn class(&self) -> &'static str {
        match self {
            HandleKind::Doc => "Doc",
            HandleKind::Object(_) => "GenericObject",
            HandleKind::Field(_) => "Field",
            HandleKind::Variable(_) => "GenericVariable",
            HandleKind::Measure(_) => "GenericMeasure",
            HandleKind::Dimension(_) => "GenericDimension",
        }
    }
}

#[derive(Debug)]
struct Handle {
    kind: HandleKind,
    /// Whether the client holds a current layout; a change is reported only when a valid
    /// handle becomes invalid.
    valid: bool,
}

/// A frame or action for one socket's writer.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(String),
}

#[derive(Debug)]
pub struct Session {
    pub key: SessionKey,
    pub user: User,
    pub doc: Option<DocState>,
    handles: BTreeMap<i32, Handle>,
    next_handle: i32,
    /// Generic object properties of this session: session objects and the session's copies of
    /// the app's stored objects.
    pub objects: BTreeMap<String, Json>,
    pub cubes: HashMap<String, (u64, Arc<Cube>)>,
    pub history: Vec<SelectionEvent>,
    pub sockets: Vec<(u64, UnboundedSender<Outgoing>)>,
    pub ttl: Duration,
    pub expires: Option<Instant>,
}

impl Session {
    pub fn new(key: SessionKey, user: User, ttl: Duration) -> Self {
        Session {
            key,
            user,
            doc: None,
            handles: BTreeMap::new(),
            next_handle: 1,
            objects: BTreeMap::new(),
            cubes: HashMap::new(),
            history: Vec::new(),
            sockets: Vec::new(),
            ttl,
            expires: None,
        }
    }

    /// The handle for `kind`, reusing an open one.
    pub fn open_handle(&mut self, kind: HandleKind) -> i32 {
        if let Some((&h, _)) = self.handles.iter().find(|(_, v)| v.kind == kind) {
            return h;
        }
        let h = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(h, Handle { kind, valid: false });
        h
    }

    pub fn kind(&self, handle: i32) -> Option<&HandleKind> {
        self.handles.get(&handle).map(|h| &h.kind)
    }

    pub fn doc_handle(&self) -> Option<i32> {
        self.handles
            .iter()
            .find(|(_, h)| h.kind == HandleKind::Doc)
            .map(|(&h, _)| h)
    }

    pub fn validate(&mut self, handle: i32) {
        if let Some(h) = self.handles.get_mut(&handle) {
            h.valid = true;
        }
    }

    /// Marks every layout invalid after a change of the data; returns the handles whose
    /// layouts were valid, which are the ones to report as changed.
    pub fn invalidate(&mut self) -> Vec<i32> {
        self.cubes.clear();
        self.handles
            .iter_mut()
            .filter(|(_, h)| h.valid && !matches!(h.kind, HandleKind::Field(_)))
            .map(|(&n, h)| {
                h.valid = false;
                n
            })
            .collect()
    }

    /// Invalidates one handle; returns it when it was valid.
    pub fn invalidate_one(&mut self, handle: i32) -> Vec<i32> {
        match self.handles.get_mut(&handle) {
            Some(h) if h.valid => {
                h.valid = false;
                vec![handle]
            }
            _ => Vec::new(),
        }
    }

    /// Closes every handle of `kind`; returns the closed handles.
    pub fn close_handles(&mut self, kind: &HandleKind) -> Vec<i32> {
        let closed: Vec<i32> = self
            .handles
            .iter()
            .filter(|(_, h)| &h.kind == kind)
            .map(|(&n, _)| n)
            .collect();
        for h in &closed {
            self.handles.remove(h);
        }
        closed
    }

    pub fn record(&mut self, method: &str, field: &str, selected: Vec<String>) {
        self.history.push(SelectionEvent {
            method: method.to_string(),
            field: field.to_string(),
            selected,
        });
    }

    /// Sends a pushed change list to the other sockets of this session.
    pub fn push_to_others(&self, from: u64, frame: &str) {
        for (id, tx) in &self.sockets {
            if *id != from {
                let _ = tx.send(Outgoing::Text(frame.to_string()));
            }
        }
    }

    pub fn info(&self, ended: bool) -> SessionInfo {
        SessionInfo {
            user: self.key.user.clone(),
            app: self.key.app.clone(),
            identity: self.key.identity.clone(),
            open_app: self.doc.as_ref().map(|d| d.app.id.clone()),
            selections: self
                .doc
                .as_ref()
                .map(DocState::selected_texts)
                .unwrap_or_default(),
            history: self.history.clone(),
            sockets: self.sockets.len(),
            ended,
        }
    }
}
