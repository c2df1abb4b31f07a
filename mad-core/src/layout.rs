//! What every renderer needs from a report and its data: the resolved columns with their
//! formats, the rows in report order, and a walk through group headers, rows, subtotals and
//! the grand total. Renderers only decide how each piece looks.

use crate::error::{Error, Result};
use crate::format::{Locale, display};
use crate::report::{Aggregate, ReportDef};
use crate::style::{CellStyle, StyleRule};
use crate::table::{Column, Table};
use crate::value::{Field, FieldKind, NumberFormat, Value};

/// A report column resolved against the data.
#[derive(Debug, Clone)]
pub struct LayoutColumn {
    /// The column's index in the table.
    pub index: usize,
    pub header: String,
    pub kind: FieldKind,
    pub format: Option<NumberFormat>,
    pub total: Option<Aggregate>,
    pub width: Option<f32>,
    /// The column's conditional styles, in order.
    pub styles: Vec<StyleRule>,
}

impl LayoutColumn {
    /// Numbers and dates align right.
    pub fn is_numeric(&self) -> bool {
        self.kind.is_numeric()
    }

    /// The style of the first rule `value` meets, if any.
    pub fn style_for(&self, value: &Value) -> Option<&CellStyle> {
        self.styles
            .iter()
            .find(|r| r.condition.matches(value))
            .map(|r| &r.style)
    }

    /// The style of the first rule a total meets, if any.
    pub fn style_for_total(&self, total: f64) -> Option<&CellStyle> {
        self.styles
            .iter()
            .find(|r| r.condition.matches_number(total))
            .map(|r| &r.style)
    }

    /// The text shown for a value of this column.
    pub fn display(&self, value: &Value, locale: &Locale) -> String {
        display(value, self.format.as_ref(), locale)
    }

    /// The text shown for an aggregate of this column. Counts are plain integers; other
    /// aggregates use the column's format.
    pub fn display_total(&self, total: f64, locale: &Locale) -> String {
        match self.total {
            Some(Aggregate::Count) => crate::format::plain_number(total, locale),
            _ => display(&Value::Number(total), self.format.as_ref(), locale),
        }
    }
}

/// A report laid over its data.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Vec<LayoutColumn>,
    /// Table indices of the group fields, outermost first, with their names.
    pub groups: Vec<(usize, String)>,
    /// The rows in report order (grouped, then sorted).
    pub table: Table,
    pub subtotals: bool,
    pub grand_total: bool,
    /// Whether detail rows are shown (`LayoutEvent::Row`); without them only groups and
    /// totals are walked.
    pub details: bool,
}

/// One step of the walk through a laid-out report.
#[derive(Debug)]
pub enum LayoutEvent<'a> {
    /// A new group starts at `level` (0 = outermost).
    GroupHeader {
        level: usize,
        field: &'a str,
        value: &'a Value,
    },
    /// A data row, by its index in [`Layout::table`].
    Row(usize),
    /// A group ends; `totals` has one entry per layout column.
    GroupFooter {
        level: usize,
        field: &'a str,
        value: &'a Value,
        rows: usize,
        totals: &'a [Option<f64>],
    },
    /// The end of the report; `totals` has one entry per layout column.
    GrandTotal {
        rows: usize,
        totals: &'a [Option<f64>],
    },
}

impl Layout {
    /// Resolves `report` against `table`: every column, group and sort field must exist.
    pub fn new(report: &ReportDef, table: &Table) -> Result<Layout> {
        let columns = if report.columns.is_empty() {
            table
                .fields()
                .iter()
                .enumerate()
                .map(|(index, f)| LayoutColumn {
                    index,
                    header: f.name.clone(),
                    kind: f.kind,
                    format: f.format.clone(),
                    total: None,
                    width: None,
                    styles: Vec::new(),
                })
                .collect()
        } else {
            report
                .columns
                .iter()
                .map(|c| {
                    let index = table.require_column(&c.field)?;
                    let field = &table.fields()[index];
                    let styles = c
                        .style
                        .iter()
                        .map(|s| s.resolve())
                        .collect::<Result<Vec<_>>>()
                        .map_err(|e| e.context(format!("column '{}'", c.field)))?;
                    check_total(c.total, field, table.column(index))?;
                    Ok(LayoutColumn {
                        index,
                        header: c.header().to_string(),
                        kind: field.kind,
                        format: c
                            .format
                            .as_ref()
                            .map(NumberFormat::new)
                            .or_else(|| field.format.clone()),
                        total: c.total,
                        width: c.width,
                        styles,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let groups = report
            .group_levels()
            .into_iter()
            .map(|g| Ok((table.require_column(&g.field)?, g.field)))
            .collect::<Result<Vec<_>>>()?;
        let mut keys: Vec<(usize, bool)> = groups.iter().map(|(i, _)| (*i, false)).collect();
        for s in &report.sort {
            keys.push((table.require_column(&s.field)?, s.descending));
        }
        Ok(Layout {
            columns,
            groups,
            table: table.sorted_by(&keys),
            subtotals: report.subtotals,
            grand_total: report.grand_total,
            details: report.details,
        })
    }

    /// Whether any column has a total.
    pub fn has_totals(&self) -> bool {
        self.columns.iter().any(|c| c.total.is_some())
    }

    /// The value shown at `row`, column `col` (a layout column index).
    pub fn value(&self, row: usize, col: usize) -> &Value {
        self.table.value(row, self.columns[col].index)
    }

    /// Walks the report in order: group headers, rows, group footers, then the grand total.
    /// Group footers and the grand total come only when the report asks for them.
    pub fn walk(&self, mut visit: impl FnMut(LayoutEvent<'_>)) {
        let n = self.table.len();
        let levels = self.groups.len();
        let mut accumulators: Vec<Totals> = (0..=levels).map(|_| Totals::new(self)).collect();
        let mut open: Vec<Option<usize>> = vec![None; levels]; // first row of each open group
        for row in 0..n {
            let changed = (0..levels).find(|&l| match open[l] {
                None => true,
                Some(first) => {
                    let col = self.groups[l].0;
                    self.table.symbol_index(first, col) != self.table.symbol_index(row, col)
                }
            });
            if let Some(level) = changed {
                self.close_groups(level, &mut open, &mut accumulators, &mut visit);
                for (l, slot) in open.iter_mut().enumerate().skip(level) {
                    *slot = Some(row);
                    let (col, field) = &self.groups[l];
                    visit(LayoutEvent::GroupHeader {
                        level: l,
                        field,
                        value: self.table.value(row, *col),
                    });
                }
            }
            if self.details {
                visit(LayoutEvent::Row(row));
            }
            for acc in &mut accumulators {
                acc.add(self, row);
            }
        }
        self.close_groups(0, &mut open, &mut accumulators, &mut visit);
        if self.grand_total {
            let totals = accumulators[levels].finish(self);
            visit(LayoutEvent::GrandTotal {
                rows: n,
                totals: &totals,
            });
        }
    }

    fn close_groups(
        &self,
        from_level: usize,
        open: &mut [Option<usize>],
        accumulators: &mut [Totals],
        visit: &mut impl FnMut(LayoutEvent<'_>),
    ) {
        for level in (from_level..open.len()).rev() {
            let Some(first) = open[level].take() else {
                continue;
            };
            let totals = accumulators[level].finish(self);
            let rows = accumulators[level].rows;
            accumulators[level] = Totals::new(self);
            if self.subtotals {
                let (col, field) = &self.groups[level];
                visit(LayoutEvent::GroupFooter {
                    level,
                    field,
                    value: self.table.value(first, *col),
                    rows,
                    totals: &totals,
                });
            }
        }
    }
}

/// Running aggregates for one group.
struct Totals {
    rows: usize,
    sums: Vec<f64>,
    counts: Vec<usize>,
    mins: Vec<f64>,
    maxs: Vec<f64>,
}

impl Totals {
    fn new(layout: &Layout) -> Self {
        let n = layout.columns.len();
        Totals {
            rows: 0,
            sums: vec![0.0; n],
            counts: vec![0; n],
            mins: vec![f64::INFINITY; n],
            maxs: vec![f64::NEG_INFINITY; n],
        }
    }

    fn add(&mut self, layout: &Layout, row: usize) {
        self.rows += 1;
        for (i, c) in layout.columns.iter().enumerate() {
            if c.total.is_none() {
                continue;
            }
            let value = layout.table.value(row, c.index);
            if c.total == Some(Aggregate::Count) {
                self.counts[i] += usize::from(!value.is_null());
                continue;
            }
            if let Some(n) = value.as_number() {
                self.sums[i] += n;
                self.counts[i] += 1;
                self.mins[i] = self.mins[i].min(n);
                self.maxs[i] = self.maxs[i].max(n);
            }
        }
    }

    fn finish(&self, layout: &Layout) -> Vec<Option<f64>> {
        layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let total = c.total?;
                let has = self.counts[i] > 0;
                match total {
                    Aggregate::Sum => Some(self.sums[i]),
                    Aggregate::Count => Some(self.counts[i] as f64),
                    Aggregate::Avg => has.then(|| self.sums[i] / self.counts[i] as f64),
                    Aggregate::Min => has.then_some(self.mins[i]),
                    Aggregate::Max => has.then_some(self.maxs[i]),
                }
            })
            .collect()
    }
}

/// Refuses a sum or average over a field that holds texts: the total would silently leave
/// them out (a CSV column with one value that is not a number is read as text).
fn check_total(total: Option<Aggregate>, field: &Field, column: &Column) -> Result<()> {
    let numeric_total = matches!(total, Some(Aggregate::Sum | Aggregate::Avg));
    if !numeric_total || field.kind != FieldKind::Text {
        return Ok(());
    }
    let Some(text) = column.symbols().iter().find_map(Value::as_text) else {
        return Ok(());
    };
    Err(Error::invalid_input(format!(
        "the column '{}' has a {} total, but the field holds texts such as \"{text}\", so the \
         total would be wrong; declare the field a number in its source (for a CSV file: \
         fields = {{ \"{}\" = \"number\" }}) to be told which line is not a number",
        field.name,
        match total {
            Some(Aggregate::Avg) => "average",
            _ => "sum",
        },
        field.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ColumnDef, SortKey};
    use crate::table::ColumnBuilder;
    use crate::value::{Field, Schema};

    fn table() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("State", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
        for (r, s, v) in [
            ("West", "CA", 1.0),
            ("East", "NY", 2.0),
            ("West", "WA", 3.0),
            ("West", "CA", 4.0),
        ] {
            cols[0].push(Value::text(r));
            cols[1].push(Value::text(s));
            cols[2].push(Value::Number(v));
        }
        Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_sum_over_texts_is_refused_with_the_field_and_a_value() {
        let mut report = ReportDef::new("r", "t");
        report.columns = vec![ColumnDef::new("State").total(Aggregate::Sum)];
        let err = Layout::new(&report, &table()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        let message = err.to_string();
        assert!(
            message.contains("'State'") && message.contains("\"CA\""),
            "{message}"
        );
        report.columns = vec![ColumnDef::new("State").total(Aggregate::Count)];
        assert!(Layout::new(&report, &table()).is_ok());
    }

    #[test]
    fn walk_nests_groups_with_subtotals() {
        let mut report = ReportDef::new("r", "t");
        report.columns = vec![
            ColumnDef::new("State"),
            ColumnDef::new("Sales").total(Aggregate::Sum),
        ];
        report.group_by = vec!["Region".into(), "State".into()];
        report.sort = vec![SortKey::desc("Sales")];
        let layout = Layout::new(&report, &table()).unwrap();
        let mut seen = Vec::new();
        layout.walk(|e| {
            seen.push(match e {
                LayoutEvent::GroupHeader { level, value, .. } => format!("H{level}:{value:?}"),
                LayoutEvent::Row(r) => format!("R{}", layout.value(r, 1).as_number().unwrap()),
                LayoutEvent::GroupFooter { level, totals, .. } => {
                    format!("F{level}:{}", totals[1].unwrap())
                }
                LayoutEvent::GrandTotal { totals, rows } => {
                    format!("T{rows}:{}", totals[1].unwrap())
                }
            })
        });
        assert_eq!(
            seen.join(" "),
            "H0:\"East\" H1:\"NY\" R2 F1:2 F0:2 H0:\"West\" H1:\"CA\" R4 R1 F1:5 H1:\"WA\" R3 F1:3 F0:8 T4:10"
        );
    }

    #[test]
    fn a_summary_walks_groups_and_totals_only() {
        let mut report = ReportDef::new("r", "t");
        report.columns = vec![ColumnDef::new("Sales").total(Aggregate::Sum)];
        report.group_by = vec!["Region".into()];
        report.summary_formats = vec![crate::report::OutputFormat::Html];
        let summary = report.for_format(crate::report::OutputFormat::Html);
        let layout = Layout::new(&summary, &table()).unwrap();
        let mut seen = Vec::new();
        layout.walk(|e| {
            seen.push(match e {
                LayoutEvent::GroupHeader { .. } => "H",
                LayoutEvent::Row(_) => "R",
                LayoutEvent::GroupFooter { .. } => "F",
                LayoutEvent::GrandTotal { .. } => "T",
            })
        });
        assert_eq!(seen.concat(), "HFHFT");
        let full = report.for_format(crate::report::OutputFormat::Pdf);
        assert!(full.details);
        report.summary_formats = vec![crate::report::OutputFormat::Xlsx];
        assert!(report.validate().is_err());
    }

    #[test]
    fn unknown_column_names_the_field() {
        let mut report = ReportDef::new("r", "t");
        report.columns = vec![ColumnDef::new("Revenue")];
        let err = Layout::new(&report, &table()).unwrap_err();
        assert!(err.to_string().contains("'Revenue'"), "{err}");
    }
}
