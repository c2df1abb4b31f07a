//! Conditional cell styles: a colour, a background or bold type for the cells whose value meets
//! a condition, such as negative amounts in red.
//!
//! ```toml
//! columns = [
//!   { field = "Profit", style = [{ when = "< 0", color = "#c00000" }] },
//! ]
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::Value;

/// One conditional style of a column, as written in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalStyle {
    /// The condition: a comparison with a number (`< 0`, `>= 1000`, `= 0`, `!= 0`) or an
    /// equality with a text (`= "Closed"`, `!= "Open"`).
    pub when: String,
    /// The text colour, `#rrggbb` or `#rgb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// The cell's background colour, `#rrggbb` or `#rgb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bold: bool,
}

impl ConditionalStyle {
    /// A style for the cells meeting `when`; set its look with the `with_*` methods.
    pub fn new(when: impl Into<String>) -> Self {
        ConditionalStyle {
            when: when.into(),
            color: None,
            background: None,
            bold: false,
        }
    }

    pub fn with_color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }

    pub fn with_background(mut self, color: impl Into<String>) -> Self {
        self.background = Some(color.into());
        self
    }

    pub fn with_bold(mut self) -> Self {
        self.bold = true;
        self
    }

    /// The parsed rule, or an `InvalidConfig` error saying how to write it.
    pub fn resolve(&self) -> Result<StyleRule> {
        let condition = Condition::parse(&self.when)?;
        let color = self.color.as_deref().map(Color::parse).transpose()?;
        let background = self.background.as_deref().map(Color::parse).transpose()?;
        if color.is_none() && background.is_none() && !self.bold {
            return Err(Error::invalid_config(format!(
                "the style for \"{}\" changes nothing; give it a color, a background or bold = true",
                self.when
            )));
        }
        Ok(StyleRule {
            condition,
            style: CellStyle {
                color,
                background,
                bold: self.bold,
            },
        })
    }
}

/// A colour as red, green and blue bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Color {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Color { r, g, b }
    }

    /// Reads `#rrggbb` or `#rgb`.
    pub fn parse(text: &str) -> Result<Color> {
        let bad = || {
            Error::invalid_config(format!(
                "\"{text}\" is not a colour; write it as #rrggbb (such as #c00000) or #rgb"
            ))
        };
        let hex = text.trim().strip_prefix('#').ok_or_else(bad)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).map_err(|_| bad());
        match hex.len() {
            3 => Ok(Color::rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
            6 => {
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
                Ok(Color::rgb(byte(0)?, byte(2)?, byte(4)?))
            }
            _ => Err(bad()),
        }
    }

    /// The colour's components between 0 and 1.
    pub fn unit(self) -> [f32; 3] {
        [self.r, self.g, self.b].map(|c| f32::from(c) / 255.0)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// How a cell looks when a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CellStyle {
    pub color: Option<Color>,
    pub background: Option<Color>,
    pub bold: bool,
}

/// A parsed conditional style.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleRule {
    pub condition: Condition,
    pub style: CellStyle,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

/// When a conditional style applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The value's number compared with a number; texts and nulls never match.
    Number(Comparison, f64),
    /// The value's shown text equal (or not) to a text.
    Text { equal: bool, text: String },
}

impl Condition {
    /// Reads `< 0`, `>= 1000`, `= 0`, `!= 0`, `= "Closed"` or `<> "Open"`.
    pub fn parse(when: &str) -> Result<Condition> {
        let trimmed = when.trim();
        let (op, rest) = [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("!=", Comparison::NotEqual),
            ("<>", Comparison::NotEqual),
            ("==", Comparison::Equal),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
            ("=", Comparison::Equal),
        ]
        .into_iter()
        .find_map(|(token, op)| trimmed.strip_prefix(token).map(|rest| (op, rest.trim())))
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "the style condition \"{when}\" has no comparison; write it as \"< 0\", \
                 \">= 1000\", \"= 0\" or \"= \\\"Closed\\\"\""
            ))
        })?;
        if let Ok(number) = rest.parse::<f64>()
            && number.is_finite()
        {
            return Ok(Condition::Number(op, number));
        }
        let quoted = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
        match (quoted, op) {
            (Some(text), Comparison::Equal | Comparison::NotEqual) => Ok(Condition::Text {
                equal: op == Comparison::Equal,
                text: text.to_string(),
            }),
            _ => Err(Error::invalid_config(format!(
                "the style condition \"{when}\" compares with neither a number nor a quoted \
                 text; texts can only be compared with = or !="
            ))),
        }
    }

    /// Whether `value` meets the condition.
    pub fn matches(&self, value: &Value) -> bool {
        match self {
            Condition::Number(op, limit) => {
                value.as_number().is_some_and(|n| compare(n, *op, *limit))
            }
            Condition::Text { equal, text } => {
                let shown = value.as_text().unwrap_or_default();
                (shown == text) == *equal && !value.is_null()
            }
        }
    }

    /// Whether a total or another bare number meets the condition.
    pub fn matches_number(&self, number: f64) -> bool {
        match self {
            Condition::Number(op, limit) => compare(number, *op, *limit),
            Condition::Text { .. } => false,
        }
    }
}

fn compare(n: f64, op: Comparison, limit: f64) -> bool {
    match op {
        Comparison::Less => n < limit,
        Comparison::LessOrEqual => n <= limit,
        Comparison::Greater => n > limit,
        Comparison::GreaterOrEqual => n >= limit,
        Comparison::Equal => n == limit,
        Comparison::NotEqual => n != limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_match() {
        let negative = Condition::parse("< 0").unwrap();
        assert!(negative.matches(&Value::Number(-0.5)));
        assert!(!negative.matches(&Value::Number(0.0)));
        assert!(!negative.matches(&Value::text("-1")));
        assert!(negative.matches_number(-3.0));
        assert!(
            Condition::parse(">=1e3")
                .unwrap()
                .matches(&Value::dual(1000.0, "1,000"))
        );
        let closed = Condition::parse("= \"Closed\"").unwrap();
        assert!(closed.matches(&Value::text("Closed")));
        assert!(!closed.matches(&Value::text("Open")));
        let open = Condition::parse("<> 'Closed'").unwrap();
        assert!(open.matches(&Value::text("Open")));
        assert!(!open.matches(&Value::Null));
    }

    #[test]
    fn bad_conditions_and_colours_say_how_to_write_them() {
        for bad in ["0", "< many", "> \"x\"", ""] {
            let err = Condition::parse(bad).unwrap_err();
            assert!(err.message().contains("condition"), "{bad}: {err}");
        }
        assert_eq!(Color::parse("#c00000").unwrap(), Color::rgb(0xc0, 0, 0));
        assert_eq!(Color::parse("#f00").unwrap(), Color::rgb(255, 0, 0));
        assert_eq!(Color::rgb(192, 0, 0).to_string(), "#c00000");
        for bad in ["red", "#12345", "#ggg", "#ééé"] {
            assert!(Color::parse(bad).is_err(), "{bad}");
        }
        let nothing = ConditionalStyle::new("< 0").resolve().unwrap_err();
        assert!(nothing.message().contains("changes nothing"));
    }
}
