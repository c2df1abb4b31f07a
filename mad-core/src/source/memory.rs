//! A source serving a table held in memory.

use async_trait::async_trait;

use super::{DataSource, FetchRequest, SourceCapabilities, evaluate_on_table, fetch_from_table};
use crate::error::Result;
use crate::table::Table;
use crate::value::{Field, Value};

/// Serves one in-memory table, for tests and for tables built by the caller.
#[derive(Debug, Clone)]
pub struct TableSource {
    name: String,
    table: Table,
}

impl TableSource {
    pub fn new(name: impl Into<String>, table: Table) -> Self {
        TableSource {
            name: name.into(),
            table,
        }
    }
}

#[async_trait]
impl DataSource for TableSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
    }

    async fn fields(&self) -> Result<Vec<Field>> {
        Ok(self.table.fields().to_vec())
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Table> {
        fetch_from_table(&self.table, request, "memory")
    }

    async fn evaluate(
        &self,
        request: FetchRequest<'_>,
        expressions: &[String],
    ) -> Result<Vec<Value>> {
        evaluate_on_table(&self.table, request, expressions, "memory")
    }
}
