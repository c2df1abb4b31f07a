//! A QVD file as a data source.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use mad_core::source::{evaluate_on_table, fetch_from_table};
use mad_core::{DataSource, Error, FetchRequest, Field, Result, SourceCapabilities, Table, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{BACKEND, read_qvd};

/// How to read a QVD file: the options of a `qvd` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QvdOptions {
    /// The file; a relative path is resolved against the definitions' folder when the source
    /// is built from a definition.
    pub path: PathBuf,
}

impl QvdOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        QvdOptions { path: path.into() }
    }
}

/// A QVD file as a data source. The file is read once, on first use, and served from memory.
pub struct QvdSource {
    name: String,
    options: QvdOptions,
    table: OnceCell<Table>,
}

impl QvdSource {
    pub fn new(options: QvdOptions) -> Self {
        QvdSource {
            name: format!("qvd:{}", options.path.display()),
            options,
            table: OnceCell::new(),
        }
    }

    /// The whole file as a table, reading it on first use. A failed read is tried again on
    /// the next call.
    pub async fn table(&self) -> Result<&Table> {
        self.table
            .get_or_try_init(|| async {
                let path = self.options.path.clone();
                tokio::task::spawn_blocking(move || read_qvd(&path))
                    .await
                    .map_err(|e| {
                        Error::internal(format!("the QVD reader stopped: {e}"))
                            .with_backend(BACKEND)
                    })?
            })
            .await
    }
}

impl fmt::Debug for QvdSource {
    /// Shows the file and how many rows are loaded, not the rows themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QvdSource")
            .field("path", &self.options.path)
            .field("loaded_rows", &self.table.get().map(Table::len))
            .finish()
    }
}

#[async_trait]
impl DataSource for QvdSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
    }

    async fn fields(&self) -> Result<Vec<Field>> {
        Ok(self.table().await?.fields().to_vec())
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Table> {
        fetch_from_table(self.table().await?, request, BACKEND)
    }

    async fn evaluate(
        &self,
        request: FetchRequest<'_>,
        expressions: &[String],
    ) -> Result<Vec<Value>> {
        evaluate_on_table(self.table().await?, request, expressions, BACKEND)
    }
}
