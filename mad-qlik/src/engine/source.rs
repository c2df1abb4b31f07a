//! The `qlik` data source: a fetch is a set of selections and a hypercube, in a pooled
//! engine session, run again from the start when the connection fails midway.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mad_core::{
    BuildContext, DataSource, Error, ErrorKind, FetchRequest, Field, FieldKind, Registry, Result,
    SourceCapabilities, Table, Value, parse_options,
};
use serde_json::Value as Json;

use super::connector::Connector;
use super::cube::{cube_for_query, engine_number, fetch_object_cube, fetch_query_cube};
use super::errors::BACKEND;
use super::options::QlikOptions;
use super::pool::SessionPool;
use super::select::apply_filters;
use super::session::EngineSession;

/// The first pause before a failed fetch runs again; it doubles each time.
const RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Registers the `qlik` source kind; its options are [`QlikOptions`].
pub fn register(registry: &mut Registry) {
    registry.register_source(BACKEND, build_source);
}

fn build_source(options: &Json, ctx: &BuildContext) -> Result<Arc<dyn DataSource>> {
    let mut options: QlikOptions =
        parse_options(BACKEND, options).map_err(|e| e.with_backend(BACKEND))?;
    options.resolve_paths(|p| ctx.resolve(p));
    Ok(Arc::new(QlikSource::new(options)?))
}

/// What one run in a session produces.
enum Work<'a> {
    Fetch,
    Evaluate(&'a [String]),
}

enum Output {
    Table(Table),
    Values(Vec<Value>),
}

/// A Qlik app as a data source, read through the Engine API.
///
/// A fetch takes a session from the pool, clears its selections, selects the filter set's
/// values (and checks the engine selected exactly those), then reads a hypercube built from
/// the query, or the hypercube of an existing object, page by page. A connection that drops
/// or a request the engine aborts makes the whole fetch run again in a new session, up to
/// `retries` times; a fetch returns the whole table or an error, never part of it.
pub struct QlikSource {
    name: String,
    options: QlikOptions,
    pool: SessionPool,
    field_names: Mutex<HashMap<Option<String>, Arc<Vec<String>>>>,
}

impl fmt::Debug for QlikSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QlikSource")
            .field("app", &self.options.app)
            .field("connector", self.pool.connector())
            .field("object", &self.options.object)
            .field("row_key", &self.options.row_key)
            .field("max_sessions", &self.options.max_sessions)
            .finish()
    }
}

impl QlikSource {
    /// Checks the options and reads the secrets and certificates; connects on first use.
    pub fn new(options: QlikOptions) -> Result<Self> {
        let connector = Arc::new(Connector::new(&options)?);
        Ok(QlikSource {
            name: format!("qlik:{}", options.app),
            pool: SessionPool::new(connector, options.max_sessions),
            options,
            field_names: Mutex::new(HashMap::new()),
        })
    }

    /// Engine sessions kept open for reuse.
    pub fn idle_sessions(&self) -> usize {
        self.pool.idle_sessions()
    }

    async fn run(&self, request: FetchRequest<'_>, work: Work<'_>) -> Result<Output> {
        if request.identity.is_some_and(|id| id.trim().is_empty()) {
            return Err(Error::invalid_config(
                "the recipient's identity is blank; give the user to fetch as, or no identity \
                 to fetch as the source's user",
            )
            .with_backend(BACKEND));
        }
        if request.identity.is_some() && !self.pool.connector().supports_identity() {
            return Err(Error::unsupported(
                BACKEND,
                format!(
                    "fetching as a per-recipient identity with {} authentication, which always \
                     acts as one user; use certificate or header authentication",
                    self.options.auth.mode()
                ),
            ));
        }
        let mut attempt = 0;
        loop {
            match self.run_once(request, &work).await {
                Err(err) if retryable(&err) && attempt < self.options.retries => {
                    attempt += 1;
                    let pause = (RETRY_DELAY * 2u32.pow(attempt - 1)).min(MAX_RETRY_DELAY);
                    let pause = err.retry_after().map_or(pause, |w| w.max(pause));
                    tracing::info!(
                        backend = BACKEND,
                        app = %self.options.app,
                        attempt,
                        error = %err,
                        "running the fetch again in a new session"
                    );
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn run_once(&self, request: FetchRequest<'_>, work: &Work<'_>) -> Result<Output> {
        let mut lease = self.pool.acquire(request.identity).await?;
        let result = self.work_on(lease.session(), request, work).await;
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                ErrorKind::EmptyFilter | ErrorKind::InvalidConfig | ErrorKind::NotFound
            ),
        };
        if healthy && !lease.session().is_closed() {
            lease.release();
        }
        result
    }

    async fn work_on(
        &self,
        session: &mut EngineSession,
        request: FetchRequest<'_>,
        work: &Work<'_>,
    ) -> Result<Output> {
        let fields = self.field_names(session, request.identity).await?;
        if let Some(key) = self.options.row_key.as_deref()
            && !fields.iter().any(|f| f == key)
        {
            return Err(Error::invalid_config(format!(
                "the row_key field '{key}' is not in the app (fields: {})",
                fields.join(", ")
            ))
            .with_backend(BACKEND));
        }
        apply_filters(session, request.filters, &fields).await?;
        match work {
            Work::Fetch => {
                let table = match &self.options.object {
                    Some(object) => fetch_object_cube(session, object, request.query).await?,
                    None => {
                        let spec = cube_for_query(
                            request.query,
                            &fields,
                            self.options.row_key.as_deref(),
                        )?;
                        fetch_query_cube(session, &spec).await?
                    }
                };
                Ok(Output::Table(table))
            }
            Work::Evaluate(expressions) => {
                let mut values = Vec::with_capacity(expressions.len());
                for expression in *expressions {
                    values.push(evaluate(session, expression).await?);
                }
                Ok(Output::Values(values))
            }
        }
    }

    /// The app's field names as this user sees them, read once per user.
    async fn field_names(
        &self,
        session: &EngineSession,
        identity: Option<&str>,
    ) -> Result<Arc<Vec<String>>> {
        let user = identity.map(str::to_string);
        let cached = self
            .field_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .cloned();
        if let Some(names) = cached {
            return Ok(names);
        }
        let names: Arc<Vec<String>> = Arc::new(
            app_fields(session)
                .await?
                .into_iter()
                .map(|f| f.name)
                .collect(),
        );
        self.field_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user, names.clone());
        Ok(names)
    }
}

fn retryable(err: &Error) -> bool {
    matches!(err.kind(), ErrorKind::Transient | ErrorKind::RateLimited)
}

/// The fields of the open app's tables, each once, with the kind their tags give.
async fn app_fields(session: &EngineSession) -> Result<Vec<Field>> {
    let tables = session.tables().await?;
    let mut fields: Vec<Field> = Vec::new();
    for table in tables.as_array().into_iter().flatten() {
        for field in table["qFields"].as_array().into_iter().flatten() {
            let name = field["qName"].as_str().unwrap_or("");
            if name.is_empty() || name.starts_with('$') || fields.iter().any(|f| f.name == name) {
                continue;
            }
            fields.push(Field::new(name, field_kind(&field["qTags"])));
        }
    }
    Ok(fields)
}

fn field_kind(tags: &Json) -> FieldKind {
    let has = |tag: &str| tags.as_array().is_some_and(|t| t.iter().any(|v| v == tag));
    if has("$date") {
        FieldKind::Date
    } else if has("$timestamp") {
        FieldKind::Timestamp
    } else if has("$numeric") && has("$text") {
        FieldKind::Mixed
    } else if has("$integer") {
        FieldKind::Integer
    } else if has("$numeric") {
        FieldKind::Number
    } else {
        FieldKind::Text
    }
}

/// Whether an expression is a bare name that may be a variable.
fn is_bare_name(expression: &str) -> bool {
    let mut chars = expression.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$'))
}

/// Evaluates an expression in the session's selections: a bare variable name gives the
/// variable's value, anything else goes to `Doc.EvaluateEx`.
async fn evaluate(session: &EngineSession, expression: &str) -> Result<Value> {
    let expression = expression.trim();
    if is_bare_name(expression)
        && let Some(variable) = session.get_variable_by_name(expression).await?
    {
        let layout = session.get_layout(variable).await?;
        let text = layout["qText"].as_str().unwrap_or("");
        return Ok(match engine_number(&layout["qNum"]) {
            Some(n) if text.is_empty() => Value::Number(n),
            Some(n) => Value::dual(n, text),
            None => Value::text(text),
        });
    }
    let value = session.evaluate_ex(expression).await?;
    let text = value["qText"].as_str().unwrap_or("");
    if text.starts_with("Error:") || text.starts_with("Error in expression") {
        return Err(Error::invalid_config(format!(
            "the engine cannot evaluate '{expression}': {text}"
        ))
        .with_backend(BACKEND));
    }
    Ok(
        match (
            value["qIsNumeric"] == true,
            engine_number(&value["qNumber"]),
        ) {
            (true, Some(n)) if text.is_empty() => Value::Number(n),
            (true, Some(n)) => Value::dual(n, text),
            _ if text == "-" => Value::Null,
            _ => Value::text(text),
        },
    )
}

#[async_trait]
impl DataSource for QlikSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            expressions: true,
            native_filters: true,
            identity: self.pool.connector().supports_identity(),
        }
    }

    async fn fields(&self) -> Result<Vec<Field>> {
        let mut lease = self.pool.acquire(None).await?;
        let fields = app_fields(lease.session()).await?;
        lease.release();
        Ok(fields)
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Table> {
        match self.run(request, Work::Fetch).await? {
            Output::Table(table) => Ok(table),
            Output::Values(_) => Err(Error::internal("a fetch produced values")),
        }
    }

    async fn evaluate(
        &self,
        request: FetchRequest<'_>,
        expressions: &[String],
    ) -> Result<Vec<Value>> {
        match self.run(request, Work::Evaluate(expressions)).await? {
            Output::Values(values) => Ok(values),
            Output::Table(_) => Err(Error::internal("an evaluation produced a table")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_told_from_expressions() {
        assert!(is_bare_name("vRegion"));
        assert!(is_bare_name("v.Max_Year"));
        assert!(!is_bare_name("Sum([Sales])"));
        assert!(!is_bare_name("a + b"));
        assert!(!is_bare_name(""));
    }

    #[test]
    fn tags_give_kinds() {
        assert_eq!(
            field_kind(&serde_json::json!(["$numeric", "$integer"])),
            FieldKind::Integer
        );
        assert_eq!(
            field_kind(&serde_json::json!(["$ascii", "$text"])),
            FieldKind::Text
        );
        assert_eq!(
            field_kind(&serde_json::json!([
                "$numeric",
                "$integer",
                "$timestamp",
                "$date"
            ])),
            FieldKind::Date
        );
    }
}
