//! Filters: which values of which fields a recipient may see.
//!
//! A [`FilterSet`] maps each field to the values it allows (or, inverted, the values it
//! excludes). Sets combine only by intersection, so combining the task's, the recipient's and
//! the report's filters can narrow what a recipient sees but never widen it. A set whose
//! intersection is empty selects nothing, and the recipient is skipped rather than served
//! unfiltered data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::table::Table;

/// One filter as written in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub field: String,
    pub values: Vec<String>,
    /// Select every value except these.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
    /// Ignore this filter when the data has no such field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Filter {
    pub fn new<I, S>(field: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
            exclude: false,
            optional: false,
        }
    }

    pub fn excluding(mut self) -> Self {
        self.exclude = true;
        self
    }

    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The values a filter set allows for one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldFilter {
    /// Only these values.
    Only(BTreeSet<String>),
    /// Every value but these.
    Except(BTreeSet<String>),
    /// Only the first values, and of those none matching the second: what allowing some
    /// values and excluding others on one field gives. Both are kept, because values are
    /// matched against the data as numbers too (`2` and `2.0` name the same number, and a
    /// dual matches by its text and by its number), so taking the excluded texts out of the
    /// allowed ones could keep rows the exclusion names.
    OnlyBut(BTreeSet<String>, BTreeSet<String>),
}

impl FieldFilter {
    fn intersect(&self, other: &FieldFilter) -> FieldFilter {
        use FieldFilter::*;
        let (only, except) = match (self, other) {
            (Only(a), Only(b)) => return Only(a.intersection(b).cloned().collect()),
            (Except(a), Except(b)) => return Except(a.union(b).cloned().collect()),
            (Only(a), Except(b)) | (Except(b), Only(a)) => (a.clone(), b.clone()),
            (OnlyBut(a, b), Only(c)) | (Only(c), OnlyBut(a, b)) => {
                (a.intersection(c).cloned().collect(), b.clone())
            }
            (OnlyBut(a, b), Except(d)) | (Except(d), OnlyBut(a, b)) => {
                (a.clone(), b.union(d).cloned().collect())
            }
            (OnlyBut(a, b), OnlyBut(c, d)) => (
                a.intersection(c).cloned().collect(),
                b.union(d).cloned().collect(),
            ),
        };
        let only: BTreeSet<String> = only.difference(&except).cloned().collect();
        OnlyBut(only, except)
    }

    /// Whether this filter can select nothing at all.
    pub fn is_empty(&self) -> bool {
        matches!(self, FieldFilter::Only(v) | FieldFilter::OnlyBut(v, _) if v.is_empty())
    }

    /// The values it allows, if it names them (not for `Except`).
    pub fn allowed(&self) -> Option<&BTreeSet<String>> {
        match self {
            FieldFilter::Only(v) | FieldFilter::OnlyBut(v, _) => Some(v),
            FieldFilter::Except(_) => None,
        }
    }

    /// The values it excludes, if any.
    pub fn excluded(&self) -> Option<&BTreeSet<String>> {
        match self {
            FieldFilter::Except(v) | FieldFilter::OnlyBut(_, v) => Some(v),
            FieldFilter::Only(_) => None,
        }
    }
}

/// A field's filter and whether it may be ignored when the data lacks the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRule {
    pub filter: FieldFilter,
    pub optional: bool,
}

/// Filters on several fields, all of which must hold.
///
/// The canonical form (sorted fields, sorted values) makes equal sets compare and hash equal,
/// so recipients with the same effective filters share one fetch. Copies share their rules: a
/// recipient's filters, its effective filters and its fetch group's are often the same set,
/// and a run may hold tens of thousands of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterSet {
    rules: Arc<BTreeMap<String, FieldRule>>,
}

impl FilterSet {
    /// The set that filters nothing.
    pub fn all() -> Self {
        FilterSet::default()
    }

    pub fn from_filters(filters: impl IntoIterator<Item = Filter>) -> Self {
        filters
            .into_iter()
            .fold(FilterSet::all(), |set, f| set.and(f))
    }

    /// This set narrowed by one more filter.
    pub fn and(self, filter: Filter) -> Self {
        let values: BTreeSet<String> = filter.values.into_iter().collect();
        let rule = FieldRule {
            filter: if filter.exclude {
                FieldFilter::Except(values)
            } else {
                FieldFilter::Only(values)
            },
            optional: filter.optional,
        };
        let mut single = FilterSet::all();
        Arc::make_mut(&mut single.rules).insert(filter.field, rule);
        self.intersect(&single)
    }

    /// The values both sets allow. A field filtered by only one side keeps that side's filter;
    /// a field that either side requires stays required.
    pub fn intersect(&self, other: &FilterSet) -> FilterSet {
        if other.rules.is_empty() {
            return self.clone();
        }
        if self.rules.is_empty() {
            return other.clone();
        }
        let mut rules = BTreeMap::clone(&self.rules);
        for (field, theirs) in other.rules.iter() {
            let merged = match rules.get(field) {
                Some(ours) => FieldRule {
                    filter: ours.filter.intersect(&theirs.filter),
                    optional: ours.optional && theirs.optional,
                },
                None => theirs.clone(),
            };
            rules.insert(field.clone(), merged);
        }
        FilterSet {
            rules: Arc::new(rules),
        }
    }

    pub fn is_unfiltered(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first field whose filter can select nothing, if any.
    pub fn empty_field(&self) -> Option<&str> {
        self.rules
            .iter()
            .find(|(_, r)| r.filter.is_empty())
            .map(|(f, _)| f.as_str())
    }

    pub fn rules(&self) -> impl Iterator<Item = (&str, &FieldRule)> {
        self.rules.iter().map(|(f, r)| (f.as_str(), r))
    }

    pub fn get(&self, field: &str) -> Option<&FieldRule> {
        self.rules.get(field)
    }

    /// The fields this set filters on.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// The filters as they would be written in a definition (a field both allowing and
    /// excluding values gives two).
    pub fn to_filters(&self) -> Vec<Filter> {
        let mut filters = Vec::with_capacity(self.rules.len());
        for (field, rule) in self.rules.iter() {
            let written = |values: &BTreeSet<String>, exclude| Filter {
                field: field.clone(),
                values: values.iter().cloned().collect(),
                exclude,
                optional: rule.optional,
            };
            if let Some(values) = rule.filter.allowed() {
                filters.push(written(values, false));
            }
            if let Some(values) = rule.filter.excluded() {
                filters.push(written(values, true));
            }
        }
        filters
    }

    /// The rows of `table` this set allows.
    ///
    /// Errors: a required filter on a field the table lacks is [`ErrorKind::InvalidConfig`]
    /// naming the field; a filter whose intersection is empty, or that asks for a value the
    /// field never holds, is [`ErrorKind::EmptyFilter`] naming the field and the values.
    pub fn apply(&self, table: &Table) -> Result<Table> {
        let mut checks = Vec::with_capacity(self.rules.len());
        for (field, rule) in self.rules.iter() {
            let Some(col) = table.column_index(field) else {
                if rule.optional {
                    continue;
                }
                return Err(Error::invalid_config(format!(
                    "filter on field '{field}', which the data does not have (fields: {})",
                    table.schema().names()
                )));
            };
            if rule.filter.is_empty() {
                return Err(empty_intersection(field));
            }
            let allowed = allowed_symbols(table, col, field, &rule.filter)?;
            checks.push((col, allowed));
        }
        if checks.is_empty() {
            return Ok(table.clone());
        }
        if let Some(narrow) = narrowest_selective_check(table, &checks) {
            // Read only the rows holding the most selective field's values.
            let (col, allowed) = &checks[narrow];
            return Ok(table.select_by_symbols(*col, allowed, |row| {
                checks
                    .iter()
                    .all(|(c, a)| a[table.physical_symbol(row, *c) as usize])
            }));
        }
        Ok(table.filter_rows(|row| {
            checks
                .iter()
                .all(|(col, allowed)| allowed[table.symbol_index(row, *col) as usize])
        }))
    }
}

/// On a whole table, the check whose allowed values hold the fewest rows, when those are few
/// enough (under a quarter of the table) that reading them through the index beats a scan.
fn narrowest_selective_check(table: &Table, checks: &[(usize, Vec<bool>)]) -> Option<usize> {
    if !table.is_whole() || table.len() < 1024 {
        return None;
    }
    let (best, rows) = checks
        .iter()
        .enumerate()
        .map(|(i, (col, allowed))| (i, table.count_by_symbols(*col, allowed)))
        .min_by_key(|(_, rows)| *rows)?;
    (rows < table.len() / 4).then_some(best)
}

fn empty_intersection(field: &str) -> Error {
    Error::new(
        ErrorKind::EmptyFilter,
        format!("the filters on '{field}' have no value in common"),
    )
}

/// Marks which symbols of a column a filter allows, refusing values the column never holds.
fn allowed_symbols(
    table: &Table,
    col: usize,
    field: &str,
    filter: &FieldFilter,
) -> Result<Vec<bool>> {
    let column = table.column(col);
    let mark = |values: &BTreeSet<String>| {
        let mut named = vec![false; column.symbols().len()];
        let mut missing = Vec::new();
        for value in values {
            let symbols = column.symbols_matching(value);
            if symbols.is_empty() {
                missing.push(value.clone());
            }
            for symbol in symbols {
                named[symbol as usize] = true;
            }
        }
        (named, missing)
    };
    let (values, only) = match filter {
        FieldFilter::Only(v) => (v, true),
        FieldFilter::Except(v) => (v, false),
        FieldFilter::OnlyBut(allowed, excluded) => {
            let kept = allowed_symbols(table, col, field, &FieldFilter::Only(allowed.clone()))?;
            let (out, _) = mark(excluded);
            let kept: Vec<bool> = kept.iter().zip(&out).map(|(k, o)| *k && !o).collect();
            if !kept.iter().any(|k| *k) {
                return Err(empty_intersection(field));
            }
            return Ok(kept);
        }
    };
    let (mut named, missing) = mark(values);
    if only && !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::EmptyFilter,
            format!(
                "field '{field}' has no value {}",
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if !only {
        // Every value but the named ones; a null is no value, so it is never kept.
        for (keep, symbol) in named.iter_mut().zip(column.symbols()) {
            *keep = !*keep && !symbol.is_null();
        }
    }
    Ok(named)
}

impl fmt::Display for FilterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("(no filters)");
        }
        for (i, (field, rule)) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let list = |values: &BTreeSet<String>| {
                values
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match &rule.filter {
                FieldFilter::Only(v) => write!(f, "{field} = {}", list(v))?,
                FieldFilter::Except(v) => write!(f, "{field} ≠ {}", list(v))?,
                FieldFilter::OnlyBut(v, out) => {
                    write!(f, "{field} = {}; {field} ≠ {}", list(v), list(out))?
                }
            }
        }
        Ok(())
    }
}

impl Serialize for FilterSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_filters().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FilterSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(FilterSet::from_filters(Vec::<Filter>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a filter allows, value by value: the meaning the symbol lookup must keep.
    fn allows(filter: &FieldFilter, value: &Value) -> bool {
        match filter {
            FieldFilter::Only(v) => v.iter().any(|w| value.matches(w)),
            FieldFilter::Except(v) => !value.is_null() && !v.iter().any(|w| value.matches(w)),
            FieldFilter::OnlyBut(v, out) => {
                v.iter().any(|w| value.matches(w)) && !out.iter().any(|w| value.matches(w))
            }
        }
    }

    #[test]
    fn the_symbol_lookup_allows_what_matching_each_value_allows() {
        let symbols = vec![
            Value::Text("1".into()),
            Value::Number(1.0),
            Value::Dual(1.0, "1.00".into()),
            Value::Dual(2.0, "x".into()),
            Value::Null,
            Value::Text("a".into()),
            Value::Number(-0.0),
            Value::Dual(3.0, "1".into()),
            Value::Number(f64::NAN),
        ];
        let indices = (0..symbols.len() as u32).collect();
        let column = crate::table::Column::from_parts(symbols.clone(), indices).unwrap();
        let table = Table::new(
            crate::value::Schema::new(vec![crate::value::Field::new(
                "F",
                crate::value::FieldKind::Text,
            )]),
            vec![column],
        )
        .unwrap();
        let tries = [
            "1", "1.0", "1.00", "a", "0", "x", "2", " 1 ", "3", "NaN", "b",
        ];
        for a in tries {
            for b in tries {
                let values: BTreeSet<String> = [a.to_string(), b.to_string()].into();
                let lacking = values.iter().any(|w| !symbols.iter().any(|s| s.matches(w)));
                for filter in [
                    FieldFilter::Only(values.clone()),
                    FieldFilter::Except(values),
                ] {
                    let expected: Vec<bool> = symbols.iter().map(|s| allows(&filter, s)).collect();
                    match allowed_symbols(&table, 0, "F", &filter) {
                        Ok(got) => assert_eq!(got, expected, "{filter:?}"),
                        // Asking only for values of which one is not there is refused.
                        Err(err) => assert!(
                            lacking && matches!(filter, FieldFilter::Only(_)),
                            "{filter:?}: {err}"
                        ),
                    }
                    if lacking && matches!(filter, FieldFilter::Only(_)) {
                        assert!(allowed_symbols(&table, 0, "F", &filter).is_err());
                    }
                }
            }
        }
    }
    use crate::table::ColumnBuilder;
    use crate::value::{Field, FieldKind, Schema, Value};

    fn regions() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let mut r = ColumnBuilder::default();
        let mut s = ColumnBuilder::default();
        for (region, sales) in [("East", 1.0), ("West", 2.0), ("East", 3.0), ("South", 4.0)] {
            r.push(Value::text(region));
            s.push(Value::Number(sales));
        }
        Table::new(schema, vec![r.finish(), s.finish()]).unwrap()
    }

    #[test]
    fn an_exclusion_holds_whatever_spelling_the_allowed_values_use() {
        let schema = Schema::new(vec![Field::new("Quantity", FieldKind::Number)]);
        let mut q = ColumnBuilder::default();
        for value in [
            Value::Number(2.0),
            Value::Number(3.0),
            Value::Dual(2.0, "two".into()),
        ] {
            q.push(value);
        }
        let table = Table::new(schema, vec![q.finish()]).unwrap();
        let task = FilterSet::from_filters([Filter::new("Quantity", ["2"]).excluding()]);
        for (allowed, kept) in [
            (vec!["2.0"], 0),
            (vec![" 2", "3"], 1),
            (vec!["two"], 0),
            (vec!["two", "3.00"], 1),
        ] {
            let recipient = FilterSet::from_filters([Filter::new("Quantity", allowed.clone())]);
            for both in [task.intersect(&recipient), recipient.intersect(&task)] {
                match both.apply(&table) {
                    Ok(rows) => {
                        assert_eq!(rows.len(), kept, "{allowed:?}: {both}");
                        for row in 0..rows.len() {
                            assert_eq!(rows.value(row, 0).as_number(), Some(3.0), "{allowed:?}");
                        }
                    }
                    Err(err) => {
                        assert_eq!(kept, 0, "{allowed:?}: {err}");
                        assert_eq!(err.kind(), ErrorKind::EmptyFilter, "{err}");
                    }
                }
                // Written out and read back, the set means the same.
                assert_eq!(FilterSet::from_filters(both.to_filters()), both);
            }
        }
    }

    #[test]
    fn intersection_narrows() {
        let task = FilterSet::from_filters([Filter::new("Region", ["East", "West"])]);
        let recipient = FilterSet::from_filters([Filter::new("Region", ["West", "South"])]);
        let both = task.intersect(&recipient);
        assert_eq!(both.to_string(), "Region = West");
        let rows = both.apply(&regions()).unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn empty_intersection_selects_nothing() {
        let a = FilterSet::from_filters([Filter::new("Region", ["East"])]);
        let b = FilterSet::from_filters([Filter::new("Region", ["West"])]);
        let both = a.intersect(&b);
        assert_eq!(both.empty_field(), Some("Region"));
        let err = both.apply(&regions()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EmptyFilter);
    }

    #[test]
    fn inversion_and_exclusion_combine() {
        let set = FilterSet::from_filters([
            Filter::new("Region", ["East", "West", "South"]),
            Filter::new("Region", ["East"]).excluding(),
        ]);
        assert_eq!(set.apply(&regions()).unwrap().len(), 2);
        let only_except = FilterSet::from_filters([Filter::new("Region", ["East"]).excluding()]);
        assert_eq!(only_except.apply(&regions()).unwrap().len(), 2);
    }

    #[test]
    fn missing_field_is_an_error_unless_optional() {
        let set = FilterSet::from_filters([Filter::new("Country", ["US"])]);
        let err = set.apply(&regions()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("'Country'"), "{err}");
        let set = FilterSet::from_filters([Filter::new("Country", ["US"]).optional()]);
        assert_eq!(set.apply(&regions()).unwrap().len(), 4);
    }

    #[test]
    fn optional_meets_required_stays_required() {
        let a = FilterSet::from_filters([Filter::new("Country", ["US"]).optional()]);
        let b = FilterSet::from_filters([Filter::new("Country", ["US"])]);
        assert!(!a.intersect(&b).get("Country").unwrap().optional);
    }

    #[test]
    fn value_absent_from_the_data_skips_instead_of_widening() {
        let set = FilterSet::from_filters([Filter::new("Region", ["Atlantis"])]);
        let err = set.apply(&regions()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EmptyFilter);
        assert!(err.to_string().contains("'Atlantis'"));
    }

    #[test]
    fn indexed_selection_equals_a_scan_in_row_order() {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Day", FieldKind::Number),
        ]);
        let mut r = ColumnBuilder::default();
        let mut d = ColumnBuilder::default();
        for i in 0..5000 {
            r.push(Value::text(format!("R{}", i % 10)));
            d.push(Value::Number((i % 7) as f64));
        }
        let table = Table::new(schema, vec![r.finish(), d.finish()]).unwrap();
        let set = FilterSet::from_filters([
            Filter::new("Region", ["R3", "R7"]),
            Filter::new("Day", ["2"]).excluding(),
        ]);
        let got = set.apply(&table).unwrap();
        let want: Vec<usize> = (0..5000)
            .filter(|i| (i % 10 == 3 || i % 10 == 7) && i % 7 != 2)
            .collect();
        assert_eq!(got.len(), want.len());
        for (row, &i) in want.iter().enumerate() {
            assert_eq!(got.value(row, 0), table.value(i, 0));
            assert_eq!(got.value(row, 1), table.value(i, 1));
        }
    }

    #[test]
    fn canonical_form_makes_equal_sets_equal() {
        let a = FilterSet::from_filters([Filter::new("Region", ["West", "East"])]);
        let b = FilterSet::from_filters([Filter::new("Region", ["East", "West", "East"])]);
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let back: FilterSet = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
    }
}
