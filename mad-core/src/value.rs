//! Values and field metadata, modelled on Qlik's: a value is null, a number, a text, or a dual
//! (a number that also carries the text it is shown as, such as a date or a formatted amount).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One cell value.
///
/// Dates and timestamps are duals whose number is the Qlik (and Excel) serial: days since
/// 1899-12-30, with the time of day as the fraction. Equality and hashing compare numbers by
/// their bits, so a value can key a symbol table.
#[derive(Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Number(f64),
    Text(Arc<str>),
    Dual(f64, Arc<str>),
}

impl Value {
    pub fn text(s: impl Into<Arc<str>>) -> Self {
        Value::Text(s.into())
    }

    pub fn dual(number: f64, text: impl Into<Arc<str>>) -> Self {
        Value::Dual(number, text.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The numeric part, for numbers and duals.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) | Value::Dual(n, _) => Some(*n),
            _ => None,
        }
    }

    /// The text part, for texts and duals.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Dual(_, s) => Some(s),
            _ => None,
        }
    }

    /// Whether a filter value (always written as text) selects this value.
    ///
    /// Like a Qlik selection, the shown text is matched exactly; a number without text also
    /// matches a filter value that parses to the same number.
    pub fn matches(&self, wanted: &str) -> bool {
        match self {
            Value::Null => false,
            Value::Text(s) => &**s == wanted,
            Value::Dual(n, s) => &**s == wanted || parse_number(wanted) == Some(*n),
            Value::Number(n) => parse_number(wanted) == Some(*n),
        }
    }

    /// A total order for sorting: numbers (and duals) by number first, then texts, nulls last.
    pub fn sort_cmp(&self, other: &Value) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) if !other.is_null() => Ordering::Less,
            (None, Some(_)) if !self.is_null() => Ordering::Greater,
            _ => match (self, other) {
                (Value::Null, Value::Null) => Ordering::Equal,
                (Value::Null, _) => Ordering::Greater,
                (_, Value::Null) => Ordering::Less,
                _ => self
                    .as_text()
                    .unwrap_or_default()
                    .cmp(other.as_text().unwrap_or_default()),
            },
        }
    }
}

pub(crate) fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Number(a), Value::Number(b)) => a.to_bits() == b.to_bits(),
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Dual(a, s), Value::Dual(b, t)) => a.to_bits() == b.to_bits() && s == t,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Number(n) => n.to_bits().hash(state),
            Value::Text(s) => s.hash(state),
            Value::Dual(n, s) => {
                n.to_bits().hash(state);
                s.hash(state);
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Dual(n, s) => write!(f, "Dual({n}, {s:?})"),
        }
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s.into())
    }
}

/// What a field holds, which decides how renderers type its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    #[default]
    Text,
    Integer,
    Number,
    /// Day serials (days since 1899-12-30).
    Date,
    /// Day serials with the time of day as the fraction.
    Timestamp,
    /// Numbers and texts mixed in one field.
    Mixed,
}

impl FieldKind {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldKind::Integer | FieldKind::Number | FieldKind::Date | FieldKind::Timestamp
        )
    }
}

/// A number format as Qlik writes it: a format code such as `#,##0.00`, `0.0%`,
/// `YYYY-MM-DD` or `DD.MM.YYYY hh:mm`, and the separators the code uses.
///
/// The code is kept in Qlik's syntax; [`crate::format`] turns it into text for a locale and the
/// XLSX renderer turns it into an Excel code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NumberFormat {
    pub code: String,
    /// The decimal separator written in `code` (`.` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal: Option<char>,
    /// The thousands separator written in `code` (`,` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thousands: Option<char>,
}

impl NumberFormat {
    pub fn new(code: impl Into<String>) -> Self {
        NumberFormat {
            code: code.into(),
            decimal: None,
            thousands: None,
        }
    }

    /// Whether the code formats a date or a time (it has date or time tokens).
    pub fn is_temporal(&self) -> bool {
        crate::format::is_temporal_code(&self.code)
    }
}

/// A field's name, kind and number format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<NumberFormat>,
}

impl Field {
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Field {
            name: name.into(),
            kind,
            format: None,
        }
    }

    pub fn with_format(mut self, format: NumberFormat) -> Self {
        self.format = Some(format);
        self
    }
}

/// The ordered fields of a table, with lookup by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    fields: Vec<Field>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field names, comma separated, for error messages.
    pub fn names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_qlik_selection() {
        assert!(Value::text("East").matches("East"));
        assert!(!Value::text("East").matches("east"));
        assert!(Value::Number(42420.0).matches("42420"));
        assert!(Value::dual(42.0, "042").matches("042"));
        assert!(Value::dual(42.0, "042").matches("42"));
        assert!(!Value::Null.matches(""));
    }

    #[test]
    fn sort_puts_numbers_first_and_nulls_last() {
        let mut v = vec![
            Value::Null,
            Value::text("b"),
            Value::Number(2.0),
            Value::text("a"),
            Value::Number(-1.0),
        ];
        v.sort_by(|a, b| a.sort_cmp(b));
        assert_eq!(
            v,
            vec![
                Value::Number(-1.0),
                Value::Number(2.0),
                Value::text("a"),
                Value::text("b"),
                Value::Null
            ]
        );
    }
}
