//! A columnar, dictionary-encoded table that slices without copying.
//!
//! Each column is a symbol table (its distinct values) plus one symbol index per row, which is
//! how Qlik and QVD files hold data. Filtering compares each distinct value once; a slice is a
//! shared list of row numbers over the same columns.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::value::{Field, Schema, Value};

/// One column: its distinct values and, per row, the index of the row's value.
#[derive(Debug, Clone, Default)]
pub struct Column {
    symbols: Vec<Value>,
    indices: Vec<u32>,
    /// Per symbol, the rows holding it; built on first use, so selecting a few values of a
    /// large column reads only their rows.
    rows_by_symbol: OnceLock<Vec<Vec<u32>>>,
    /// The symbols by their text and by their number; built on first use, so filtering by
    /// one value of many does not compare it with every symbol.
    lookup: OnceLock<SymbolLookup>,
}

#[derive(Debug, Clone, Default)]
struct SymbolLookup {
    by_text: HashMap<Arc<str>, Vec<u32>>,
    by_number: HashMap<u64, Vec<u32>>,
}

/// A number as a lookup key: equal numbers (0 and -0 too) give equal keys.
fn number_key(n: f64) -> u64 {
    if n == 0.0 { 0 } else { n.to_bits() }
}

impl Column {
    /// A column from its symbol table and row indices; every index must point into `symbols`.
    pub fn from_parts(symbols: Vec<Value>, indices: Vec<u32>) -> Result<Self> {
        let count = symbols.len() as u32;
        if let Some(bad) = indices.iter().find(|&&i| i >= count) {
            return Err(Error::invalid_input(format!(
                "row index {bad} points past the {count} symbols of the column"
            )));
        }
        Ok(Column {
            symbols,
            indices,
            rows_by_symbol: OnceLock::new(),
            lookup: OnceLock::new(),
        })
    }

    /// The rows holding each symbol, in row order.
    pub fn rows_by_symbol(&self) -> &[Vec<u32>] {
        self.rows_by_symbol.get_or_init(|| {
            let mut rows = vec![Vec::new(); self.symbols.len()];
            for (row, &symbol) in self.indices.iter().enumerate() {
                rows[symbol as usize].push(row as u32);
            }
            rows
        })
    }

    pub fn symbols(&self) -> &[Value] {
        &self.symbols
    }

    /// The symbols a filter value selects, as [`Value::matches`] decides, in no set order.
    pub fn symbols_matching(&self, wanted: &str) -> Vec<u32> {
        let lookup = self.lookup.get_or_init(|| {
            let mut lookup = SymbolLookup::default();
            for (i, symbol) in self.symbols.iter().enumerate() {
                let i = i as u32;
                if let Value::Text(s) | Value::Dual(_, s) = symbol {
                    lookup.by_text.entry(s.clone()).or_default().push(i);
                }
                if let Value::Number(n) | Value::Dual(n, _) = symbol
                    && !n.is_nan()
                {
                    lookup.by_number.entry(number_key(*n)).or_default().push(i);
                }
            }
            lookup
        });
        let mut found = lookup.by_text.get(wanted).cloned().unwrap_or_default();
        if let Some(n) = crate::value::parse_number(wanted) {
            let by_number = lookup.by_number.get(&number_key(n)).into_iter().flatten();
            // A dual whose text is `wanted` is already in.
            found.extend(by_number.filter(
                |&&i| !matches!(&self.symbols[i as usize], Value::Dual(_, s) if &**s == wanted),
            ));
        }
        found
    }

    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    fn value(&self, physical_row: u32) -> &Value {
        &self.symbols[self.indices[physical_row as usize] as usize]
    }
}

/// Builds a column value by value, deduplicating into a symbol table.
#[derive(Debug, Default)]
pub struct ColumnBuilder {
    symbols: Vec<Value>,
    lookup: HashMap<Value, u32>,
    indices: Vec<u32>,
}

impl ColumnBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        ColumnBuilder {
            indices: Vec::with_capacity(rows),
            ..Default::default()
        }
    }

    pub fn push(&mut self, value: Value) {
        let next = self.symbols.len() as u32;
        let index = *self.lookup.entry(value).or_insert_with_key(|v| {
            self.symbols.push(v.clone());
            next
        });
        self.indices.push(index);
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    pub fn finish(self) -> Column {
        Column {
            symbols: self.symbols,
            indices: self.indices,
            rows_by_symbol: OnceLock::new(),
            lookup: OnceLock::new(),
        }
    }
}

/// A table: a schema, its columns and an optional row selection.
///
/// Cloning and slicing are cheap: the columns are shared.
#[derive(Debug, Clone)]
pub struct Table {
    schema: Arc<Schema>,
    columns: Arc<[Arc<Column>]>,
    physical_rows: usize,
    selection: Option<Arc<[u32]>>,
}

impl Table {
    /// A table from a schema and one column per field, all of the same length.
    pub fn new(schema: Schema, columns: Vec<Column>) -> Result<Self> {
        if schema.len() != columns.len() {
            return Err(Error::internal(format!(
                "{} fields but {} columns",
                schema.len(),
                columns.len()
            )));
        }
        let physical_rows = columns.first().map_or(0, Column::len);
        if let Some((i, c)) = columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() != physical_rows)
        {
            return Err(Error::invalid_input(format!(
                "column '{}' has {} rows where the first has {physical_rows}",
                schema.fields()[i].name,
                c.len()
            )));
        }
        Ok(Table {
            schema: Arc::new(schema),
            columns: columns.into_iter().map(Arc::new).collect(),
            physical_rows,
            selection: None,
        })
    }

    /// An empty table with the given fields.
    pub fn empty(schema: Schema) -> Self {
        let columns = (0..schema.len()).map(|_| Arc::new(Column::default()));
        Table {
            schema: Arc::new(schema),
            columns: columns.collect(),
            physical_rows: 0,
            selection: None,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn fields(&self) -> &[Field] {
        self.schema.fields()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name)
    }

    /// The index of a field, or an error naming the field and the fields that exist.
    pub fn require_column(&self, name: &str) -> Result<usize> {
        self.column_index(name).ok_or_else(|| {
            Error::invalid_config(format!(
                "the data has no field '{name}' (fields: {})",
                self.schema.names()
            ))
        })
    }

    /// A table with only the named fields, in the given order, sharing the column data.
    pub fn project(&self, names: &[&str]) -> Result<Table> {
        let indices = names
            .iter()
            .map(|n| self.require_column(n))
            .collect::<Result<Vec<_>>>()?;
        let fields = indices
            .iter()
            .map(|&i| self.schema.fields()[i].clone())
            .collect();
        Ok(Table {
            schema: Arc::new(Schema::new(fields)),
            columns: indices.iter().map(|&i| self.columns[i].clone()).collect(),
            physical_rows: self.physical_rows,
            selection: self.selection.clone(),
        })
    }

    /// The whole column at `index`, ignoring the selection.
    pub fn column(&self, index: usize) -> &Column {
        &self.columns[index]
    }

    pub fn len(&self) -> usize {
        self.selection
            .as_ref()
            .map_or(self.physical_rows, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn physical(&self, row: usize) -> u32 {
        match &self.selection {
            Some(s) => s[row],
            None => row as u32,
        }
    }

    /// The value at `row` (within this slice) of column `col`.
    pub fn value(&self, row: usize, col: usize) -> &Value {
        self.columns[col].value(self.physical(row))
    }

    /// The symbol index at `row` of column `col`; rows with equal values share an index.
    pub fn symbol_index(&self, row: usize, col: usize) -> u32 {
        self.columns[col].indices[self.physical(row) as usize]
    }

    /// Iterates the values of column `col` within this slice.
    pub fn column_values(&self, col: usize) -> impl Iterator<Item = &Value> + '_ {
        (0..self.len()).map(move |r| self.value(r, col))
    }

    /// Whether this table is whole (not a slice of rows).
    pub fn is_whole(&self) -> bool {
        self.selection.is_none()
    }

    /// A whole table's rows whose value in `col` is one of the `allowed` symbols (a flag per
    /// symbol), found through the column's row index, then narrowed by `keep`. Cheap when the
    /// allowed symbols are rare; use on whole tables only.
    pub fn select_by_symbols(
        &self,
        col: usize,
        allowed: &[bool],
        mut keep: impl FnMut(u32) -> bool,
    ) -> Table {
        debug_assert!(self.is_whole());
        let index = self.columns[col].rows_by_symbol();
        let mut rows: Vec<u32> = allowed
            .iter()
            .zip(index)
            .filter(|(a, _)| **a)
            .flat_map(|(_, rows)| rows.iter().copied())
            .filter(|&r| keep(r))
            .collect();
        rows.sort_unstable();
        self.with_selection(rows)
    }

    /// How many rows of a whole table hold one of the `allowed` symbols of `col`.
    pub fn count_by_symbols(&self, col: usize, allowed: &[bool]) -> usize {
        let index = self.columns[col].rows_by_symbol();
        allowed
            .iter()
            .zip(index)
            .filter(|(a, _)| **a)
            .map(|(_, rows)| rows.len())
            .sum()
    }

    /// The symbol index of physical row `row` in `col`, ignoring the selection.
    pub fn physical_symbol(&self, row: u32, col: usize) -> u32 {
        self.columns[col].indices[row as usize]
    }

    /// The rows of this slice whose positions `keep` returns true for, as a new slice.
    pub fn filter_rows(&self, mut keep: impl FnMut(usize) -> bool) -> Table {
        let rows: Vec<u32> = (0..self.len())
            .filter(|&r| keep(r))
            .map(|r| self.physical(r))
            .collect();
        self.with_selection(rows)
    }

    /// A slice holding the given rows of this slice, in the given order.
    pub fn select(&self, rows: &[usize]) -> Table {
        let physical = rows.iter().map(|&r| self.physical(r)).collect();
        self.with_selection(physical)
    }

    fn with_selection(&self, physical: Vec<u32>) -> Table {
        Table {
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            physical_rows: self.physical_rows,
            selection: Some(physical.into()),
        }
    }

    /// This slice sorted by the given columns (ascending unless the flag says descending).
    /// The sort is stable, so equal keys keep their source order.
    pub fn sorted_by(&self, keys: &[(usize, bool)]) -> Table {
        if keys.is_empty() {
            return self.clone();
        }
        let mut rows: Vec<usize> = (0..self.len()).collect();
        rows.sort_by(|&a, &b| {
            for &(col, descending) in keys {
                let ord = self.value(a, col).sort_cmp(self.value(b, col));
                let ord = if descending { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
        self.select(&rows)
    }

    /// Splits this slice into runs of equal values of `col`, in order of appearance.
    /// Sort first to get one run per value.
    pub fn runs_by(&self, col: usize) -> Vec<(Value, Table)> {
        let mut runs = Vec::new();
        let mut start = 0;
        for row in 1..=self.len() {
            let boundary =
                row == self.len() || self.symbol_index(row, col) != self.symbol_index(start, col);
            if boundary {
                let rows: Vec<usize> = (start..row).collect();
                runs.push((self.value(start, col).clone(), self.select(&rows)));
                start = row;
            }
        }
        runs
    }

    /// The distinct values of `col` in this slice, sorted.
    pub fn distinct(&self, col: usize) -> Vec<Value> {
        let symbols = &self.columns[col].symbols;
        let mut seen = vec![false; symbols.len()];
        for row in 0..self.len() {
            seen[self.symbol_index(row, col) as usize] = true;
        }
        let mut values: Vec<Value> = symbols
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(v, _)| v.clone())
            .collect();
        values.sort_by(|a, b| a.sort_cmp(b));
        values
    }

    /// The sum of the numeric values of `col` in this slice; texts and nulls count as zero.
    pub fn sum(&self, col: usize) -> f64 {
        self.column_values(col).filter_map(Value::as_number).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::FieldKind;

    fn sample() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let mut region = ColumnBuilder::default();
        let mut sales = ColumnBuilder::default();
        for (r, s) in [("East", 1.0), ("West", 2.0), ("East", 3.0), ("South", 4.0)] {
            region.push(Value::text(r));
            sales.push(Value::Number(s));
        }
        Table::new(schema, vec![region.finish(), sales.finish()]).unwrap()
    }

    #[test]
    fn builder_deduplicates_symbols() {
        let t = sample();
        assert_eq!(t.column(0).symbols().len(), 3);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn slices_compose_without_copying() {
        let t = sample();
        let east = t.filter_rows(|r| t.value(r, 0).matches("East"));
        assert_eq!(east.len(), 2);
        assert_eq!(east.sum(1), 4.0);
        let big = east.filter_rows(|r| east.value(r, 1).as_number() > Some(2.0));
        assert_eq!(big.len(), 1);
        assert_eq!(big.value(0, 1), &Value::Number(3.0));
    }

    #[test]
    fn sorted_runs_group_by_value() {
        let t = sample().sorted_by(&[(0, false)]);
        let runs = t.runs_by(0);
        let names: Vec<_> = runs.iter().map(|(v, t)| (v.clone(), t.len())).collect();
        assert_eq!(
            names,
            vec![
                (Value::text("East"), 2),
                (Value::text("South"), 1),
                (Value::text("West"), 1)
            ]
        );
    }

    #[test]
    fn ragged_columns_are_refused() {
        let schema = Schema::new(vec![
            Field::new("a", FieldKind::Text),
            Field::new("b", FieldKind::Text),
        ]);
        let mut a = ColumnBuilder::default();
        a.push(Value::text("x"));
        let err = Table::new(schema, vec![a.finish(), Column::default()]).unwrap_err();
        assert!(err.to_string().contains("'b'"));
    }
}
