//! Faults a test injects at runtime.

use std::collections::BTreeMap;
use std::time::Duration;

/// A fault the double plays when its trigger comes. Method names match either the bare name
/// (`GetHyperCubeData`) or `Class.Method`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers `after` `GetHyperCubeData` calls normally, then sends only the first half of
    /// the next answer's frame and drops the connection (no close frame, so the client sees
    /// an abnormal closure, 1006).
    DropDuringHyperCubeData { after: usize },
    /// Holds every answer to `method` (all methods when `None`) back for `by`. A held request
    /// can be cancelled with `Global.CancelRequest`, which answers it with error 15.
    Delay {
        method: Option<String>,
        by: Duration,
    },
    /// Answers the next call of `method` with the engine error `code` (1002, 15, 6003, ...)
    /// instead of running it.
    ErrorOnce { method: String, code: i32 },
    /// Closes the connection when `method` is called next, with WebSocket close `code`
    /// (1006 drops the connection without a close frame).
    CloseOn { method: String, code: u16 },
    /// Answers every call of `method` (`GetHyperCubeData`, `GetListObjectData`) from now on
    /// with data pages whose `qArea` is kept but whose `qMatrix` is empty, as a misbehaving
    /// engine or proxy might; `clear_faults` ends it.
    EmptyMatrix { method: String },
    /// Cuts every `GetHyperCubeData` answer in the middle of its frame and drops the
    /// connection (1006) while `value` is selected in `field`, however often the client
    /// tries again; `clear_faults` ends it. Other selections are served normally.
    DropHyperCubeDataWhileSelected { field: String, value: String },
}

impl Fault {
    pub(crate) fn matches(wanted: &str, class: &str, method: &str) -> bool {
        wanted == method || wanted == format!("{class}.{method}")
    }
}

/// What a fault turns a request into.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Trigger {
    Error(i32),
    Close(u16),
    Delay(Duration),
    DropMidFrame,
    EmptyMatrix,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<(Fault, usize)>,
}

impl Faults {
    pub fn inject(&mut self, fault: Fault) {
        self.active.push((fault, 0));
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// Whether a `GetHyperCubeData` answer in a session with these selections is cut.
    pub fn drops_while(&self, selections: &BTreeMap<String, Vec<String>>) -> bool {
        self.active.iter().any(|(fault, _)| match fault {
            Fault::DropHyperCubeDataWhileSelected { field, value } => selections
                .get(field)
                .is_some_and(|selected| selected.contains(value)),
            _ => false,
        })
    }

    /// The faults a request of `Class.Method` triggers; one-shot faults are used up.
    pub fn triggers(&mut self, class: &str, method: &str) -> Vec<Trigger> {
        let mut out = Vec::new();
        let mut used = Vec::new();
        for (i, (fault, seen)) in self.active.iter_mut().enumerate() {
            match fault {
                Fault::ErrorOnce { method: m, code } if Fault::matches(m, class, method) => {
                    out.push(Trigger::Error(*code));
                    used.push(i);
                }
                Fault::CloseOn { method: m, code } if Fault::matches(m, class, method) => {
                    out.push(Trigger::Close(*code));
                    used.push(i);
                }
                Fault::Delay { method: m, by }
                    if m.as_deref()
                        .is_none_or(|m| Fault::matches(m, class, method)) =>
                {
                    out.push(Trigger::Delay(*by));
                }
                Fault::EmptyMatrix { method: m } if Fault::matches(m, class, method) => {
                    out.push(Trigger::EmptyMatrix);
                }
                Fault::DropDuringHyperCubeData { after } if method == "GetHyperCubeData" => {
                    if *seen >= *after {
                        out.push(Trigger::DropMidFrame);
                        used.push(i);
                    }
                    *seen += 1;
                }
                _ => {}
            }
        }
        for i in used.into_iter().rev() {
            self.active.remove(i);
        }
        out
    }
}
