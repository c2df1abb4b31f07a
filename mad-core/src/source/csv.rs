//! CSV files: RFC 4180, UTF-8 with or without a byte-order mark, a header row, types inferred
//! per column unless the definition names them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{DataSource, FetchRequest, SourceCapabilities, evaluate_on_table, fetch_from_table};
use crate::error::{Error, ErrorKind, Result};
use crate::format::parse_iso_datetime;
use crate::table::{Column, ColumnBuilder, Table};
use crate::value::{Field, FieldKind, NumberFormat, Schema, Value};

const BACKEND: &str = "csv";

/// A field's kind (and optionally its format) forced by the definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldOverride {
    Kind(FieldKind),
    Full {
        kind: FieldKind,
        #[serde(default)]
        format: Option<String>,
    },
}

impl FieldOverride {
    fn kind(&self) -> FieldKind {
        match self {
            FieldOverride::Kind(k) | FieldOverride::Full { kind: k, .. } => *k,
        }
    }

    fn format(&self) -> Option<&str> {
        match self {
            FieldOverride::Full { format, .. } => format.as_deref(),
            FieldOverride::Kind(_) => None,
        }
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    pub path: PathBuf,
    pub delimiter: char,
    /// Cell texts that mean "no value" (the empty cell always does).
    pub null_values: Vec<String>,
    /// Kinds (and formats) for named fields, overriding inference.
    pub fields: BTreeMap<String, FieldOverride>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            path: PathBuf::new(),
            delimiter: ',',
            null_values: Vec::new(),
            fields: BTreeMap::new(),
        }
    }
}

impl CsvOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvOptions {
            path: path.into(),
            ..Default::default()
        }
    }
}

/// A CSV file as a data source. The file is read once, on first use, and served from memory.
#[derive(Debug)]
pub struct CsvSource {
    name: String,
    options: CsvOptions,
    table: OnceCell<Table>,
}

impl CsvSource {
    pub fn new(options: CsvOptions) -> Self {
        CsvSource {
            name: format!("csv:{}", options.path.display()),
            options,
            table: OnceCell::new(),
        }
    }

    /// The whole file as a table, reading it on first use.
    pub async fn table(&self) -> Result<&Table> {
        self.table
            .get_or_try_init(|| async {
                let options = self.options.clone();
                tokio::task::spawn_blocking(move || read_csv(&options))
                    .await
                    .map_err(|e| Error::internal(format!("CSV reader stopped: {e}")))?
            })
            .await
    }
}

#[async_trait]
impl DataSource for CsvSource {
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

/// Reads a whole CSV file into a table.
///
/// A path ending in `.gz` is decompressed while reading.
pub fn read_csv(options: &CsvOptions) -> Result<Table> {
    let path = &options.path;
    let mut bytes = Vec::new();
    let gzipped = path.extension().is_some_and(|e| e == "gz");
    std::fs::File::open(path)
        .and_then(|f| {
            if gzipped {
                flate2::read::MultiGzDecoder::new(f).read_to_end(&mut bytes)
            } else {
                std::io::BufReader::new(f).read_to_end(&mut bytes)
            }
        })
        .map_err(|e| Error::io(format!("reading {}", path.display()), e).with_backend(BACKEND))?;
    parse_csv(&bytes, options).map_err(|e| e.context(path.display()).with_backend(BACKEND))
}

fn parse_csv(bytes: &[u8], options: &CsvOptions) -> Result<Table> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let delimiter = u8::try_from(options.delimiter).map_err(|_| {
        Error::invalid_config(format!(
            "the delimiter '{}' is not a single-byte character",
            options.delimiter
        ))
    })?;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader.headers().map_err(csv_error)?.clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(Error::invalid_input("the file has no header row"));
    }
    check_header(&headers)?;

    let mut columns: Vec<ColumnBuilder> =
        headers.iter().map(|_| ColumnBuilder::default()).collect();
    let mut lines: Vec<u64> = Vec::new();
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        lines.push(record.position().map_or(0, |p| p.line()));
        for (builder, cell) in columns.iter_mut().zip(record.iter()) {
            if cell.is_empty() || options.null_values.iter().any(|n| n == cell) {
                builder.push(Value::Null);
            } else {
                builder.push(Value::text(cell));
            }
        }
    }

    let mut fields = Vec::with_capacity(headers.len());
    let mut typed = Vec::with_capacity(headers.len());
    for (name, builder) in headers.iter().zip(columns) {
        let column = builder.finish();
        let forced = options.fields.get(name);
        let (field, column) = type_column(name, column, forced, &lines)?;
        fields.push(field);
        typed.push(column);
    }
    if let Some(unknown) = options
        .fields
        .keys()
        .find(|k| !headers.iter().any(|h| h == *k))
    {
        return Err(Error::invalid_config(format!(
            "a type is given for the field '{unknown}', which the file does not have (fields: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Table::new(Schema::new(fields), typed)
}

fn check_header(headers: &::csv::StringRecord) -> Result<()> {
    for (i, name) in headers.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::invalid_input(format!(
                "line 1: column {} has no name in the header",
                i + 1
            )));
        }
        if headers.iter().take(i).any(|h| h == name) {
            return Err(Error::invalid_input(format!(
                "line 1: the header names the field '{name}' twice"
            )));
        }
    }
    Ok(())
}

fn csv_error(err: ::csv::Error) -> Error {
    let line = err.position().map(|p| p.line());
    let message = match err.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields where the header has {expected_len}"),
        ::csv::ErrorKind::Utf8 { err: e, .. } => {
            format!("is not valid UTF-8 (field {})", e.field() + 1)
        }
        ::csv::ErrorKind::Io(e) => format!("could not be read: {e}"),
        other => format!("could not be parsed: {other:?}"),
    };
    match line {
        Some(line) => Error::new(ErrorKind::InvalidInput, format!("line {line} {message}")),
        None => Error::new(ErrorKind::InvalidInput, format!("the file {message}")),
    }
}

/// Infers (or applies) a column's kind by looking at its distinct values only.
fn type_column(
    name: &str,
    column: Column,
    forced: Option<&FieldOverride>,
    lines: &[u64],
) -> Result<(Field, Column)> {
    let texts: Vec<Option<&str>> = column.symbols().iter().map(Value::as_text).collect();
    let kind = match forced {
        Some(f) => f.kind(),
        None => infer_kind(&texts),
    };
    let mut symbols = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let value = match text {
            None => Value::Null,
            Some(t) => convert(t, kind).ok_or_else(|| {
                let row = column
                    .indices()
                    .iter()
                    .position(|&s| s as usize == i)
                    .unwrap_or(0);
                Error::invalid_input(format!(
                    "line {}: the field '{name}' holds \"{t}\", which is not a {kind:?} value",
                    lines.get(row).copied().unwrap_or(0)
                ))
            })?,
        };
        symbols.push(value);
    }
    let format = match forced.and_then(FieldOverride::format) {
        Some(code) => Some(NumberFormat::new(code)),
        None => default_format(kind, &texts),
    };
    let field = Field {
        name: name.to_string(),
        kind,
        format,
    };
    let column = Column::from_parts(symbols, column.indices().to_vec())?;
    Ok((field, column))
}

fn infer_kind(texts: &[Option<&str>]) -> FieldKind {
    let present: Vec<&str> = texts.iter().flatten().copied().collect();
    if present.is_empty() {
        return FieldKind::Text;
    }
    let all = |f: &dyn Fn(&str) -> bool| present.iter().all(|t| f(t));
    if all(&|t| is_integer(t)) {
        FieldKind::Integer
    } else if all(&|t| parse_number(t).is_some()) {
        FieldKind::Number
    } else if all(&|t| matches!(parse_iso_datetime(t), Some((_, false)))) {
        FieldKind::Date
    } else if all(&|t| parse_iso_datetime(t).is_some()) {
        FieldKind::Timestamp
    } else {
        FieldKind::Text
    }
}

/// An integer without leading zeros (a leading zero marks a code, such as a postal code).
fn is_integer(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty()
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'))
}

fn parse_number(t: &str) -> Option<f64> {
    let looks_numeric = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !looks_numeric || t.starts_with('+') {
        return None;
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.") {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn convert(text: &str, kind: FieldKind) -> Option<Value> {
    match kind {
        FieldKind::Text => Some(Value::text(text)),
        FieldKind::Integer => text.parse::<i64>().ok().map(|n| Value::Number(n as f64)),
        FieldKind::Number => parse_number(text).map(Value::Number),
        FieldKind::Date | FieldKind::Timestamp => {
            parse_iso_datetime(text).map(|(serial, _)| Value::dual(serial, text))
        }
        FieldKind::Mixed => Some(match parse_number(text) {
            Some(n) => Value::dual(n, text),
            None => Value::text(text),
        }),
    }
}

fn default_format(kind: FieldKind, texts: &[Option<&str>]) -> Option<NumberFormat> {
    match kind {
        FieldKind::Date => Some(NumberFormat::new("YYYY-MM-DD")),
        FieldKind::Timestamp => {
            let seconds = texts.iter().flatten().any(|t| t.len() > 16);
            Some(NumberFormat::new(if seconds {
                "YYYY-MM-DD hh:mm:ss"
            } else {
                "YYYY-MM-DD hh:mm"
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Table> {
        parse_csv(text.as_bytes(), &CsvOptions::default())
    }

    #[test]
    fn infers_kinds_and_keeps_quoting() {
        let t = parse(
            "\u{feff}id,name,amount,day,zip\n1,\"Wilson, \"\"Jones\"\"\",1.5,2016-11-08,06824\n2,Zürich,-2,2016-11-09,42420\n",
        )
        .unwrap();
        let kinds: Vec<FieldKind> = t.fields().iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FieldKind::Integer,
                FieldKind::Text,
                FieldKind::Number,
                FieldKind::Date,
                FieldKind::Text
            ]
        );
        assert_eq!(t.fields()[0].name, "id");
        assert_eq!(t.value(0, 1), &Value::text("Wilson, \"Jones\""));
        assert_eq!(t.value(1, 2), &Value::Number(-2.0));
        assert_eq!(t.value(0, 3), &Value::dual(42682.0, "2016-11-08"));
        assert_eq!(t.value(0, 4), &Value::text("06824"));
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let err = parse("a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = parse_csv(b"a,b\n1,2\n3,\xff\xfe\n", &CsvOptions::default()).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn overrides_force_kinds_and_report_bad_values() {
        let mut options = CsvOptions::default();
        options
            .fields
            .insert("zip".into(), FieldOverride::Kind(FieldKind::Text));
        let t = parse_csv(b"zip\n6824\n", &options).unwrap();
        assert_eq!(t.value(0, 0), &Value::text("6824"));

        options.fields.clear();
        options
            .fields
            .insert("zip".into(), FieldOverride::Kind(FieldKind::Integer));
        let err = parse_csv(b"zip\n6824\nabc\n", &options).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn null_tokens_become_nulls() {
        let options = CsvOptions {
            null_values: vec!["NA".into()],
            ..Default::default()
        };
        let t = parse_csv(b"delay\n5\nNA\n\n-3\n", &options).unwrap();
        assert_eq!(t.fields()[0].kind, FieldKind::Integer);
        assert!(t.value(1, 0).is_null());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn duplicate_headers_are_refused() {
        assert!(parse("a,a\n1,2\n").is_err());
    }
}
