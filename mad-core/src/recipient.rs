//! Recipients and value tables.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::{Filter, FilterSet};
use crate::format::{Locale, display};
use crate::secret::Secret;
use crate::table::Table;
use crate::value::Value;

/// Someone (or somewhere) that receives reports, and the slice of data they may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    /// A BCP 47 tag such as `de-DE`; decides separators and month names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// An IANA zone such as `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The identity to fetch data as, where the source applies its own access rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "FilterSet::is_unfiltered")]
    pub filters: FilterSet,
    /// Extra values for placeholders, as `{recipient.<name>}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Per-recipient secrets (such as a password for their documents), loaded from a value
    /// table at run time. Never written to definitions, never printed.
    #[serde(skip)]
    pub secrets: BTreeMap<String, Secret>,
}

impl Recipient {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Recipient {
            id: id.into(),
            name: name.into(),
            email: None,
            cc: Vec::new(),
            bcc: Vec::new(),
            locale: None,
            time_zone: None,
            identity: None,
            filters: FilterSet::all(),
            attributes: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filters = self.filters.and(filter);
        self
    }

    pub fn locale(&self) -> Locale {
        self.locale.as_deref().map(Locale::new).unwrap_or_default()
    }

    /// Checks what can be checked before anything is rendered for this recipient: its locale
    /// is a language tag and its time zone is known.
    pub fn check(&self) -> Result<()> {
        let about = |e: Error| e.context(format!("recipient '{}'", self.id));
        if let Some(tag) = &self.locale {
            Locale::parse(tag).map_err(about)?;
        }
        if let Some(zone) = &self.time_zone {
            crate::runlog::time_zone(zone).map_err(about)?;
        }
        Ok(())
    }
}

/// A table whose rows map recipients to the filter values they may see.
///
/// Several rows with the same id add up: a manager of two regions has two rows. Every field in
/// `filter_columns` becomes a filter; an empty cell grants nothing for that field (it never
/// means "everything").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTableDef {
    /// The name of the source holding the table.
    pub source: String,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_column: Option<String>,
    pub filter_columns: Vec<String>,
    /// Columns copied into the recipient's attributes, for placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_columns: Vec<String>,
    /// Columns holding per-recipient secrets (such as document passwords).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_columns: Vec<String>,
}

fn default_id_column() -> String {
    "id".to_string()
}

impl ValueTableDef {
    /// The recipients the table describes, in order of first appearance.
    pub fn recipients(&self, table: &Table) -> Result<Vec<Recipient>> {
        if table.is_empty() {
            return Err(Error::invalid_config(format!(
                "the value table from '{}' has no rows, so it names no recipients",
                self.source
            )));
        }
        let locale = Locale::default();
        let text = |row: usize, col: usize| {
            let value = table.value(row, col);
            display(value, table.fields()[col].format.as_ref(), &locale)
        };
        let optional = |name: &Option<String>| -> Result<Option<usize>> {
            name.as_deref().map(|n| table.require_column(n)).transpose()
        };
        let id = table.require_column(&self.id_column)?;
        let name = optional(&self.name_column)?;
        let email = optional(&self.email_column)?;
        let locale_col = optional(&self.locale_column)?;
        let zone = optional(&self.time_zone_column)?;
        let columns = |names: &[String]| {
            names
                .iter()
                .map(|f| Ok((f.clone(), table.require_column(f)?)))
                .collect::<Result<Vec<_>>>()
        };
        let filters = columns(&self.filter_columns)?;
        let attributes = columns(&self.attribute_columns)?;
        let secrets = columns(&self.secret_columns)?;
        self.check_secret_columns(table, &secrets)?;

        let mut order: Vec<String> = Vec::new();
        let described = [
            (&self.name_column, name),
            (&self.email_column, email),
            (&self.locale_column, locale_col),
            (&self.time_zone_column, zone),
        ];
        type Grants = BTreeMap<String, BTreeSet<String>>;
        // Per id: the recipient, its filter values, and the cells of `described` it started with.
        let mut people: BTreeMap<String, (Recipient, Grants, [String; 4])> = BTreeMap::new();
        for row in 0..table.len() {
            let rid = text(row, id);
            if rid.trim().is_empty() {
                return Err(Error::invalid_input(format!(
                    "row {} of the value table from '{}' has an empty '{}'",
                    row + 1,
                    self.source,
                    self.id_column
                )));
            }
            let entry = people.entry(rid.clone()).or_insert_with(|| {
                order.push(rid.clone());
                let mut r = Recipient::new(rid.clone(), rid.clone());
                let cell = |c: Option<usize>| c.map(|c| text(row, c)).filter(|s| !s.is_empty());
                if let Some(n) = cell(name) {
                    r.name = n;
                }
                r.email = cell(email);
                // Spaces around a code are a spreadsheet's doing, never part of it.
                let code = |c| {
                    cell(c)
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                };
                r.locale = code(locale_col);
                r.time_zone = code(zone);
                for (name, col) in &attributes {
                    r.attributes
                        .insert(name.clone(), cell(Some(*col)).unwrap_or_default());
                }
                for (name, col) in &secrets {
                    if let Some(secret) = secret_text(table.value(row, *col)) {
                        r.secrets.insert(name.clone(), Secret::new(secret));
                    }
                }
                let grants = filters
                    .iter()
                    .map(|(f, _)| (f.clone(), BTreeSet::new()))
                    .collect();
                let first = described.map(|(_, c)| cell(c).unwrap_or_default());
                (r, grants, first)
            });
            // A later row of the same recipient may leave these empty, but not contradict
            // the first: which e-mail address would be right?
            for ((column, col), first) in described.iter().zip(&entry.2) {
                let (Some(column), Some(col)) = (column, col) else {
                    continue;
                };
                let value = text(row, *col);
                if !value.is_empty() && !first.is_empty() && *first != value {
                    return Err(Error::invalid_input(format!(
                        "the value table from '{}' gives recipient '{rid}' two different \
                         '{column}' values ('{first}' and, in row {}, '{value}')",
                        self.source,
                        row + 1,
                    )));
                }
            }
            for (field, col) in &filters {
                let value = text(row, *col);
                if !value.is_empty() {
                    entry
                        .1
                        .get_mut(field)
                        .expect("every filter field")
                        .insert(value);
                }
            }
        }
        Ok(order
            .into_iter()
            .map(|rid| {
                let (mut recipient, grants, _) = people.remove(&rid).expect("recorded id");
                for (field, values) in grants {
                    recipient.filters = recipient.filters.and(Filter::new(field, values));
                }
                recipient
            })
            .collect())
    }
}

impl ValueTableDef {
    /// Refuses a secret column that is also printed (as the name, a filter or an attribute),
    /// and one read as numbers, whose source text is lost: `12345678901234567890` would
    /// become `12345678901234567168` and `0042` would become `42`.
    fn check_secret_columns(&self, table: &Table, secrets: &[(String, usize)]) -> Result<()> {
        let printed = [
            ("name", self.name_column.as_slice()),
            ("filter", &self.filter_columns[..]),
            ("attribute", &self.attribute_columns[..]),
        ];
        for (name, col) in secrets {
            if let Some((role, _)) = printed.iter().find(|(_, c)| c.contains(name)) {
                return Err(Error::invalid_config(format!(
                    "the value table from '{}' lists '{name}' both as a secret column and as \
                     a {role} column, which would print the secret in documents; use \
                     separate columns",
                    self.source
                )));
            }
            if (0..table.len()).any(|row| matches!(table.value(row, *col), Value::Number(_))) {
                return Err(Error::invalid_input(format!(
                    "the secret column '{name}' of the value table from '{}' was read as \
                     numbers, which can change a secret (digits beyond the fifteenth, leading \
                     or trailing zeros); declare the column as text in the source",
                    self.source
                )));
            }
        }
        Ok(())
    }
}

/// A secret exactly as its source wrote it, never reformatted; `None` when the cell is empty.
fn secret_text(value: &Value) -> Option<String> {
    match value {
        Value::Text(text) | Value::Dual(_, text) if !text.is_empty() => Some(text.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ColumnBuilder;
    use crate::value::{Field, FieldKind, Schema};

    fn table(rows: &[[&str; 3]]) -> Table {
        let schema = Schema::new(vec![
            Field::new("id", FieldKind::Text),
            Field::new("email", FieldKind::Text),
            Field::new("Region", FieldKind::Text),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
        for row in rows {
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(if v.is_empty() {
                    Value::Null
                } else {
                    Value::text(*v)
                });
            }
        }
        Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap()
    }

    fn def() -> ValueTableDef {
        ValueTableDef {
            source: "managers".into(),
            id_column: "id".into(),
            name_column: None,
            email_column: Some("email".into()),
            locale_column: None,
            time_zone_column: None,
            filter_columns: vec!["Region".into()],
            attribute_columns: Vec::new(),
            secret_columns: vec!["email".into()],
        }
    }

    #[test]
    fn rows_of_one_recipient_add_up() {
        let t = table(&[
            ["ann", "ann@example.com", "East"],
            ["bob", "bob@example.com", "West"],
            ["ann", "", "South"],
        ]);
        let rs = def().recipients(&t).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].id, "ann");
        assert_eq!(rs[0].filters.to_string(), "Region = East, South");
        assert_eq!(rs[0].email.as_deref(), Some("ann@example.com"));
        assert_eq!(rs[0].secrets["email"].expose(), "ann@example.com");
        let shown = format!("{:?}", rs[0].secrets);
        assert!(!shown.contains("ann@") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn a_secret_is_its_cells_text_whatever_the_fields_format() {
        let schema = Schema::new(vec![
            Field::new("id", FieldKind::Text),
            Field::new("Region", FieldKind::Text),
            Field::new("pin", FieldKind::Number)
                .with_format(crate::value::NumberFormat::new("#,##0")),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
        cols[0].push(Value::text("ann"));
        cols[1].push(Value::text("East"));
        cols[2].push(Value::dual(1234.5, "1234.50"));
        let t = Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap();
        let mut d = def();
        d.email_column = None;
        d.secret_columns = vec!["pin".into()];

        let rs = d.recipients(&t).unwrap();
        assert_eq!(rs[0].secrets["pin"].expose(), "1234.50");
    }

    #[test]
    fn spaces_around_a_time_zone_or_locale_are_dropped() {
        let t = table(&[["ann", "ann@example.com", " Asia/Tokyo "]]);
        let mut d = def();
        d.time_zone_column = Some("Region".into());
        let rs = d.recipients(&t).unwrap();
        assert_eq!(rs[0].time_zone.as_deref(), Some("Asia/Tokyo"));
        rs[0].check().unwrap();
    }

    #[test]
    fn empty_cell_grants_nothing() {
        let t = table(&[["cy", "cy@example.com", ""]]);
        let rs = def().recipients(&t).unwrap();
        assert_eq!(rs[0].filters.empty_field(), Some("Region"));
    }

    #[test]
    fn empty_table_is_an_error() {
        let err = def().recipients(&table(&[])).unwrap_err();
        assert!(err.to_string().contains("no rows"));
    }

    #[test]
    fn missing_filter_column_is_named() {
        let mut d = def();
        d.filter_columns = vec!["State".into()];
        let err = d.recipients(&table(&[["a", "", "East"]])).unwrap_err();
        assert!(err.to_string().contains("'State'"));
    }

    #[test]
    fn one_recipient_with_two_addresses_is_an_error() {
        let t = table(&[
            ["ann", "ann@example.com", "East"],
            ["ann", "ann.b@example.com", "West"],
        ]);
        let err = def().recipients(&t).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("'ann'")
                && text.contains("ann@example.com")
                && text.contains("row 2")
                && text.contains("ann.b@example.com"),
            "{text}"
        );
    }
}
