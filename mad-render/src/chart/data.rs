//! A chart's numbers: a measure aggregated per value of a dimension over the recipient's rows.

use mad_core::format::{display, format_number, plain_number};
use mad_core::{Aggregate, ChartDef, ChartKind, Error, Locale, NumberFormat, Result, Table};

/// The most slices a pie shows; smaller ones are added up as "Other".
pub(crate) const MAX_SLICES: usize = 10;

/// What a chart shows, with every text already formatted for the recipient's locale.
#[derive(Debug, Clone)]
pub(crate) struct ChartData {
    pub kind: ChartKind,
    pub title: String,
    /// What the values are, such as "Sum of Sales", for the legend of bars and lines.
    pub series: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    /// Each value as the report shows it.
    pub shown: Vec<String>,
    format: Option<NumberFormat>,
    aggregate: Aggregate,
    locale: Locale,
}

/// Running aggregate of one dimension value.
#[derive(Debug, Clone, Copy)]
struct Acc {
    seen: bool,
    count: usize,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        seen: false,
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn value(&self, aggregate: Aggregate) -> Option<f64> {
        let has = self.count > 0;
        match aggregate {
            Aggregate::Sum => Some(self.sum),
            Aggregate::Count => Some(self.count as f64),
            Aggregate::Avg => has.then(|| self.sum / self.count as f64),
            Aggregate::Min => has.then_some(self.min),
            Aggregate::Max => has.then_some(self.max),
        }
    }
}

impl ChartData {
    /// Aggregates `def.measure` per value of `def.dimension` over `table`. `format` is the
    /// measure's number format as the report shows it; `title` the filled title, if any.
    pub(crate) fn new(
        def: &ChartDef,
        table: &Table,
        format: Option<NumberFormat>,
        title: Option<String>,
        locale: &Locale,
    ) -> Result<ChartData> {
        let dimension = table.require_column(&def.dimension)?;
        let measure = table.require_column(&def.measure)?;
        let series = format!("{} of {}", aggregate_name(def.aggregate), def.measure);
        let title = title.unwrap_or_else(|| format!("{series} by {}", def.dimension));

        let mut accs = vec![Acc::EMPTY; table.column(dimension).symbols().len()];
        for row in 0..table.len() {
            let acc = &mut accs[table.symbol_index(row, dimension) as usize];
            acc.seen = true;
            let value = table.value(row, measure);
            if def.aggregate == Aggregate::Count {
                acc.count += usize::from(!value.is_null());
            } else if let Some(n) = value.as_number().filter(|n| n.is_finite()) {
                acc.count += 1;
                acc.sum += n;
                acc.min = acc.min.min(n);
                acc.max = acc.max.max(n);
            }
        }
        let symbols = table.column(dimension).symbols();
        let mut points: Vec<(usize, f64)> = accs
            .iter()
            .enumerate()
            .filter(|(_, a)| a.seen)
            .filter_map(|(i, a)| Some((i, a.value(def.aggregate)?)))
            .collect();
        points.sort_by(|a, b| symbols[a.0].sort_cmp(&symbols[b.0]));

        let field_format = table.fields()[dimension].format.as_ref();
        let mut data = ChartData {
            kind: def.kind,
            title,
            series,
            labels: Vec::with_capacity(points.len()),
            values: Vec::with_capacity(points.len()),
            shown: Vec::new(),
            format,
            aggregate: def.aggregate,
            locale: locale.clone(),
        };
        for (symbol, value) in points {
            let label = display(&symbols[symbol], field_format, locale);
            data.labels.push(if label.is_empty() {
                "(empty)".into()
            } else {
                label
            });
            data.values.push(value);
        }
        if def.kind == ChartKind::Pie {
            data.sort_descending();
        }
        if let Some(limit) = def.limit {
            data.sort_descending();
            data.keep(limit);
        }
        if def.kind == ChartKind::Pie {
            data.keep(MAX_SLICES);
        }
        data.shown = data.values.iter().map(|v| data.format_value(*v)).collect();
        Ok(data)
    }

    fn sort_descending(&mut self) {
        let mut order: Vec<usize> = (0..self.values.len()).collect();
        order.sort_by(|&a, &b| self.values[b].total_cmp(&self.values[a]));
        self.labels = order.iter().map(|&i| self.labels[i].clone()).collect();
        self.values = order.iter().map(|&i| self.values[i]).collect();
    }

    /// Keeps the first `n` points; the rest are added up as "Other" when the aggregate adds
    /// up (sum, count), and left out otherwise.
    pub(crate) fn keep(&mut self, n: usize) {
        if self.values.len() <= n {
            return;
        }
        let adds_up = matches!(self.aggregate, Aggregate::Sum | Aggregate::Count);
        let kept = if adds_up {
            n.saturating_sub(1).max(1)
        } else {
            n
        };
        let rest: f64 = self.values[kept..].iter().sum();
        self.labels.truncate(kept);
        self.values.truncate(kept);
        if adds_up {
            self.labels.push("Other".into());
            self.values.push(rest);
        }
        self.shown = self.values.iter().map(|v| self.format_value(*v)).collect();
    }

    /// A value as the report shows the measure.
    pub(crate) fn format_value(&self, value: f64) -> String {
        match (&self.format, self.aggregate) {
            (_, Aggregate::Count) | (None, _) => plain_number(value, &self.locale),
            (Some(format), _) => format_number(value, format, &self.locale),
        }
    }

    /// An axis tick: the measure's format without decimals it does not need, or a plain
    /// number.
    pub(crate) fn format_tick(&self, value: f64, step: f64) -> String {
        let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
        let percent = self
            .format
            .as_ref()
            .is_some_and(|f| f.code.contains('%') && self.aggregate != Aggregate::Count);
        let code = match (percent, decimals) {
            (true, _) => {
                let decimals = decimals.saturating_sub(2);
                format!("0{}%", decimal_places(decimals))
            }
            (false, d) => format!("#,##0{}", decimal_places(d)),
        };
        format_number(value, &NumberFormat::new(code), &self.locale)
    }

    /// A share of the whole, such as "12.5%".
    pub(crate) fn format_share(&self, share: f64) -> String {
        format_number(share, &NumberFormat::new("0.0%"), &self.locale)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn decimal_places(n: usize) -> String {
    match n {
        0 => String::new(),
        n => format!(".{}", "0".repeat(n)),
    }
}

fn aggregate_name(aggregate: Aggregate) -> &'static str {
    match aggregate {
        Aggregate::Sum => "Sum",
        Aggregate::Count => "Count",
        Aggregate::Avg => "Average",
        Aggregate::Min => "Minimum",
        Aggregate::Max => "Maximum",
    }
}

/// The measure's format as the report shows it: the report column's code, else the field's.
pub(crate) fn measure_format(
    report: &mad_core::ReportDef,
    table: &Table,
    field: &str,
) -> Option<NumberFormat> {
    report
        .columns
        .iter()
        .find(|c| c.field == field)
        .and_then(|c| c.format.as_ref())
        .map(NumberFormat::new)
        .or_else(|| table.schema().field(field).and_then(|f| f.format.clone()))
}

/// The data of every chart of the job's report, titles filled.
pub(crate) fn charts_of(
    job: &mad_core::RenderJob<'_>,
    backend: &'static str,
) -> Result<Vec<(ChartData, mad_core::ChartPlacement)>> {
    job.report
        .charts
        .iter()
        .map(|def| {
            let title = def
                .title
                .as_deref()
                .map(|t| job.placeholders.render(t))
                .transpose()?;
            let format = measure_format(job.report, job.table, &def.measure);
            let data = ChartData::new(def, job.table, format, title, job.locale).map_err(|e| {
                e.context(format!(
                    "the chart of '{}' by '{}'",
                    def.measure, def.dimension
                ))
            })?;
            Ok((data, def.placement))
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e: Error| e.with_backend(backend))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::{ColumnBuilder, Field, FieldKind, Schema, Value};

    fn table() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let (mut r, mut s) = (ColumnBuilder::default(), ColumnBuilder::default());
        for (region, sales) in [
            ("West", 10.0),
            ("East", 5.0),
            ("West", 2.5),
            ("South", -1.0),
        ] {
            r.push(Value::text(region));
            s.push(Value::Number(sales));
        }
        Table::new(schema, vec![r.finish(), s.finish()]).unwrap()
    }

    #[test]
    fn aggregates_per_dimension_value_in_order() {
        let def = ChartDef::new(ChartKind::Bar, "Region", "Sales");
        let data = ChartData::new(&def, &table(), None, None, &Locale::default()).unwrap();
        assert_eq!(data.labels, ["East", "South", "West"]);
        assert_eq!(data.values, [5.0, -1.0, 12.5]);
        assert_eq!(data.title, "Sum of Sales by Region");

        let mut top = def.clone().with_limit(2);
        top.kind = ChartKind::Pie;
        let data = ChartData::new(&top, &table(), None, None, &Locale::default()).unwrap();
        assert_eq!(data.labels, ["West", "Other"]);
        assert_eq!(data.values, [12.5, 4.0]);
    }

    #[test]
    fn values_and_ticks_follow_the_locale() {
        let def = ChartDef::new(ChartKind::Line, "Region", "Sales");
        let format = Some(NumberFormat::new("#,##0.00"));
        let data = ChartData::new(&def, &table(), format, None, &Locale::new("de-DE")).unwrap();
        assert_eq!(data.shown[2], "12,50");
        assert_eq!(data.format_tick(2500.0, 500.0), "2.500");
        assert_eq!(data.format_tick(0.5, 0.5), "0,5");
    }
}
