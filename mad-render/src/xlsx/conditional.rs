//! Conditional styles as Excel conditional formats, so they keep working when the reader edits
//! the numbers.

use mad_core::style::Comparison;
use mad_core::{CellStyle, Condition, Layout, Result};
use rust_xlsxwriter::{
    Color, ConditionalFormatCell, ConditionalFormatCellRule, ConditionalFormatValue, Format,
    Worksheet,
};

use super::xlsx_error;

/// Adds each column's style rules over `first_row..=last_row` of its column. The first rule
/// listed has the highest priority and stops the others, as in the report definition.
pub(super) fn add(
    sheet: &mut Worksheet,
    layout: &Layout,
    first_row: u32,
    last_row: u32,
) -> Result<()> {
    if last_row < first_row {
        return Ok(());
    }
    for (col, column) in layout.columns.iter().enumerate() {
        for rule in &column.styles {
            let format = ConditionalFormatCell::new()
                .set_rule(excel_rule(&rule.condition))
                .set_format(look(&rule.style))
                .set_stop_if_true(true);
            sheet
                .add_conditional_format(first_row, col as u16, last_row, col as u16, &format)
                .map_err(|e| xlsx_error("adding a conditional style", e))?;
        }
    }
    Ok(())
}

fn excel_rule(condition: &Condition) -> ConditionalFormatCellRule<ConditionalFormatValue> {
    use ConditionalFormatCellRule as Rule;
    match condition {
        Condition::Number(op, n) => {
            let value = ConditionalFormatValue::from(*n);
            match op {
                Comparison::Less => Rule::LessThan(value),
                Comparison::LessOrEqual => Rule::LessThanOrEqualTo(value),
                Comparison::Greater => Rule::GreaterThan(value),
                Comparison::GreaterOrEqual => Rule::GreaterThanOrEqualTo(value),
                Comparison::Equal => Rule::EqualTo(value),
                Comparison::NotEqual => Rule::NotEqualTo(value),
            }
        }
        Condition::Text { equal, text } => {
            let value = ConditionalFormatValue::from(text.as_str());
            if *equal {
                Rule::EqualTo(value)
            } else {
                Rule::NotEqualTo(value)
            }
        }
    }
}

fn look(style: &CellStyle) -> Format {
    let rgb = |c: mad_core::Color| Color::RGB(u32::from_be_bytes([0, c.r, c.g, c.b]));
    let mut format = Format::new();
    if let Some(color) = style.color {
        format = format.set_font_color(rgb(color));
    }
    if let Some(color) = style.background {
        format = format.set_background_color(rgb(color));
    }
    if style.bold {
        format = format.set_bold();
    }
    format
}
