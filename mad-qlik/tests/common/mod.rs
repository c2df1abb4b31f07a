//! A TLS engine double serving the Superstore orders, options pointing at it, and readers
//! of the same data that do not go through Qlik.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mad_core::source::{CsvOptions, read_csv};
use mad_core::{DataSource, FetchRequest, FilterSet, Query, QueryColumn, Registry, Table, Value};
use mad_qlik::engine::{QlikAuth, QlikOptions, QlikSource};
use mad_qlik_double::{App, QlikDouble, QlikDoubleBuilder};
use tempfile::TempDir;

pub const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/superstore/superstore.csv"
);

pub const LEGO_SETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/qvd/lego/sets.qvd"
);

pub fn superstore_app() -> App {
    App::from_file("superstore", SUPERSTORE).expect("the Superstore CSV loads")
}

/// The Superstore orders read by the project's CSV reader, for reference results.
pub fn superstore_table() -> Table {
    read_csv(&CsvOptions::new(SUPERSTORE)).expect("the Superstore CSV reads")
}

/// A running double with TLS and a folder holding its CA.
pub struct Engine {
    pub double: QlikDouble,
    pub dir: TempDir,
    pub ca: PathBuf,
}

impl Engine {
    /// Starts `builder` with TLS and writes its CA to a temporary folder.
    pub async fn start(builder: QlikDoubleBuilder) -> Engine {
        let double = builder.tls().start().await.expect("the double starts");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("root.pem");
        std::fs::write(&ca, double.ca_pem().unwrap()).unwrap();
        Engine { double, dir, ca }
    }

    /// The engine's base URL (no app).
    pub fn url(&self) -> String {
        format!("wss://localhost:{}", self.double.port())
    }

    /// Options for `app` trusting the double's CA.
    pub fn options(&self, app: &str, auth: QlikAuth) -> QlikOptions {
        let mut options = QlikOptions::new(self.url(), app).with_auth(auth);
        options.ca_file = Some(self.ca.clone());
        options.request_timeout = 10.0;
        options
    }

    pub fn source(&self, options: QlikOptions) -> QlikSource {
        QlikSource::new(options).expect("the source builds")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fails the test when the client sent anything the published protocol does not allow.
    pub fn assert_no_violations(&self) {
        let violations = self.double.violations();
        assert!(
            violations.is_empty(),
            "protocol violations: {violations:#?}"
        );
    }
}

/// A source built from JSON options through the registry, as definitions build it.
pub fn registry_source(options: serde_json::Value, base: &Path) -> Arc<dyn DataSource> {
    let mut registry = Registry::new();
    mad_qlik::register(&mut registry);
    registry
        .build_source("qlik", &options, &mad_core::BuildContext::new(base))
        .expect("the qlik source builds")
}

pub fn measure(name: &str, expr: &str) -> QueryColumn {
    QueryColumn {
        name: name.into(),
        expr: Some(expr.into()),
        measure: true,
    }
}

pub async fn fetch(
    source: &dyn DataSource,
    query: &Query,
    filters: &FilterSet,
) -> mad_core::Result<Table> {
    source.fetch(FetchRequest::new(query, filters)).await
}

pub fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// The texts of a column, for comparing tables from different readers.
pub fn texts(table: &Table, col: usize) -> Vec<String> {
    table
        .column_values(col)
        .map(|v| match v {
            Value::Null => String::new(),
            Value::Text(s) | Value::Dual(_, s) => s.to_string(),
            Value::Number(n) => n.to_string(),
        })
        .collect()
}

/// The distinct values of `field` in the reference table, as texts.
pub fn distinct_texts(table: &Table, field: &str) -> Vec<String> {
    let col = table.require_column(field).unwrap();
    let mut values: Vec<String> = table
        .distinct(col)
        .iter()
        .filter_map(|v| v.as_text().map(str::to_string))
        .collect();
    values.sort();
    values
}

/// A random credential made for one test run.
pub fn throwaway_secret(label: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(label.as_bytes());
    format!("{label}-{:016x}{:016x}", hasher.finish(), random())
}

/// Writes `value` to a file in `dir` and returns the reference a definition would hold.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> mad_core::SecretRef {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    mad_core::SecretRef::File(path)
}
