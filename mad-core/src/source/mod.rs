//! Data sources: where tables come from.

mod csv;
mod memory;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::csv::{CsvOptions, CsvSource, FieldOverride, read_csv};
pub use self::memory::TableSource;

use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::filter::FilterSet;
use crate::table::Table;
use crate::value::{Field, Value};

/// One column a report asks a source for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryColumn {
    /// The column's name in the returned table (for plain fields, the field name).
    pub name: String,
    /// An expression computing the column, for sources that evaluate expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// A measure is aggregated over the dimensions; a dimension is a field's values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub measure: bool,
}

impl QueryColumn {
    /// A dimension reading the field `name` as it is.
    pub fn field(name: impl Into<String>) -> Self {
        QueryColumn {
            name: name.into(),
            expr: None,
            measure: false,
        }
    }
}

/// The columns to fetch. An empty query asks for every field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Query {
    pub columns: Vec<QueryColumn>,
}

impl Query {
    pub fn fields<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Query {
            columns: names.into_iter().map(QueryColumn::field).collect(),
        }
    }
}

/// What one fetch asks for.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    pub query: &'a Query,
    pub filters: &'a FilterSet,
    /// The identity to fetch as, for sources that apply their own access rules per user.
    pub identity: Option<&'a str>,
}

impl<'a> FetchRequest<'a> {
    pub fn new(query: &'a Query, filters: &'a FilterSet) -> Self {
        FetchRequest {
            query,
            filters,
            identity: None,
        }
    }

    pub fn with_identity(mut self, identity: &'a str) -> Self {
        self.identity = Some(identity);
        self
    }
}

/// What a data source can do beyond returning a field's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SourceCapabilities {
    /// Evaluates expressions and measures (aggregates over dimensions).
    pub expressions: bool,
    /// Applies filters itself rather than after loading.
    pub native_filters: bool,
    /// Fetches as a given identity, so the source's own access rules apply per recipient.
    pub identity: bool,
}

/// A source of tables.
///
/// # Contract
/// - `fetch` returns only rows the filter set allows. A required filter on a field the source
///   lacks is an `InvalidConfig` error naming the field; a filter value the field never holds
///   is an `EmptyFilter` error naming it. A source never returns more rows than the filters
///   allow, whatever fails.
/// - A query column the source cannot compute (an expression on a file source) is an
///   `Unsupported` error; so is an identity on a source without that capability.
/// - A fetch returns the whole table or an error, never part of it.
#[async_trait]
pub trait DataSource: Send + Sync + fmt::Debug {
    /// A short name for logs and errors (`csv:orders.csv`, `qlik:Sales`).
    fn name(&self) -> &str;

    fn capabilities(&self) -> SourceCapabilities;

    /// The fields the source offers.
    async fn fields(&self) -> Result<Vec<Field>>;

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Table>;

    /// Evaluates expressions (such as `Sum([Sales])`) over the rows `request` selects, for
    /// placeholders. Sources that cannot evaluate expressions return `Unsupported`.
    async fn evaluate(
        &self,
        request: FetchRequest<'_>,
        expressions: &[String],
    ) -> Result<Vec<Value>> {
        let _ = (request, expressions);
        Err(Error::unsupported(
            self.name().to_string(),
            "evaluating expressions",
        ))
    }
}

/// Answers a fetch from a table already in memory: checks the query, applies the filters and
/// keeps the asked columns. File sources share this.
pub fn fetch_from_table(
    table: &Table,
    request: FetchRequest<'_>,
    backend: &'static str,
) -> Result<Table> {
    if request.identity.is_some() {
        return Err(Error::unsupported(
            backend,
            "fetching as a per-recipient identity",
        ));
    }
    if let Some(c) = request
        .query
        .columns
        .iter()
        .find(|c| c.expr.is_some() || c.measure)
    {
        return Err(Error::unsupported(
            backend,
            format!("the expression or measure column '{}'", c.name),
        ));
    }
    let filtered = request
        .filters
        .apply(table)
        .map_err(|e| e.with_backend(backend))?;
    if request.query.columns.is_empty() {
        return Ok(filtered);
    }
    let names: Vec<&str> = request
        .query
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    filtered
        .project(&names)
        .map_err(|e| e.with_backend(backend))
}

/// Evaluates expressions over the rows of an in-memory table a request selects, with the
/// subset of the Qlik expression language in [`crate::expr`]. File sources share this.
pub fn evaluate_on_table(
    table: &Table,
    request: FetchRequest<'_>,
    expressions: &[String],
    backend: &'static str,
) -> Result<Vec<Value>> {
    let all = Query::default();
    let rows = fetch_from_table(
        table,
        FetchRequest {
            query: &all,
            ..request
        },
        backend,
    )?;
    expressions
        .iter()
        .map(|e| {
            Expr::parse(e)?
                .evaluate(&rows)
                .map_err(|err| err.with_backend(backend))
        })
        .collect()
}
