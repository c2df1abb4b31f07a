//! Conditional styles as Excel conditional formats, so they keep working when the reader edits
//! the numbers.

use mad_core::style::Operand;
use mad_core::{Condition, Layout, Result, StyleRule};
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
        for rule in &column.style {
            let format = ConditionalFormatCell::new()
                .set_rule(excel_rule(&rule.when))
                .set_format(look(rule))
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
    let value = |n: f64| ConditionalFormatValue::from(n);
    let operand = |o: &Operand| match o {
        Operand::Number(n) => ConditionalFormatValue::from(*n),
        Operand::Text(t) => ConditionalFormatValue::from(t.as_str()),
    };
    match condition {
        Condition::Less(n) => Rule::LessThan(value(*n)),
        Condition::LessOrEqual(n) => Rule::LessThanOrEqualTo(value(*n)),
        Condition::Greater(n) => Rule::GreaterThan(value(*n)),
        Condition::GreaterOrEqual(n) => Rule::GreaterThanOrEqualTo(value(*n)),
        Condition::Between(low, high) => Rule::Between(value(*low), value(*high)),
        Condition::Equal(o) => Rule::EqualTo(operand(o)),
        Condition::NotEqual(o) => Rule::NotEqualTo(operand(o)),
    }
}

fn look(rule: &StyleRule) -> Format {
    let mut format = Format::new();
    if let Some(color) = rule.color {
        format = format.set_font_color(Color::RGB(color.0));
    }
    if let Some(color) = rule.background {
        format = format.set_background_color(Color::RGB(color.0));
    }
    if rule.bold {
        format = format.set_bold();
    }
    if rule.italic {
        format = format.set_italic();
    }
    format
}
