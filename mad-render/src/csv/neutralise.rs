//! Neutralising cells a spreadsheet would run as formulas.
//!
//! The rule: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//! leading `'`, unless the whole cell is a plain number: an optional leading `-`, then digits
//! with only `.`, `,` and space-like digit-group separators between them, and at most a trailing
//! `%`. Such a cell cannot call a function or reference a cell in any spreadsheet, so a negative
//! amount such as `-12.5` (or `-1,234.50` when numbers are formatted) stays data. Anything else,
//! such as `-2+3`, `-A1` or `-$12.50`, gets the prefix.

/// Whether `cell` needs the `'` prefix under the rule above.
pub fn needs_prefix(cell: &str) -> bool {
    let Some(first) = cell.chars().next() else {
        return false;
    };
    matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r') && !is_plain_number(cell)
}

/// The cell as written: with a leading `'` when [`needs_prefix`] says so.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if needs_prefix(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

fn is_plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix('-').unwrap_or(cell);
    let body = unsigned.strip_suffix('%').unwrap_or(unsigned);
    let mut chars = body.chars();
    let starts_with_digit = chars.next().is_some_and(|c| c.is_ascii_digit());
    let ends_with_digit = body.chars().last().is_some_and(|c| c.is_ascii_digit());
    starts_with_digit
        && ends_with_digit
        && chars.all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\u{a0}' | '\u{202f}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_the_prefix() {
        for cell in [
            "=1+1",
            "=HYPERLINK(\"http://x\")",
            "+41 44 000 00 00",
            "@SUM(A1)",
            "\tcmd",
            "\r=1",
            "-2+3",
            "-A1",
            "-$12.50",
            "-",
            "-1-1",
            "-1e5",
            "-12.5%x",
        ] {
            assert!(needs_prefix(cell), "{cell:?}");
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
    }

    #[test]
    fn plain_numbers_and_ordinary_texts_stay() {
        for cell in [
            "-12.5",
            "-1,234.50",
            "-1.234,50",
            "-1\u{a0}234,5",
            "-12.5%",
            "-0",
            "12",
            "Zürich",
            "a=b",
            "",
        ] {
            assert!(!needs_prefix(cell), "{cell:?}");
            assert_eq!(neutralise(cell), cell);
        }
    }
}
