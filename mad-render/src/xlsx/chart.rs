//! Native Excel charts. Each chart of the report gets its aggregated values (one row per
//! category) on the sheet "Charts data", and a chart over that range beside the table, so the
//! chart stays editable in Excel and never needs the whole table.

use std::collections::HashMap;

use mad_core::{
    Aggregate, ChartDef, ChartKind, Error, FieldKind, Layout, LayoutColumn, Locale, Placeholders,
    Result, Table, Value,
};
use rust_xlsxwriter::{Chart, ChartType, Format, Worksheet};

use super::sheet::{CellKind, EXCEL_SERIALS, excel_code};
use super::{BACKEND, xlsx_error};

/// The sheet holding the aggregated values the charts draw.
pub(super) const DATA_SHEET: &str = "Charts data";
/// Rows between the tops of two charts stacked beside the table (a chart is 288 px high).
const CHART_ROWS: u32 = 16;

/// One chart, ready to write: its title, its labels and its points in category order.
#[derive(Debug)]
pub(super) struct ChartData {
    kind: ChartKind,
    title: String,
    dimension: LayoutColumn,
    measure_label: String,
    measure_format: Option<String>,
    points: Vec<(Value, Option<f64>)>,
}

/// Aggregates every chart of the report over `layout`'s rows. Charts with no category (an
/// empty table) are left out.
pub(super) fn prepare(
    charts: &[ChartDef],
    layout: &Layout,
    placeholders: &Placeholders,
) -> Result<Vec<ChartData>> {
    let mut prepared = Vec::with_capacity(charts.len());
    for (i, chart) in charts.iter().enumerate() {
        let context = |e: Error| e.context(format!("chart {}", i + 1)).with_backend(BACKEND);
        let data = ChartData::new(chart, layout, placeholders).map_err(context)?;
        if !data.points.is_empty() {
            prepared.push(data);
        }
    }
    Ok(prepared)
}

impl ChartData {
    fn new(chart: &ChartDef, layout: &Layout, placeholders: &Placeholders) -> Result<ChartData> {
        let table = &layout.table;
        let dimension = table.require_column(&chart.dimension)?;
        let measure = table.require_column(&chart.measure)?;
        let measure_field = &table.fields()[measure];
        if chart.aggregate != Aggregate::Count && !is_numeric(measure_field.kind) {
            return Err(Error::invalid_config(format!(
                "the measure '{}' holds texts, so it cannot be summed or averaged; pick a \
                 numeric field or aggregate = \"count\"",
                chart.measure
            )));
        }

        let shown = |index: usize| layout.columns.iter().find(|c| c.index == index);
        let dimension_column = shown(dimension).cloned().unwrap_or_else(|| {
            let field = &table.fields()[dimension];
            LayoutColumn {
                index: dimension,
                header: field.name.clone(),
                kind: field.kind,
                format: field.format.clone(),
                total: None,
                width: None,
                styles: Vec::new(),
            }
        });
        let measure_format = match chart.aggregate {
            Aggregate::Count => Some("0".to_string()),
            _ => shown(measure)
                .map(|c| c.format.clone())
                .unwrap_or_else(|| measure_field.format.clone())
                .as_ref()
                .and_then(super::excel_number_format),
        };
        let title = placeholders.render(&chart.title_template())?;
        Ok(ChartData {
            kind: chart.kind,
            title,
            measure_label: measure_label(chart),
            measure_format,
            points: aggregate(table, dimension, measure, chart.aggregate),
            dimension: dimension_column,
        })
    }
}

fn is_numeric(kind: FieldKind) -> bool {
    kind.is_numeric() || kind == FieldKind::Mixed
}

fn measure_label(chart: &ChartDef) -> String {
    let aggregate = match chart.aggregate {
        Aggregate::Sum => "Sum",
        Aggregate::Count => "Count",
        Aggregate::Avg => "Average",
        Aggregate::Min => "Minimum",
        Aggregate::Max => "Maximum",
    };
    format!("{aggregate} of {}", chart.measure)
}

/// The measure aggregated per distinct dimension value, in the dimension's sort order. Rows
/// whose dimension is null are left out; a category without any number has no value (except
/// for counts, which are zero).
fn aggregate(
    table: &Table,
    dimension: usize,
    measure: usize,
    how: Aggregate,
) -> Vec<(Value, Option<f64>)> {
    #[derive(Default)]
    struct Acc {
        sum: f64,
        numbers: usize,
        non_null: usize,
        min: Option<f64>,
        max: Option<f64>,
    }
    let mut groups: HashMap<u32, Acc> = HashMap::new();
    for row in 0..table.len() {
        if table.value(row, dimension).is_null() {
            continue;
        }
        let acc = groups
            .entry(table.symbol_index(row, dimension))
            .or_default();
        let value = table.value(row, measure);
        acc.non_null += usize::from(!value.is_null());
        if let Some(n) = value.as_number().filter(|n| n.is_finite()) {
            acc.sum += n;
            acc.numbers += 1;
            acc.min = Some(acc.min.map_or(n, |m| m.min(n)));
            acc.max = Some(acc.max.map_or(n, |m| m.max(n)));
        }
    }

    let symbols = table.column(dimension).symbols();
    let mut points: Vec<(Value, Option<f64>)> = groups
        .into_iter()
        .map(|(symbol, acc)| {
            let result = match how {
                Aggregate::Sum => (acc.numbers > 0).then_some(acc.sum),
                Aggregate::Count => Some(acc.non_null as f64),
                Aggregate::Avg => (acc.numbers > 0).then(|| acc.sum / acc.numbers as f64),
                Aggregate::Min => acc.min,
                Aggregate::Max => acc.max,
            };
            (symbols[symbol as usize].clone(), result)
        })
        .collect();
    points.sort_by(|a, b| a.0.sort_cmp(&b.0));
    points
}

/// Writes each chart's points on the data sheet, two columns per chart with a blank column
/// between them.
pub(super) fn write_data(
    sheet: &mut Worksheet,
    charts: &[ChartData],
    locale: &Locale,
) -> Result<()> {
    let header = Format::new().set_bold();
    for (i, chart) in charts.iter().enumerate() {
        let (dimension_col, measure_col) = columns_of(i);
        let dimension_format = excel_code(&chart.dimension)
            .map_or_else(Format::new, |code| Format::new().set_num_format(code));
        let measure_format = chart
            .measure_format
            .as_ref()
            .map_or_else(Format::new, |code| Format::new().set_num_format(code));
        let fail = |e| xlsx_error("writing the chart data", e);
        sheet
            .write_string_with_format(0, dimension_col, &chart.dimension.header, &header)
            .map_err(fail)?;
        sheet
            .write_string_with_format(0, measure_col, &chart.measure_label, &header)
            .map_err(fail)?;
        for (row, (category, value)) in (1u32..).zip(&chart.points) {
            write_category(
                sheet,
                (row, dimension_col),
                category,
                chart,
                &dimension_format,
                locale,
            )?;
            if let Some(value) = value {
                sheet
                    .write_number_with_format(row, measure_col, *value, &measure_format)
                    .map_err(fail)?;
            }
        }
        let width = chart.dimension.header.chars().count().clamp(10, 40) as f64;
        sheet.set_column_width(dimension_col, width).map_err(fail)?;
        let width = chart.measure_label.chars().count().clamp(10, 40) as f64;
        sheet.set_column_width(measure_col, width).map_err(fail)?;
    }
    Ok(())
}

/// A category as a typed cell: a date cell for dates, a number cell for numbers, else text.
fn write_category(
    sheet: &mut Worksheet,
    (row, col): (u32, u16),
    value: &Value,
    chart: &ChartData,
    format: &Format,
    locale: &Locale,
) -> Result<()> {
    let written = match (value, CellKind::of(&chart.dimension)) {
        (Value::Number(n) | Value::Dual(n, _), CellKind::Date) if EXCEL_SERIALS.contains(n) => {
            sheet.write_number_with_format(row, col, *n, format)
        }
        (Value::Number(n), CellKind::Number) | (Value::Dual(n, _), CellKind::Number) => {
            sheet.write_number_with_format(row, col, *n, format)
        }
        _ => sheet.write_string(row, col, chart.dimension.display(value, locale)),
    };
    written.map_err(|e| xlsx_error("writing a chart category", e))?;
    Ok(())
}

fn columns_of(chart: usize) -> (u16, u16) {
    let first = (chart * 3) as u16;
    (first, first + 1)
}

/// Inserts the charts on the report sheet, stacked beside the table from its header row.
pub(super) fn insert(
    sheet: &mut Worksheet,
    data_sheet: &str,
    charts: &[ChartData],
    top_row: u32,
    left_col: u16,
) -> Result<()> {
    for (i, data) in charts.iter().enumerate() {
        let (dimension_col, measure_col) = columns_of(i);
        let last = data.points.len() as u32;
        let mut chart = Chart::new(match data.kind {
            ChartKind::Bar => ChartType::Column,
            ChartKind::Line => ChartType::Line,
            ChartKind::Pie => ChartType::Pie,
        });
        chart
            .add_series()
            .set_name(data.measure_label.as_str())
            .set_categories((data_sheet, 1, dimension_col, last, dimension_col))
            .set_values((data_sheet, 1, measure_col, last, measure_col));
        chart.title().set_name(data.title.as_str());
        if data.kind != ChartKind::Pie {
            chart.legend().set_hidden();
        }
        let row = top_row.saturating_add(i as u32 * CHART_ROWS);
        sheet
            .insert_chart(row, left_col, &chart)
            .map_err(|e| xlsx_error("inserting a chart", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::{ColumnBuilder, Field, Schema};

    #[test]
    fn aggregates_per_category_in_sort_order() {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
        ]);
        let (mut region, mut sales) = (ColumnBuilder::default(), ColumnBuilder::default());
        for (r, s) in [
            (Value::text("West"), Value::Number(1.0)),
            (Value::text("East"), Value::Number(2.0)),
            (Value::text("West"), Value::Number(4.0)),
            (Value::Null, Value::Number(8.0)),
            (Value::text("East"), Value::Null),
        ] {
            region.push(r);
            sales.push(s);
        }
        let table = Table::new(schema, vec![region.finish(), sales.finish()]).unwrap();

        let sums = aggregate(&table, 0, 1, Aggregate::Sum);
        assert_eq!(
            sums,
            vec![
                (Value::text("East"), Some(2.0)),
                (Value::text("West"), Some(5.0))
            ]
        );
        let counts = aggregate(&table, 0, 1, Aggregate::Count);
        assert_eq!(counts[0].1, Some(1.0));
        assert_eq!(aggregate(&table, 0, 1, Aggregate::Avg)[1].1, Some(2.5));
        assert_eq!(aggregate(&table, 0, 1, Aggregate::Max)[1].1, Some(4.0));
    }
}
