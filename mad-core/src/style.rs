//! Conditional styles: a column's cells look different when their value meets a condition,
//! such as negative amounts in red.
//!
//! ```toml
//! [[reports.sales.columns]]
//! field = "Profit"
//! style = [
//!     { when = "< 0", color = "#C00000" },
//!     { when = ">= 1000", background = "#E2EFDA", bold = true },
//! ]
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::Value;

/// One rule of a column's conditional style: a condition and the look of the cells meeting
/// it. When several rules match a cell, the first one listed wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleRule {
    /// The condition, such as `< 0`, `>= 1000`, `= "East"` or `between 0 and 100`.
    pub when: Condition,
    /// The text colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Rgb>,
    /// The fill colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Rgb>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bold: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub italic: bool,
}

impl StyleRule {
    pub fn new(when: Condition) -> Self {
        StyleRule {
            when,
            color: None,
            background: None,
            bold: false,
            italic: false,
        }
    }

    pub fn color(mut self, color: Rgb) -> Self {
        self.color = Some(color);
        self
    }

    pub fn background(mut self, color: Rgb) -> Self {
        self.background = Some(color);
        self
    }

    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
}

/// A colour as `#RRGGBB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rgb(pub u32);

impl FromStr for Rgb {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let hex = s.trim().trim_start_matches('#');
        let valid = hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit());
        match valid.then(|| u32::from_str_radix(hex, 16).ok()).flatten() {
            Some(rgb) => Ok(Rgb(rgb)),
            None => Err(Error::invalid_config(format!(
                "the colour \"{s}\" is not of the form #RRGGBB (such as #C00000 for dark red)"
            ))),
        }
    }
}

impl TryFrom<String> for Rgb {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Rgb> for String {
    fn from(rgb: Rgb) -> String {
        rgb.to_string()
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:06X}", self.0 & 0xFF_FFFF)
    }
}

/// When a conditional style applies. Comparisons with a number hold for values with a number
/// (numbers, dates, duals); equality with a text holds for values showing exactly that text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Condition {
    Less(f64),
    LessOrEqual(f64),
    Greater(f64),
    GreaterOrEqual(f64),
    Equal(Operand),
    NotEqual(Operand),
    /// Both bounds included.
    Between(f64, f64),
}

/// What an equality compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    Text(String),
}

impl Condition {
    /// Whether `value` meets the condition. Nulls meet none.
    pub fn matches(&self, value: &Value) -> bool {
        let number = value.as_number();
        match self {
            Condition::Less(n) => number.is_some_and(|v| v < *n),
            Condition::LessOrEqual(n) => number.is_some_and(|v| v <= *n),
            Condition::Greater(n) => number.is_some_and(|v| v > *n),
            Condition::GreaterOrEqual(n) => number.is_some_and(|v| v >= *n),
            Condition::Between(low, high) => number.is_some_and(|v| *low <= v && v <= *high),
            Condition::Equal(operand) => operand.equals(value),
            Condition::NotEqual(operand) => !value.is_null() && !operand.equals(value),
        }
    }
}

impl Operand {
    fn equals(&self, value: &Value) -> bool {
        match self {
            Operand::Number(n) => value.as_number() == Some(*n),
            Operand::Text(t) => value.as_text() == Some(t.as_str()),
        }
    }
}

impl FromStr for Condition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_config(format!(
                "the style condition \"{s}\" is not understood; write one of `< 0`, `<= 0`, \
                 `> 1000`, `>= 1000`, `= 0`, `= \"East\"`, `!= \"East\"`, `between 0 and 100`"
            ))
        };
        let text = s.trim();
        let number = |t: &str| t.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        if let Some(rest) = strip_prefix_ignore_case(text, "between ") {
            let (low, high) = split_ignore_case(rest, " and ").ok_or_else(bad)?;
            let (low, high) = (number(low).ok_or_else(bad)?, number(high).ok_or_else(bad)?);
            return Ok(Condition::Between(low.min(high), low.max(high)));
        }
        let (operator, rest) = ["<=", ">=", "!=", "<>", "<", ">", "=="]
            .into_iter()
            .chain(["="])
            .find_map(|op| text.strip_prefix(op).map(|rest| (op, rest.trim())))
            .ok_or_else(bad)?;
        let compared = || number(rest).ok_or_else(bad);
        Ok(match operator {
            "<" => Condition::Less(compared()?),
            "<=" => Condition::LessOrEqual(compared()?),
            ">" => Condition::Greater(compared()?),
            ">=" => Condition::GreaterOrEqual(compared()?),
            "!=" | "<>" => Condition::NotEqual(operand(rest).ok_or_else(bad)?),
            _ => Condition::Equal(operand(rest).ok_or_else(bad)?),
        })
    }
}

/// A number, or a text in double or single quotes.
fn operand(text: &str) -> Option<Operand> {
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            return Some(Operand::Text(text[1..text.len() - 1].to_string()));
        }
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Operand::Number)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn split_ignore_case<'a>(text: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    let at = text.to_ascii_lowercase().find(separator)?;
    Some((&text[..at], &text[at + separator.len()..]))
}

impl TryFrom<String> for Condition {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Condition> for String {
    fn from(condition: Condition) -> String {
        condition.to_string()
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Less(n) => write!(f, "< {n}"),
            Condition::LessOrEqual(n) => write!(f, "<= {n}"),
            Condition::Greater(n) => write!(f, "> {n}"),
            Condition::GreaterOrEqual(n) => write!(f, ">= {n}"),
            Condition::Between(low, high) => write!(f, "between {low} and {high}"),
            Condition::Equal(operand) => write!(f, "= {operand}"),
            Condition::NotEqual(operand) => write!(f, "!= {operand}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Number(n) => write!(f, "{n}"),
            Operand::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_match() {
        let negative: Condition = "< 0".parse().unwrap();
        assert!(negative.matches(&Value::Number(-0.5)));
        assert!(!negative.matches(&Value::Number(0.0)));
        assert!(!negative.matches(&Value::Null));
        assert!(!negative.matches(&Value::text("-1")));

        let east: Condition = "= \"East\"".parse().unwrap();
        assert!(east.matches(&Value::text("East")));
        assert!(!east.matches(&Value::text("east")));
        let band: Condition = "BETWEEN 100 and 10".parse().unwrap();
        assert_eq!(band, Condition::Between(10.0, 100.0));
        assert!(band.matches(&Value::dual(10.0, "10")));
        assert_eq!(
            ">=1000".parse::<Condition>().unwrap().to_string(),
            ">= 1000"
        );
        assert_eq!(
            "<> 'x'".parse::<Condition>().unwrap(),
            Condition::NotEqual(Operand::Text("x".into()))
        );
    }

    #[test]
    fn bad_rules_name_the_problem() {
        for bad in ["", "~ 3", "< x", "between 1", "= ", "< inf"] {
            let err = bad.parse::<Condition>().unwrap_err();
            assert!(err.to_string().contains("style condition"), "{bad}: {err}");
        }
        assert!("#12345".parse::<Rgb>().is_err());
        assert_eq!("#c00000".parse::<Rgb>().unwrap(), Rgb(0xC00000));
        assert_eq!(Rgb(0xC00000).to_string(), "#C00000");
    }

    #[test]
    fn rules_read_from_toml() {
        #[derive(Deserialize)]
        struct Column {
            style: Vec<StyleRule>,
        }
        let column: Column = toml::from_str(
            r##"style = [{ when = "< 0", color = "#C00000" }, { when = ">= 1000", bold = true }]"##,
        )
        .unwrap();
        assert_eq!(column.style[0].when, Condition::Less(0.0));
        assert_eq!(column.style[0].color, Some(Rgb(0xC00000)));
        assert!(column.style[1].bold);
        let err = toml::from_str::<Column>(r#"style = [{ when = "< 0", color = "red" }]"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("#RRGGBB"), "{err}");
    }
}
