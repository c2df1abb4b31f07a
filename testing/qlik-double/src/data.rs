//! The associative data of one session's open app: selections, possible rows, field states,
//! hypercubes and list objects, computed from the app's table.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use mad_core::{FieldKind, Locale, NumberFormat, Table, Value};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value as Json, json};

use crate::app::{App, Variable};
use crate::expr::{self, Expr, general_number, value_text};
use crate::rpc::{RpcError, codes};

/// The most cells one data request may ask for, over all its pages.
pub const MAX_CELLS_PER_REQUEST: i64 = 10_000;

/// A number as the engine writes it: finite numbers as JSON numbers, the rest as strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            n if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
                s.serialize_i64(n as i64)
            }
            n if n.is_finite() => s.serialize_f64(n),
            n if n.is_nan() => s.serialize_str("NaN"),
            n if n > 0.0 => s.serialize_str("Infinity"),
            _ => s.serialize_str("-Infinity"),
        }
    }
}

pub fn num_json(n: Option<f64>) -> Json {
    serde_json::to_value(Num(n.unwrap_or(f64::NAN))).unwrap_or(Json::Null)
}

/// One cell (`NxCell`); members equal to their default are left out, as the engine does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub q_text: String,
    pub q_num: Num,
    pub q_elem_number: i64,
    pub q_state: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub q_is_null: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub q_is_total_cell: bool,
}

/// A page request (`NxPage`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NxPage {
    pub q_left: i64,
    pub q_top: i64,
    pub q_width: i64,
    pub q_height: i64,
}

/// Sorting of one dimension or measure (`SortCriteria`); 1 ascending, -1 descending, 0 off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SortCriteria {
    pub q_sort_by_state: i64,
    pub q_sort_by_numeric: i64,
    pub q_sort_by_ascii: i64,
    pub q_sort_by_load_order: i64,
    pub q_sort_by_frequency: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct InlineDimension {
    q_field_defs: Vec<String>,
    q_field_labels: Vec<String>,
    q_sort_criterias: Option<Vec<SortCriteria>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Dimension {
    q_library_id: Option<String>,
    q_def: InlineDimension,
    q_null_suppression: bool,
}

/// A measure's number format (`FieldAttributes`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FieldAttributes {
    #[serde(skip_serializing_if = "Json::is_null")]
    q_type: Json,
    qn_dec: i64,
    q_use_thou: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    q_fmt: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    q_dec: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    q_thou: String,
}

impl FieldAttributes {
    fn type_title(&self) -> &str {
        match &self.q_type {
            Json::String(s) => s,
            Json::Number(n) => match n.as_i64() {
                Some(1) => "A",
                Some(2) => "I",
                Some(3) => "R",
                Some(4) => "F",
                Some(5) => "M",
                Some(6) => "D",
                Some(7) => "T",
                Some(8) => "TS",
                Some(9) => "IV",
                _ => "U",
            },
            _ => "U",
        }
    }

    fn is_unformatted(&self) -> bool {
        matches!(self.type_title(), "U" | "UNKNOWN") || self.q_fmt.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct InlineMeasure {
    q_def: String,
    q_label: String,
    q_num_format: Option<FieldAttributes>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Measure {
    q_library_id: Option<String>,
    q_def: InlineMeasure,
    q_sort_by: SortCriteria,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HyperCubeDef {
    q_dimensions: Vec<Dimension>,
    q_measures: Vec<Measure>,
    q_inter_column_sort_order: Vec<i64>,
    q_suppress_zero: bool,
    q_suppress_missing: bool,
    q_mode: Json,
    q_state_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ListObjectDef {
    q_library_id: Option<String>,
    q_def: InlineDimension,
    q_show_alternatives: bool,
    q_state_name: String,
}

/// Which values are selected in which fields, and which fields are locked.
#[derive(Debug, Clone, Default)]
pub struct Selections {
    fields: BTreeMap<usize, BTreeSet<u32>>,
    locked: BTreeSet<usize>,
}

/// The open app of one session: its data reduced by section access, the selections and the
/// variables.
#[derive(Debug)]
pub struct DocState {
    pub app: Arc<App>,
    /// The rows this session's user may see.
    pub base: Table,
    pub selections: Selections,
    pub variables: Vec<Variable>,
    /// Grows with every change of the selections, so cached results can be checked.
    pub generation: u64,
}

/// A computed straight hypercube.
#[derive(Debug)]
pub struct Cube {
    pub dimensions: usize,
    pub width: usize,
    pub rows: Vec<Vec<Cell>>,
    pub dimension_info: Vec<Json>,
    pub measure_info: Vec<Json>,
    pub grand_total: Vec<Cell>,
    pub order: Vec<usize>,
}

/// A computed list object: one column of field values with their states.
#[derive(Debug)]
pub struct ListData {
    pub rows: Vec<Vec<Cell>>,
    pub dimension_info: Json,
}

impl DocState {
    pub fn new(app: Arc<App>, base: Table) -> Self {
        let variables = app.variables.clone();
        let locked = app.locked_selections.clone();
        let mut doc = DocState {
            app,
            base,
            selections: Selections::default(),
            variables,
            generation: 0,
        };
        for (field, values) in locked {
            let Some(col) = doc.column(&field) else {
                continue;
            };
            let symbols = doc.matching(col, |v| values.contains(&value_text(v)));
            doc.select(col, symbols, false, false);
            doc.set_locked(col, true);
        }
        doc
    }

    fn locale(&self) -> &Locale {
        &self.app.locale
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        let name = strip_brackets(name);
        self.base.column_index(name)
    }

    pub fn field_name(&self, col: usize) -> &str {
        &self.base.fields()[col].name
    }

    /// The rows possible under every selection except the one on `skip`.
    fn possible_except(&self, skip: Option<usize>) -> Table {
        let active: Vec<(usize, &BTreeSet<u32>)> = self
            .selections
            .fields
            .iter()
            .filter(|(col, _)| Some(**col) != skip)
            .map(|(col, set)| (*col, set))
            .collect();
        if active.is_empty() {
            return self.base.clone();
        }
        let base = &self.base;
        base.filter_rows(|r| {
            active
                .iter()
                .all(|(col, set)| set.contains(&base.symbol_index(r, *col)))
        })
    }

    /// The rows possible under the current selections.
    pub fn possible(&self) -> Table {
        self.possible_except(None)
    }

    /// Every value of `col` the user may see, with its selection state, in load order.
    pub fn field_states(&self, col: usize, show_alternatives: bool) -> Vec<(u32, &'static str)> {
        let present = symbols_in(&self.base, col);
        let selected = self.selections.fields.get(&col);
        let locked = self.selections.locked.contains(&col);
        let possible = symbols_in(&self.possible_except(Some(col)), col);
        let overall = match selected {
            Some(_) => symbols_in(&self.possible(), col),
            None => possible.clone(),
        };
        present
            .into_iter()
            .map(|sym| {
                let state = match selected {
                    Some(set) if set.contains(&sym) => match (possible.contains(&sym), locked) {
                        (true, true) => "L",
                        (true, false) => "S",
                        (false, true) => "XL",
                        (false, false) => "XS",
                    },
                    Some(_) if possible.contains(&sym) && show_alternatives => "A",
                    _ if overall.contains(&sym) && selected.is_none() => "O",
                    _ => "X",
                };
                (sym, state)
            })
            .collect()
    }

    fn state_counts(&self, col: usize) -> Json {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, state) in self.field_states(col, true) {
            *counts.entry(state).or_default() += 1;
        }
        let n = |s: &str| counts.get(s).copied().unwrap_or(0);
        json!({
            "qLocked": n("L"), "qSelected": n("S"), "qOption": n("O"), "qDeselected": 0,
            "qAlternative": n("A"), "qExcluded": n("X"), "qSelectedExcluded": n("XS"),
            "qLockedExcluded": n("XL")
        })
    }

    /// The number of distinct values the user may see in `col`.
    pub fn cardinal(&self, col: usize) -> usize {
        symbols_in(&self.base, col).len()
    }

    /// The symbols of `col` (present for this user) whose values `keep` accepts.
    pub fn matching(&self, col: usize, mut keep: impl FnMut(&Value) -> bool) -> BTreeSet<u32> {
        let symbols = self.base.column(col).symbols();
        symbols_in(&self.base, col)
            .into_iter()
            .filter(|&s| keep(&symbols[s as usize]))
            .collect()
    }

    /// Selects `symbols` in `col`: replaces the field's selection, or toggles each value with
    /// `toggle`. An empty result clears the field. A locked field refuses unless `soft_lock`.
    pub fn select(
        &mut self,
        col: usize,
        symbols: BTreeSet<u32>,
        toggle: bool,
        soft_lock: bool,
    ) -> bool {
        if self.selections.locked.contains(&col) && !soft_lock {
            return false;
        }
        let current = self.selections.fields.remove(&col).unwrap_or_default();
        let next: BTreeSet<u32> = if toggle {
            current.symmetric_difference(&symbols).copied().collect()
        } else {
            symbols
        };
        if !next.is_empty() {
            self.selections.fields.insert(col, next);
        }
        self.generation += 1;
        true
    }

    /// The selected symbols of `col`, if it has a selection.
    pub fn selections_of(&self, col: usize) -> Option<BTreeSet<u32>> {
        self.selections.fields.get(&col).cloned()
    }

    pub fn clear(&mut self, col: usize) -> bool {
        if self.selections.locked.contains(&col) {
            return false;
        }
        self.selections.fields.remove(&col);
        self.generation += 1;
        true
    }

    pub fn clear_all(&mut self, locked_also: bool) {
        let locked = self.selections.locked.clone();
        self.selections
            .fields
            .retain(|col, _| !locked_also && locked.contains(col));
        if locked_also {
            self.selections.locked.clear();
        }
        self.generation += 1;
    }

    pub fn set_locked(&mut self, col: usize, locked: bool) -> bool {
        if locked {
            if !self.selections.fields.contains_key(&col) {
                return false;
            }
            self.selections.locked.insert(col);
        } else {
            self.selections.locked.remove(&col);
        }
        self.generation += 1;
        true
    }

    /// The selected values of every field with a selection, as texts.
    pub fn selected_texts(&self) -> BTreeMap<String, Vec<String>> {
        self.selections
            .fields
            .iter()
            .map(|(&col, set)| {
                let symbols = self.base.column(col).symbols();
                let texts = set
                    .iter()
                    .map(|&s| value_text(&symbols[s as usize]))
                    .collect();
                (self.field_name(col).to_string(), texts)
            })
            .collect()
    }

    pub fn selected_in(&self, col: usize) -> Vec<String> {
        self.selected_texts()
            .remove(self.field_name(col))
            .unwrap_or_default()
    }

    fn variable_text(&self, name: &str) -> Option<String> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.definition.clone())
    }

    /// Compiles an expression against the app's fields and variables.
    pub fn compile(&self, text: &str) -> Result<Expr, String> {
        expr::compile(text, &self.base, &|name| self.variable_text(name))
    }

    /// Evaluates an expression over the possible rows.
    pub fn evaluate(&self, text: &str) -> Result<Value, String> {
        let compiled = self.compile(text)?;
        let possible = self.possible();
        let rows: Vec<usize> = (0..possible.len()).collect();
        Ok(compiled.eval(&possible, &rows))
    }

    /// A cell for a field value: duals keep their loaded text, numbers follow the field's
    /// format, nulls are `-` with `qIsNull`.
    fn value_cell(&self, col: usize, sym: u32, state: &'static str) -> Cell {
        let value = &self.base.column(col).symbols()[sym as usize];
        let format = self.base.fields()[col].format.as_ref();
        let (text, num) = match value {
            Value::Null => {
                return Cell {
                    q_text: "-".into(),
                    q_num: Num(f64::NAN),
                    q_elem_number: -2,
                    q_state: state,
                    q_is_null: true,
                    q_is_total_cell: false,
                };
            }
            Value::Text(s) => (s.to_string(), f64::NAN),
            Value::Dual(n, s) => (s.to_string(), *n),
            Value::Number(n) => match format {
                Some(f) if !f.code.is_empty() => (self.format_number(*n, f), *n),
                _ => (general_number(*n), *n),
            },
        };
        Cell {
            q_text: text,
            q_num: Num(num),
            q_elem_number: i64::from(sym),
            q_state: state,
            q_is_null: false,
            q_is_total_cell: false,
        }
    }

    fn measure_cell(&self, value: &Value, format: Option<&FieldAttributes>, total: bool) -> Cell {
        let (text, num) = match value {
            Value::Null => ("-".to_string(), f64::NAN),
            Value::Text(s) => (s.to_string(), f64::NAN),
            Value::Dual(n, s) => (s.to_string(), *n),
            Value::Number(n) => (self.format_measure(*n, format), *n),
        };
        Cell {
            q_text: text,
            q_num: Num(num),
            q_elem_number: if total { -1 } else { 0 },
            q_state: if total { "X" } else { "L" },
            q_is_null: value.is_null(),
            q_is_total_cell: total,
        }
    }

    fn format_measure(&self, n: f64, format: Option<&FieldAttributes>) -> String {
        let Some(format) = format.filter(|f| !f.is_unformatted()) else {
            return general_number(n);
        };
        let decimal = format.q_dec.chars().next();
        let thousands = format.q_thou.chars().next();
        let code = NumberFormat {
            code: format.q_fmt.clone(),
            decimal,
            thousands,
        };
        self.format_number(n, &code)
    }

    /// `n` in `format`, with the separators the format writes rather than the app's locale's.
    fn format_number(&self, n: f64, format: &NumberFormat) -> String {
        let mut locale = self.locale().clone();
        locale.decimal = format.decimal.unwrap_or(locale.decimal);
        locale.thousands = format.thousands.unwrap_or(locale.thousands);
        mad_core::format::format_number(n, format, &locale)
    }

    /// The field's tags, as the engine derives them from its values.
    pub fn field_tags(&self, col: usize) -> Vec<&'static str> {
        let field = &self.base.fields()[col];
        match field.kind {
            FieldKind::Integer => vec!["$numeric", "$integer"],
            FieldKind::Number => vec!["$numeric"],
            FieldKind::Date => vec!["$numeric", "$integer", "$timestamp", "$date"],
            FieldKind::Timestamp => vec!["$numeric", "$timestamp"],
            FieldKind::Mixed => vec!["$numeric", "$text"],
            _ => {
                let ascii = self
                    .base
                    .column(col)
                    .symbols()
                    .iter()
                    .all(|v| v.as_text().is_none_or(|t| t.is_ascii()));
                if ascii {
                    vec!["$ascii", "$text"]
                } else {
                    vec!["$text"]
                }
            }
        }
    }

    /// The field's `FieldAttributes`: its format code with the separators written in it.
    fn field_num_format(&self, col: usize) -> Json {
        let field = &self.base.fields()[col];
        let format = field.format.as_ref();
        let code = format.map(|f| f.code.as_str()).unwrap_or("");
        let dec = format.and_then(|f| f.decimal).unwrap_or('.').to_string();
        let thou = format.and_then(|f| f.thousands).unwrap_or(',').to_string();
        let kind = match field.kind {
            FieldKind::Date => "D",
            FieldKind::Timestamp => "TS",
            _ if !code.is_empty() => "F",
            _ => return json!({"qType": "U", "qnDec": 0, "qUseThou": 0}),
        };
        json!({"qType": kind, "qnDec": 0, "qUseThou": 0, "qFmt": code, "qDec": dec, "qThou": thou})
    }

    pub fn is_numeric(&self, col: usize) -> bool {
        self.base.fields()[col].kind.is_numeric()
    }

    fn dimension_info(
        &self,
        col: usize,
        title: &str,
        indicator: &str,
        cube_cardinal: usize,
        texts: &[&str],
    ) -> Json {
        let symbols = self.base.column(col).symbols();
        let present = symbols_in(&self.base, col);
        let numbers: Vec<f64> = present
            .iter()
            .filter_map(|&s| symbols[s as usize].as_number())
            .collect();
        let min = numbers.iter().copied().reduce(f64::min);
        let max = numbers.iter().copied().reduce(f64::max);
        let kind = self.base.fields()[col].kind;
        let dimension_type = match kind {
            FieldKind::Date | FieldKind::Timestamp => "T",
            k if k.is_numeric() => "N",
            _ => "D",
        };
        let field = self.field_name(col);
        json!({
            "qFallbackTitle": title,
            "qApprMaxGlyphCount": glyphs(texts),
            "qCardinal": present.len(),
            "qSortIndicator": indicator,
            "qGroupFallbackTitles": [title],
            "qGroupPos": 0,
            "qStateCounts": self.state_counts(col),
            "qTags": self.field_tags(col),
            "qDimensionType": dimension_type,
            "qGrouping": "N",
            "qNumFormat": self.field_num_format(col),
            "qIsAutoFormat": true,
            "qGroupFieldDefs": [field],
            "qMin": num_json(min),
            "qMax": num_json(max),
            "qAttrExprInfo": [],
            "qAttrDimInfo": [],
            "qCardinalities": {
                "qCardinal": present.len(),
                "qHypercubeCardinal": cube_cardinal,
                "qAllValuesCardinal": -1
            }
        })
    }

    /// Computes a straight hypercube from its definition (`qHyperCubeDef`).
    pub fn hypercube(&self, def: &Json) -> Result<Cube, RpcError> {
        let def: HyperCubeDef = serde_json::from_value(def.clone())
            .map_err(|e| RpcError::new(codes::HC_INVALID_OBJECT, e.to_string()))?;
        check_default_state(&def.q_state_name)?;
        if !matches!(&def.q_mode, Json::Null)
            && !matches!(&def.q_mode, Json::String(m) if m == "S" || m == "DATA_MODE_STRAIGHT")
            && def.q_mode.as_i64() != Some(0)
        {
            return Err(RpcError::new(
                codes::GENERIC_NOT_IMPLEMENTED,
                "the test double computes straight hypercubes (qMode S) only",
            ));
        }
        let dims = def
            .q_dimensions
            .iter()
            .map(|d| self.resolve_dimension(d.q_library_id.as_deref(), &d.q_def))
            .collect::<Result<Vec<_>, _>>()?;
        let measures = def
            .q_measures
            .iter()
            .map(|m| self.resolve_measure(m))
            .collect::<Result<Vec<_>, _>>()?;
        let possible = self.possible();

        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut groups: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
        'rows: for r in 0..possible.len() {
            let mut key = Vec::with_capacity(dims.len());
            for (d, dim) in def.q_dimensions.iter().zip(&dims) {
                if d.q_null_suppression && possible.value(r, dim.col).is_null() {
                    continue 'rows;
                }
                key.push(possible.symbol_index(r, dim.col));
            }
            let slot = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(r);
        }
        if dims.is_empty() && groups.is_empty() {
            groups.push((Vec::new(), Vec::new()));
        }

        let values: Vec<Vec<Value>> = groups
            .iter()
            .map(|(_, rows)| {
                measures
                    .iter()
                    .map(|m| m.expr.eval(&possible, rows))
                    .collect()
            })
            .collect();
        let keep = |vals: &Vec<Value>| {
            if measures.is_empty() {
                return true;
            }
            let all_missing = vals.iter().all(Value::is_null);
            let all_zero = vals
                .iter()
                .all(|v| v.is_null() || v.as_number() == Some(0.0));
            !(def.q_suppress_missing && all_missing || def.q_suppress_zero && all_zero)
        };
        let mut order: Vec<usize> = (0..groups.len()).filter(|&g| keep(&values[g])).collect();

        let states: Vec<HashMap<u32, &'static str>> = dims
            .iter()
            .map(|d| self.field_states(d.col, true).into_iter().collect())
            .collect();
        let width = dims.len() + measures.len();
        let sort_order = effective_order(&def.q_inter_column_sort_order, width);
        order.sort_by(|&a, &b| {
            for &c in &sort_order {
                let ord = if c < dims.len() {
                    let sym_a = groups[a].0[c];
                    let sym_b = groups[b].0[c];
                    let symbols = self.base.column(dims[c].col).symbols();
                    compare_values(
                        (
                            sym_a,
                            &symbols[sym_a as usize],
                            states[c].get(&sym_a).copied().unwrap_or("O"),
                        ),
                        (
                            sym_b,
                            &symbols[sym_b as usize],
                            states[c].get(&sym_b).copied().unwrap_or("O"),
                        ),
                        &dims[c].sort,
                    )
                } else {
                    let m = c - dims.len();
                    compare_measure(&values[a][m], &values[b][m], &measures[m].sort)
                };
                if ord.is_ne() {
                    return ord;
                }
            }
            Ordering::Equal
        });

        let rows: Vec<Vec<Cell>> = order
            .iter()
            .map(|&g| {
                let mut row: Vec<Cell> = groups[g]
                    .0
                    .iter()
                    .zip(&dims)
                    .zip(&states)
                    .map(|((&sym, dim), st)| {
                        let state = match st.get(&sym).copied().unwrap_or("O") {
                            "S" => "S",
                            "L" => "L",
                            _ => "O",
                        };
                        self.value_cell(dim.col, sym, state)
                    })
                    .collect();
                row.extend(
                    values[g]
                        .iter()
                        .zip(&measures)
                        .map(|(v, m)| self.measure_cell(v, m.format.as_ref(), false)),
                );
                row
            })
            .collect();

        let all_rows: Vec<usize> = (0..possible.len()).collect();
        let grand_total = measures
            .iter()
            .map(|m| self.measure_cell(&m.expr.eval(&possible, &all_rows), m.format.as_ref(), true))
            .collect();
        let dimension_info = dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let texts: Vec<&str> = rows.iter().map(|r| r[i].q_text.as_str()).collect();
                let distinct: BTreeSet<u32> = order.iter().map(|&g| groups[g].0[i]).collect();
                self.dimension_info(d.col, &d.title, d.indicator, distinct.len(), &texts)
            })
            .collect();
        let measure_info = measures
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let column: Vec<&Value> = order.iter().map(|&g| &values[g][i]).collect();
                let texts: Vec<&str> = rows
                    .iter()
                    .map(|r| r[dims.len() + i].q_text.as_str())
                    .collect();
                m.info(&column, &texts)
            })
            .collect();
        Ok(Cube {
            dimensions: dims.len(),
            width,
            rows,
            dimension_info,
            measure_info,
            grand_total,
            order: sort_order,
        })
    }

    /// Computes a list object (`qListObjectDef`): every value of one field with its state.
    pub fn list_object(&self, def: &Json) -> Result<ListData, RpcError> {
        let def: ListObjectDef = serde_json::from_value(def.clone())
            .map_err(|e| RpcError::new(codes::GENERIC_INVALID_PARAMETERS, e.to_string()))?;
        check_default_state(&def.q_state_name)?;
        let dim = self.resolve_dimension(def.q_library_id.as_deref(), &def.q_def)?;
        let symbols = self.base.column(dim.col).symbols();
        let mut entries = self.field_states(dim.col, def.q_show_alternatives);
        entries.sort_by(|a, b| {
            compare_values(
                (a.0, &symbols[a.0 as usize], a.1),
                (b.0, &symbols[b.0 as usize], b.1),
                &dim.sort,
            )
        });
        let rows: Vec<Vec<Cell>> = entries
            .iter()
            .map(|&(sym, state)| vec![self.value_cell(dim.col, sym, state)])
            .collect();
        let texts: Vec<&str> = rows.iter().map(|r| r[0].q_text.as_str()).collect();
        let info = self.dimension_info(dim.col, &dim.title, dim.indicator, rows.len(), &texts);
        Ok(ListData {
            rows,
            dimension_info: info,
        })
    }

    /// The current selections (`qSelectionObject`).
    pub fn selection_object(&self) -> Json {
        let selections: Vec<Json> = self
            .selections
            .fields
            .keys()
            .map(|&col| {
                let texts = self.selected_in(col);
                let total = self.cardinal(col);
                let summary = if texts.len() <= 6 {
                    texts.join(", ")
                } else {
                    format!("{} of {total}", texts.len())
                };
                let info: Vec<Json> = texts
                    .iter()
                    .map(|t| json!({"qName": t, "qFieldSelectionMode": "NORMAL"}))
                    .collect();
                json!({
                    "qTotal": total,
                    "qIsNum": self.is_numeric(col),
                    "qField": self.field_name(col),
                    "qLocked": self.selections.locked.contains(&col),
                    "qSelectedCount": texts.len(),
                    "qSelected": summary,
                    "qRangeInfo": [],
                    "qSortIndex": 0,
                    "qStateCounts": self.state_counts(col),
                    "qSelectedFieldSelectionInfo": info,
                    "qNotSelectedFieldSelectionInfo": [],
                    "qSelectionThreshold": 6,
                    "qReadableName": self.field_name(col)
                })
            })
            .collect();
        json!({"qBackCount": 0, "qForwardCount": 0, "qSelections": selections})
    }

    fn resolve_dimension(
        &self,
        library_id: Option<&str>,
        def: &InlineDimension,
    ) -> Result<ResolvedDimension, RpcError> {
        let (field, label) = match library_id.filter(|id| !id.is_empty()) {
            Some(id) => {
                let master = self
                    .app
                    .dimensions
                    .get(id)
                    .ok_or_else(|| RpcError::new(codes::CALC_NOT_IN_LIB, id))?;
                (master.field.clone(), master.label.clone())
            }
            None => {
                let field = def.q_field_defs.first().cloned().unwrap_or_default();
                let label = def
                    .q_field_labels
                    .first()
                    .filter(|l| !l.is_empty())
                    .cloned();
                let label = label
                    .unwrap_or_else(|| strip_brackets(field.trim_start_matches('=')).to_string());
                (field, label)
            }
        };
        if field.trim_start().starts_with('=') {
            return Err(RpcError::new(
                codes::GENERIC_NOT_IMPLEMENTED,
                format!(
                    "calculated dimension {field}: the test double groups by plain fields only"
                ),
            ));
        }
        let col = self.column(&field).ok_or_else(|| {
            RpcError::new(
                codes::HC_INVALID_OBJECT,
                format!("the field {field} does not exist"),
            )
        })?;
        let given = def.q_sort_criterias.clone().unwrap_or_default();
        let sort = if given.is_empty() {
            vec![SortCriteria {
                q_sort_by_load_order: 1,
                ..Default::default()
            }]
        } else {
            given.clone()
        };
        Ok(ResolvedDimension {
            col,
            title: label,
            sort,
            indicator: sort_indicator(&given),
        })
    }

    fn resolve_measure(&self, m: &Measure) -> Result<ResolvedMeasure, RpcError> {
        let (expression, label, format) =
            match m.q_library_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => {
                    let master = self
                        .app
                        .measures
                        .get(id)
                        .ok_or_else(|| RpcError::new(codes::CALC_NOT_IN_LIB, id))?;
                    (master.expression.clone(), master.label.clone(), None)
                }
                None => (
                    m.q_def.q_def.clone(),
                    m.q_def.q_label.clone(),
                    m.q_def.q_num_format.clone(),
                ),
            };
        let expr = self.compile(&expression).map_err(|message| {
            RpcError::new(codes::HC_INVALID_OBJECT, format!("{expression}: {message}"))
        })?;
        let title = if label.is_empty() {
            expression.clone()
        } else {
            label
        };
        Ok(ResolvedMeasure {
            expr,
            title,
            format,
            sort: m.q_sort_by.clone(),
        })
    }
}

struct ResolvedDimension {
    col: usize,
    title: String,
    sort: Vec<SortCriteria>,
    /// `A`, `D` or `N` (no sort asked for, even though load order is used).
    indicator: &'static str,
}

struct ResolvedMeasure {
    expr: Expr,
    title: String,
    format: Option<FieldAttributes>,
    sort: SortCriteria,
}

impl ResolvedMeasure {
    fn info(&self, column: &[&Value], texts: &[&str]) -> Json {
        let numbers: Vec<f64> = column.iter().filter_map(|v| v.as_number()).collect();
        let min = numbers.iter().copied().reduce(f64::min);
        let max = numbers.iter().copied().reduce(f64::max);
        let (format, auto) = match self.format.as_ref().filter(|f| !f.is_unformatted()) {
            Some(f) => (serde_json::to_value(f).unwrap_or(Json::Null), false),
            None if numbers.iter().all(|n| n.fract() == 0.0) => (
                json!({"qType": "I", "qnDec": 0, "qUseThou": 1, "qFmt": "###0", "qDec": "."}),
                true,
            ),
            None => (json!({"qType": "U", "qnDec": 10, "qUseThou": 0}), true),
        };
        let indicator = sort_indicator(std::slice::from_ref(&self.sort));
        json!({
            "qFallbackTitle": self.title,
            "qApprMaxGlyphCount": glyphs(texts),
            "qCardinal": 0,
            "qSortIndicator": indicator,
            "qNumFormat": format,
            "qMin": num_json(min),
            "qMax": num_json(max),
            "qIsAutoFormat": auto,
            "qAttrExprInfo": [],
            "qAttrDimInfo": [],
            "qTrendLines": []
        })
    }
}

/// Alternate states are not modelled: every object works in the default state.
fn check_default_state(state: &str) -> Result<(), RpcError> {
    if state.is_empty() || state == "$" {
        return Ok(());
    }
    Err(RpcError::new(
        codes::GENERIC_NOT_IMPLEMENTED,
        format!("alternate state {state}: the test double has only the default state"),
    ))
}

fn strip_brackets(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

/// The symbols of `col` that occur in the rows of `table`, in load order.
fn symbols_in(table: &Table, col: usize) -> BTreeSet<u32> {
    let mut seen = vec![false; table.column(col).symbols().len()];
    for r in 0..table.len() {
        seen[table.symbol_index(r, col) as usize] = true;
    }
    seen.iter()
        .enumerate()
        .filter(|(_, s)| **s)
        .map(|(i, _)| i as u32)
        .collect()
}

fn glyphs(texts: &[&str]) -> usize {
    texts.iter().map(|t| t.chars().count()).max().unwrap_or(0)
}

fn sort_indicator(sort: &[SortCriteria]) -> &'static str {
    let first = sort.first().map(|c| {
        [
            c.q_sort_by_numeric,
            c.q_sort_by_ascii,
            c.q_sort_by_load_order,
            c.q_sort_by_frequency,
        ]
        .into_iter()
        .find(|&v| v != 0)
        .unwrap_or(0)
    });
    match first {
        Some(v) if v > 0 => "A",
        Some(v) if v < 0 => "D",
        _ => "N",
    }
}

/// The column order used for sorting: the definition's order, then any columns it leaves out.
fn effective_order(given: &[i64], width: usize) -> Vec<usize> {
    let mut order: Vec<usize> = given
        .iter()
        .filter_map(|&c| usize::try_from(c).ok())
        .filter(|&c| c < width)
        .collect();
    for c in 0..width {
        if !order.contains(&c) {
            order.push(c);
        }
    }
    order
}

fn state_rank(state: &str) -> i32 {
    match state {
        "S" | "L" => 0,
        "O" => 1,
        "A" => 2,
        _ => 3,
    }
}

/// Orders two field values by the criteria, in the engine's priority: state, number, text,
/// load order.
fn compare_values(
    a: (u32, &Value, &str),
    b: (u32, &Value, &str),
    criteria: &[SortCriteria],
) -> Ordering {
    for c in criteria {
        let mut ord = Ordering::Equal;
        if c.q_sort_by_state != 0 {
            ord = ord.then((state_rank(a.2).cmp(&state_rank(b.2))).then(Ordering::Equal));
            if c.q_sort_by_state < 0 {
                ord = ord.reverse();
            }
        }
        if ord.is_eq() && c.q_sort_by_numeric != 0 {
            ord = match (a.1.as_number(), b.1.as_number()) {
                (Some(x), Some(y)) => signed(x.total_cmp(&y), c.q_sort_by_numeric),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
        }
        if ord.is_eq() && c.q_sort_by_ascii != 0 {
            let (x, y) = (value_text(a.1), value_text(b.1));
            let text = x.to_lowercase().cmp(&y.to_lowercase()).then(x.cmp(&y));
            ord = signed(text, c.q_sort_by_ascii);
        }
        if ord.is_eq() && c.q_sort_by_load_order != 0 {
            ord = signed(a.0.cmp(&b.0), c.q_sort_by_load_order);
        }
        if ord.is_ne() {
            return ord;
        }
    }
    Ordering::Equal
}

fn compare_measure(a: &Value, b: &Value, sort: &SortCriteria) -> Ordering {
    if sort.q_sort_by_numeric != 0 {
        return match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => signed(x.total_cmp(&y), sort.q_sort_by_numeric),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
    }
    if sort.q_sort_by_ascii != 0 {
        return signed(value_text(a).cmp(&value_text(b)), sort.q_sort_by_ascii);
    }
    Ordering::Equal
}

fn signed(ord: Ordering, direction: i64) -> Ordering {
    if direction < 0 { ord.reverse() } else { ord }
}

/// Cuts pages out of a computed matrix, clipping each area to the matrix. Pages asking for
/// more than [`MAX_CELLS_PER_REQUEST`] cells in total are refused with error 7009, as the
/// engine refuses them.
pub fn pages(
    rows: &[Vec<Cell>],
    width: usize,
    tails: usize,
    requested: &[NxPage],
) -> Result<Json, RpcError> {
    let cells: i64 = requested
        .iter()
        .map(|p| p.q_width.max(0).saturating_mul(p.q_height.max(0)))
        .fold(0i64, i64::saturating_add);
    if cells > MAX_CELLS_PER_REQUEST {
        return Err(RpcError::new(
            codes::CALC_PAGES_TOO_LARGE,
            cells.to_string(),
        ));
    }
    if let Some(p) = requested
        .iter()
        .find(|p| p.q_left < 0 || p.q_top < 0 || p.q_width < 0 || p.q_height < 0)
    {
        return Err(RpcError::new(
            codes::GENERIC_INVALID_PARAMETERS,
            format!("negative page area {p:?}"),
        ));
    }
    let height = rows.len();
    let out: Vec<Json> = requested
        .iter()
        .map(|p| {
            let left = (p.q_left as usize).min(width);
            let top = (p.q_top as usize).min(height);
            let w = (p.q_width as usize).min(width - left);
            let h = (p.q_height as usize).min(height - top);
            let matrix: Vec<&[Cell]> = rows[top..top + h]
                .iter()
                .map(|r| &r[left..left + w])
                .collect();
            let tail = json!({"qUp": 0, "qDown": 0});
            json!({
                "qMatrix": matrix,
                "qTails": vec![tail; tails],
                "qArea": {"qLeft": left, "qTop": top, "qWidth": w, "qHeight": h}
            })
        })
        .collect();
    Ok(Json::Array(out))
}

/// Whether a field value matches a search string of `Field.Select`: `>`/`<` comparisons on
/// numbers (`>=10<20`), `*` and `?` wildcards, or else the whole text, ignoring case.
pub fn search_matches(pattern: &str, value: &Value) -> bool {
    let pattern = pattern.trim();
    if value.is_null() {
        return false;
    }
    if pattern.starts_with('>') || pattern.starts_with('<') {
        return value
            .as_number()
            .is_some_and(|n| numeric_search(pattern, n));
    }
    let text = value_text(value).to_lowercase();
    let pattern_lower = pattern.to_lowercase();
    if pattern.contains('*') || pattern.contains('?') {
        return wildcard(pattern_lower.as_bytes(), text.as_bytes());
    }
    text == pattern_lower
        || pattern
            .parse::<f64>()
            .ok()
            .is_some_and(|p| value.as_number() == Some(p))
}

fn numeric_search(pattern: &str, n: f64) -> bool {
    let mut rest = pattern;
    let mut any = false;
    while !rest.is_empty() {
        let (op, tail) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|t| (*op, t)))
            .unwrap_or(("", rest));
        if op.is_empty() {
            return false;
        }
        let end = tail.find(['<', '>']).unwrap_or(tail.len());
        let Ok(bound) = tail[..end].trim().parse::<f64>() else {
            return false;
        };
        let ok = match op {
            "<=" => n <= bound,
            ">=" => n >= bound,
            "<" => n < bound,
            _ => n > bound,
        };
        if !ok {
            return false;
        }
        any = true;
        rest = &tail[end..];
    }
    any
}

fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_follow_the_engine() {
        assert!(search_matches("west", &Value::text("West")));
        assert!(search_matches("W*t", &Value::text("West")));
        assert!(!search_matches("W?t", &Value::text("West")));
        assert!(search_matches(">=10<20", &Value::Number(10.0)));
        assert!(!search_matches(">=10<20", &Value::Number(20.0)));
        assert!(search_matches("42", &Value::dual(42.0, "042")));
    }

    #[test]
    fn numbers_that_are_not_finite_are_strings() {
        assert_eq!(serde_json::to_string(&Num(f64::NAN)).unwrap(), "\"NaN\"");
        assert_eq!(serde_json::to_string(&Num(1.5)).unwrap(), "1.5");
    }
}
