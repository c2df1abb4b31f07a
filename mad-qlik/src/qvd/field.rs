//! A field's kind and number format, from the tags and `NumberFormat` Qlik stored with it.

use mad_core::format::parse_iso_datetime;
use mad_core::{Field, FieldKind, NumberFormat, Value};

use super::header::{FieldHeader, NumberFormatHeader, Tags};

/// The field as the model describes it, judged from its header and its symbols.
pub(crate) fn describe(header: &FieldHeader, symbols: &[Value]) -> Field {
    let declared = number_format(&header.number_format);
    let kind = declared_kind(&header.tags, &header.number_format.kind)
        .unwrap_or_else(|| inferred_kind(symbols));

    // Qlik tags dates loaded from text without a date format only as integers; the symbols
    // still carry the date as their text, which tells the kind apart.
    let (kind, format) = match (kind, declared) {
        (FieldKind::Integer | FieldKind::Number, None) => match iso_dates(symbols) {
            Some((kind, code)) => (kind, Some(NumberFormat::new(code))),
            None => (kind, None),
        },
        (kind, format) => (kind, format),
    };

    Field {
        name: header.field_name.clone(),
        kind,
        format,
    }
}

/// The kind the tags or the format type state, if they state one.
fn declared_kind(tags: &Tags, format_type: &str) -> Option<FieldKind> {
    // Qlik tags a date with both `$date` and `$timestamp`, so the narrower tag goes first.
    if tags.has("$date") {
        return Some(FieldKind::Date);
    }
    if tags.has("$timestamp") {
        return Some(FieldKind::Timestamp);
    }
    match format_type {
        "DATE" => return Some(FieldKind::Date),
        // The model has no time-of-day kind; a time is a serial fraction like a timestamp's.
        "TIMESTAMP" | "TIME" => return Some(FieldKind::Timestamp),
        _ => {}
    }
    if tags.has("$integer") {
        return Some(FieldKind::Integer);
    }
    if tags.has("$numeric") {
        return Some(FieldKind::Number);
    }
    if tags.has("$text") {
        return Some(FieldKind::Text);
    }
    match format_type {
        "INTEGER" => Some(FieldKind::Integer),
        "REAL" | "FIX" | "MONEY" | "INTERVAL" => Some(FieldKind::Number),
        "ASCII" => Some(FieldKind::Text),
        _ => None,
    }
}

/// The kind the values show when the header does not say: empty texts (what Qlik keeps for
/// empty cells of a text file) do not make a numeric field mixed.
fn inferred_kind(symbols: &[Value]) -> FieldKind {
    let (mut numbers, mut integers, mut texts) = (0usize, 0usize, 0usize);
    for symbol in symbols {
        match symbol {
            Value::Null => {}
            Value::Text(t) if t.is_empty() => {}
            Value::Text(_) => texts += 1,
            Value::Number(n) | Value::Dual(n, _) => {
                numbers += 1;
                integers += usize::from(n.fract() == 0.0);
            }
        }
    }
    match (numbers, texts) {
        (0, _) => FieldKind::Text,
        (_, 0) if integers == numbers => FieldKind::Integer,
        (_, 0) => FieldKind::Number,
        _ => FieldKind::Mixed,
    }
}

/// Whether every symbol is a dual whose text is the ISO date (or timestamp) of its number,
/// empty texts aside; returns the kind and the code that shows the numbers as those texts.
fn iso_dates(symbols: &[Value]) -> Option<(FieldKind, &'static str)> {
    let mut any = false;
    let mut with_time = false;
    let mut with_seconds = false;
    for symbol in symbols {
        let (number, text) = match symbol {
            Value::Dual(number, text) => (number, text),
            Value::Null => continue,
            Value::Text(text) if text.is_empty() => continue,
            _ => return None,
        };
        let (serial, has_time) = parse_iso_datetime(text)?;
        if (serial - number).abs() > 1e-6 {
            return None;
        }
        any = true;
        with_time |= has_time;
        with_seconds |= text.len() > 16;
    }
    match (any, with_time, with_seconds) {
        (false, _, _) => None,
        (true, false, _) => Some((FieldKind::Date, "YYYY-MM-DD")),
        (true, true, false) => Some((FieldKind::Timestamp, "YYYY-MM-DD hh:mm")),
        (true, true, true) => Some((FieldKind::Timestamp, "YYYY-MM-DD hh:mm:ss")),
    }
}

/// The format code Qlik stored, with the separators it is written with.
fn number_format(header: &NumberFormatHeader) -> Option<NumberFormat> {
    if header.fmt.is_empty() {
        return None;
    }
    Some(NumberFormat {
        code: header.fmt.clone(),
        decimal: single_char(&header.dec),
        thousands: single_char(&header.thou),
    })
}

fn single_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Tags {
        Tags {
            tags: list.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn tags_decide_before_the_format_type() {
        let date = tags(&["$numeric", "$integer", "$timestamp", "$date"]);
        assert_eq!(declared_kind(&date, "UNKNOWN"), Some(FieldKind::Date));
        let stamp = tags(&["$numeric", "$timestamp"]);
        assert_eq!(
            declared_kind(&stamp, "TIMESTAMP"),
            Some(FieldKind::Timestamp)
        );
        assert_eq!(
            declared_kind(&tags(&["$numeric"]), "DATE"),
            Some(FieldKind::Date)
        );
        assert_eq!(
            declared_kind(&tags(&["$numeric"]), "MONEY"),
            Some(FieldKind::Number)
        );
        assert_eq!(
            declared_kind(&tags(&["$ascii", "$text"]), "UNKNOWN"),
            Some(FieldKind::Text)
        );
        assert_eq!(
            declared_kind(&tags(&[]), "INTEGER"),
            Some(FieldKind::Integer)
        );
        assert_eq!(declared_kind(&tags(&[]), "FIX"), Some(FieldKind::Number));
        assert_eq!(declared_kind(&tags(&[]), "UNKNOWN"), None);
    }

    #[test]
    fn values_decide_when_the_header_does_not() {
        let ints = [Value::dual(1.0, "1"), Value::text(""), Value::Null];
        assert_eq!(inferred_kind(&ints), FieldKind::Integer);
        let mixed = [Value::dual(1.0, "1"), Value::text("x")];
        assert_eq!(inferred_kind(&mixed), FieldKind::Mixed);
        assert_eq!(inferred_kind(&[Value::Number(0.5)]), FieldKind::Number);
        assert_eq!(inferred_kind(&[]), FieldKind::Text);
    }

    #[test]
    fn iso_date_duals_are_dates() {
        let dates = [
            Value::dual(-52593.0, "1756-01-01"),
            Value::Null,
            Value::text(""),
        ];
        assert_eq!(iso_dates(&dates), Some((FieldKind::Date, "YYYY-MM-DD")));
        let stamps = [Value::dual(45000.5, "2023-03-15 12:00:00")];
        assert_eq!(
            iso_dates(&stamps),
            Some((FieldKind::Timestamp, "YYYY-MM-DD hh:mm:ss"))
        );
        assert_eq!(iso_dates(&[Value::dual(1.0, "1756-01-01")]), None);
        assert_eq!(iso_dates(&[Value::dual(1.0, "1")]), None);
    }

    #[test]
    fn format_keeps_code_and_separators() {
        let header = NumberFormatHeader {
            kind: "MONEY".into(),
            fmt: "# ##0,00 kr".into(),
            dec: ",".into(),
            thou: " ".into(),
        };
        let format = number_format(&header).unwrap();
        assert_eq!(format.code, "# ##0,00 kr");
        assert_eq!((format.decimal, format.thousands), (Some(','), Some(' ')));
        assert_eq!(number_format(&NumberFormatHeader::default()), None);
    }
}
