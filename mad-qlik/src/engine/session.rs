//! One engine session (one socket, one open app) and the typed calls the client makes.

use std::collections::HashMap;
use std::time::Duration;

use mad_core::{Error, ErrorKind, Result};
use serde_json::{Value as Json, json};

use super::errors::{BACKEND, codes};
use super::rpc::{Failure, RpcConnection, SessionState};

/// How often a `Get…`/`Create…` call answered with "request aborted" (15) is sent again.
const ABORTED_RETRIES: u32 = 3;

/// A page of a hypercube or list object (`NxPage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub top: usize,
    pub left: usize,
    pub width: usize,
    pub height: usize,
}

impl Page {
    fn to_json(self) -> Json {
        json!({"qLeft": self.left, "qTop": self.top, "qWidth": self.width, "qHeight": self.height})
    }
}

/// The optional parameters of `Global.OpenDoc`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OpenDocOptions {
    /// A user name for apps protected by one (QlikView-style), with `password`.
    pub user_name: Option<String>,
    pub password: Option<mad_core::Secret>,
    pub serial: Option<String>,
    /// Opens the app without its data (structure only). The engine keeps an app open in one
    /// mode per session, so use a separate identity for no-data opens.
    pub no_data: bool,
}

impl std::fmt::Debug for OpenDocOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenDocOptions")
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("serial", &self.serial.as_ref().map(|_| "***"))
            .field("no_data", &self.no_data)
            .finish()
    }
}

impl OpenDocOptions {
    fn params(&self, app: &str) -> Json {
        if *self == OpenDocOptions::default() {
            return json!([app]);
        }
        json!([
            app,
            self.user_name.as_deref().unwrap_or(""),
            self.password.as_ref().map_or("", |p| p.expose()),
            self.serial.as_deref().unwrap_or(""),
            self.no_data
        ])
    }
}

/// An engine session with its app open.
///
/// Each session has its own selection state. Sessions are made by a
/// [`Connector`](super::Connector); the source keeps them in a pool.
#[derive(Debug)]
pub struct EngineSession {
    rpc: RpcConnection,
    state: SessionState,
    doc: Option<i64>,
    app: String,
    /// Session list objects by field, kept for the session's life.
    pub(crate) list_objects: HashMap<String, i64>,
    /// Session hypercube objects by their definition, kept for the session's life.
    pub(crate) cubes: HashMap<String, i64>,
}

fn handle_of(result: &Json) -> Option<i64> {
    result["qReturn"]["qHandle"].as_i64()
}

fn retries_when_aborted(method: &str) -> bool {
    (method.starts_with("Get") || method.starts_with("Create") || method == "OpenDoc")
        && !matches!(method, "GetHyperCubeData" | "GetListObjectData")
}

impl EngineSession {
    pub(crate) fn new(rpc: RpcConnection, state: SessionState) -> Self {
        EngineSession {
            rpc,
            state,
            doc: None,
            app: String::new(),
            list_objects: HashMap::new(),
            cubes: HashMap::new(),
        }
    }

    /// How the engine greeted the socket.
    pub fn session_state(&self) -> SessionState {
        self.state
    }

    /// Whether the socket has ended; such a session is never reused.
    pub fn is_closed(&self) -> bool {
        self.rpc.is_ended()
    }

    /// Calls `method` on `handle` and returns the answer's `result`.
    ///
    /// `Get…` and `Create…` calls the engine aborted (error 15, which happens when
    /// selections change under them) are sent again, as the official clients do; data
    /// calls are not, because their caller starts over.
    pub async fn call(&self, handle: i64, method: &str, params: Json) -> Result<Json> {
        let mut attempt = 0;
        loop {
            match self.rpc.call(handle, method, params.clone()).await {
                Ok(result) => return Ok(result),
                Err(failure)
                    if failure.engine_code() == Some(codes::GENERIC_ABORTED)
                        && retries_when_aborted(method)
                        && attempt < ABORTED_RETRIES =>
                {
                    attempt += 1;
                    tracing::info!(
                        backend = BACKEND,
                        method,
                        attempt,
                        "request aborted; sending it again"
                    );
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(failure) => return Err(failure.into_error(method)),
            }
        }
    }

    async fn call_raw(
        &self,
        handle: i64,
        method: &str,
        params: Json,
    ) -> std::result::Result<Json, Failure> {
        self.rpc.call(handle, method, params).await
    }

    /// The open app's handle.
    pub fn doc(&self) -> Result<i64> {
        self.doc
            .ok_or_else(|| Error::internal("no app is open in this engine session"))
    }

    /// The id of the open app.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Opens `app` in this session (`Global.OpenDoc`), or takes the app the session already
    /// has open when the engine attached the socket to a live session.
    ///
    /// Error 1002 (app already open) is answered as the engine means it: the session holds
    /// an app, so `GetActiveDoc` tells which; the same app is used, another one is an error,
    /// and none at all (it was closing) is opened again.
    ///
    /// A session app's URL (`/app/SessionApp_<id>`) makes the engine create the app with the
    /// session, so it is taken with `GetActiveDoc` rather than opened.
    pub async fn open_doc(&mut self, app: &str) -> Result<i64> {
        self.open_doc_with(app, &OpenDocOptions::default()).await
    }

    /// [`EngineSession::open_doc`] with `OpenDoc`'s optional parameters.
    pub async fn open_doc_with(&mut self, app: &str, options: &OpenDocOptions) -> Result<i64> {
        let existing = self.state == SessionState::Attached || app.starts_with("SessionApp_");
        if existing && let Some(handle) = self.active_doc(app).await? {
            return Ok(self.opened(app, handle));
        }
        let params = options.params(app);
        let handle = match self.call_raw(-1, "OpenDoc", params.clone()).await {
            Ok(result) => handle_of(&result),
            Err(failure) if failure.engine_code() == Some(codes::APP_ALREADY_OPEN) => {
                tracing::debug!(
                    backend = BACKEND,
                    "OpenDoc answered 1002; asking for the active app"
                );
                match self.active_doc(app).await? {
                    Some(handle) => Some(handle),
                    None => handle_of(&self.call(-1, "OpenDoc", params).await?),
                }
            }
            Err(failure) => {
                return Err(failure
                    .into_error("OpenDoc")
                    .context(format!("opening app '{app}'")));
            }
        };
        let handle = handle.ok_or_else(|| {
            Error::new(
                ErrorKind::DataSource,
                format!("OpenDoc of '{app}' returned no handle"),
            )
            .with_backend(BACKEND)
        })?;
        Ok(self.opened(app, handle))
    }

    fn opened(&mut self, app: &str, handle: i64) -> i64 {
        self.doc = Some(handle);
        self.app = app.to_string();
        handle
    }

    /// The session's open app when it is `app`; `None` when no app is open; an error when
    /// another app is.
    async fn active_doc(&self, app: &str) -> Result<Option<i64>> {
        let result = match self.call_raw(-1, "GetActiveDoc", json!([])).await {
            Ok(result) => result,
            Err(failure) if failure.engine_code() == Some(codes::APP_INVALID) => return Ok(None),
            Err(failure) => return Err(failure.into_error("GetActiveDoc")),
        };
        let open = result["qReturn"]["qGenericId"].as_str().unwrap_or("");
        if !open.is_empty() && !same_app(open, app) {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the engine session already has the app '{open}' open, not '{app}'; the \
                     session identity is shared with another client"
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(handle_of(&result))
    }

    /// Creates a session app (`Global.CreateSessionApp`): a transient, empty app that lives
    /// as long as the session. Returns its id.
    pub async fn create_session_app(&mut self) -> Result<String> {
        let result = self.call(-1, "CreateSessionApp", json!([])).await?;
        let id = result["qSessionAppId"].as_str().unwrap_or("").to_string();
        let handle = handle_of(&result).ok_or_else(|| {
            Error::internal("CreateSessionApp returned no handle").with_backend(BACKEND)
        })?;
        self.opened(&id, handle);
        Ok(id)
    }

    /// The engine's version (`Global.EngineVersion`).
    pub async fn engine_version(&self) -> Result<String> {
        let result = self.call(-1, "EngineVersion", json!([])).await?;
        Ok(result["qVersion"]["qComponentVersion"]
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Creates a session object from its properties; returns its handle.
    pub async fn create_session_object(&self, properties: Json) -> Result<i64> {
        let result = self
            .call(self.doc()?, "CreateSessionObject", json!([properties]))
            .await?;
        handle_of(&result).ok_or_else(|| {
            Error::internal("CreateSessionObject returned no handle").with_backend(BACKEND)
        })
    }

    /// Opens a stored object by id; `None` when the app has no such object.
    pub async fn get_object(&self, id: &str) -> Result<Option<i64>> {
        match self.call_raw(self.doc()?, "GetObject", json!([id])).await {
            Ok(result) => Ok(handle_of(&result)),
            Err(f) if f.engine_code() == Some(codes::GENERIC_NOT_FOUND) => Ok(None),
            Err(f) => Err(f.into_error("GetObject")),
        }
    }

    /// An object's layout (`GenericObject.GetLayout`).
    pub async fn get_layout(&self, handle: i64) -> Result<Json> {
        let mut result = self.call(handle, "GetLayout", json!([])).await?;
        Ok(result["qLayout"].take())
    }

    /// One page of an object's hypercube: the page as the engine answered it.
    pub async fn get_hypercube_data(&self, handle: i64, page: Page) -> Result<Json> {
        let params = json!(["/qHyperCubeDef", [page.to_json()]]);
        let mut result = self.call(handle, "GetHyperCubeData", params).await?;
        Ok(result["qDataPages"][0].take())
    }

    /// One page of an object's list object.
    pub async fn get_list_object_data(&self, handle: i64, page: Page) -> Result<Json> {
        let params = json!(["/qListObjectDef", [page.to_json()]]);
        let mut result = self.call(handle, "GetListObjectData", params).await?;
        Ok(result["qDataPages"][0].take())
    }

    /// Selects values of a list object by element number.
    pub async fn select_list_object_values(&self, handle: i64, elements: &[i64]) -> Result<bool> {
        let params = json!(["/qListObjectDef", elements, false, false]);
        let result = self.call(handle, "SelectListObjectValues", params).await?;
        Ok(result["qSuccess"].as_bool().unwrap_or(false))
    }

    /// A field's handle; `None` when the app has no such field.
    pub async fn get_field(&self, name: &str) -> Result<Option<i64>> {
        match self.call_raw(self.doc()?, "GetField", json!([name])).await {
            Ok(result) => Ok(handle_of(&result)),
            Err(f) if f.engine_code() == Some(codes::GENERIC_NOT_FOUND) => Ok(None),
            Err(f) => Err(f.into_error("GetField")),
        }
    }

    /// Selects field values (`Field.SelectValues`, replacing the field's selection).
    pub async fn select_values(&self, field: i64, values: &[Json]) -> Result<bool> {
        let result = self
            .call(field, "SelectValues", json!([values, false, false]))
            .await?;
        Ok(result["qReturn"].as_bool().unwrap_or(false))
    }

    /// Clears every selection except locked fields (`Doc.ClearAll`).
    pub async fn clear_all(&self) -> Result<()> {
        self.call(self.doc()?, "ClearAll", json!([false])).await?;
        Ok(())
    }

    /// Evaluates an expression in the current selections (`Doc.EvaluateEx`): the
    /// `FieldValue` with `qText`, `qIsNumeric` and `qNumber`.
    pub async fn evaluate_ex(&self, expression: &str) -> Result<Json> {
        let mut result = self
            .call(self.doc()?, "EvaluateEx", json!([expression]))
            .await?;
        Ok(result["qValue"].take())
    }

    /// A variable's handle by name; `None` when the app has no such variable.
    pub async fn get_variable_by_name(&self, name: &str) -> Result<Option<i64>> {
        match self
            .call_raw(self.doc()?, "GetVariableByName", json!([name]))
            .await
        {
            Ok(result) => Ok(handle_of(&result)),
            Err(f) if f.engine_code() == Some(codes::GENERIC_NOT_FOUND) => Ok(None),
            Err(f) => Err(f.into_error("GetVariableByName")),
        }
    }

    /// The app's tables and their fields (`Doc.GetTablesAndKeys`), as `qtr`.
    pub async fn tables(&self) -> Result<Json> {
        let none = json!({"qcx": 0, "qcy": 0});
        let params = json!([none, none, 0, true, false]);
        let mut result = self.call(self.doc()?, "GetTablesAndKeys", params).await?;
        Ok(result["qtr"].take())
    }
}

/// Whether the engine's id of an open app names `app` (the engine may answer with a path
/// such as `/apps/sales.qvf` for the id `sales.qvf`).
fn same_app(open: &str, app: &str) -> bool {
    open == app
        || open.rsplit(['/', '\\']).next() == Some(app)
        || app.rsplit(['/', '\\']).next() == Some(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_retried_when_aborted() {
        assert!(retries_when_aborted("GetLayout"));
        assert!(retries_when_aborted("CreateSessionObject"));
        assert!(retries_when_aborted("OpenDoc"));
        assert!(!retries_when_aborted("GetHyperCubeData"));
        assert!(!retries_when_aborted("SelectValues"));
    }

    #[test]
    fn app_ids_compare_with_their_paths() {
        assert!(same_app("/apps/sales.qvf", "sales.qvf"));
        assert!(same_app("abc", "abc"));
        assert!(!same_app("other", "abc"));
    }
}
