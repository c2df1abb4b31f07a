//! Qlik format codes translated into Excel number format codes.
//!
//! The translation follows the tokens `mad_core::format` understands, so a cell shows in Excel
//! what the other renderers print. Excel applies its own separators and month names, those of
//! the reader's Excel, so only the pattern carries over, not the locale.

use mad_core::NumberFormat;

/// The Excel number format code for a Qlik format code, or `None` when Excel cannot show the
/// code faithfully (an empty code, or a minute token Excel would read as a month).
///
/// - Numbers: `#,##0.00` stays `#,##0.00`; separators written with other characters (a
///   [`NumberFormat`] with `decimal: ','` and `thousands: ' '`) become Excel's `.` and `,`;
///   literal texts such as `€` or `kr` are quoted; `$#,##0.00;($#,##0.00)` keeps both sections.
/// - Dates and times: `YYYY-MM-DD` becomes `yyyy-mm-dd`, `DD.MM.YYYY hh:mm` becomes
///   `dd.mm.yyyy hh:mm`, `WWWW` becomes `dddd`, `TT` becomes `AM/PM`, `fff` after `ss.`
///   becomes `000`.
pub fn excel_number_format(format: &NumberFormat) -> Option<String> {
    if format.code.trim().is_empty() {
        return None;
    }
    if format.is_temporal() {
        excel_date_format(&format.code)
    } else {
        Some(excel_numeric_format(format))
    }
}

fn excel_numeric_format(format: &NumberFormat) -> String {
    let decimal = format.decimal.unwrap_or('.');
    let thousands = format.thousands.unwrap_or(',');
    // Only the first two sections count, as in mad-core's formatter: positive, then negative.
    let sections: Vec<String> = split_sections(&format.code)
        .into_iter()
        .take(2)
        .map(|s| numeric_section(&s, decimal, thousands))
        .collect();
    sections.join(";")
}

fn split_sections(code: &str) -> Vec<String> {
    let mut sections = vec![String::new()];
    let mut in_quote = false;
    for c in code.chars() {
        if c == '"' {
            in_quote = !in_quote;
        }
        if c == ';' && !in_quote {
            sections.push(String::new());
        } else if let Some(last) = sections.last_mut() {
            last.push(c);
        }
    }
    sections
}

/// One section: the digits between the first and last `0`/`#` are the number's body, where
/// the code's separators become Excel's; everything else is literal text.
fn numeric_section(section: &str, decimal: char, thousands: char) -> String {
    let chars: Vec<char> = section.chars().collect();
    let is_digit = |c: &char| matches!(c, '0' | '#');
    let (Some(first), Some(last)) = (
        chars.iter().position(is_digit),
        chars.iter().rposition(is_digit),
    ) else {
        return literal(&chars);
    };

    let mut out = literal(&chars[..first]);
    for &c in &chars[first..=last] {
        match c {
            '0' | '#' => out.push(c),
            c if c == decimal => out.push('.'),
            c if c == thousands => out.push(','),
            c => push_literal(&mut out, &c.to_string()),
        }
    }
    out.push_str(&literal(&chars[last + 1..]));
    out
}

/// Literal text for an Excel code: `%` and a few safe characters stay bare, Qlik's quoted
/// strings stay quoted, anything else is quoted.
fn literal(chars: &[char]) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    let mut pending = String::new();
    for &c in chars {
        if c == '"' {
            in_quote = !in_quote;
            continue;
        }
        if !in_quote && matches!(c, '%' | '$' | '-' | '+' | '(' | ')' | ' ') {
            push_literal(&mut out, &pending);
            pending.clear();
            out.push(c);
        } else {
            pending.push(c);
        }
    }
    push_literal(&mut out, &pending);
    out
}

fn push_literal(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    out.push('"');
    out.push_str(&text.replace('"', "\\\""));
    out.push('"');
}

#[derive(Debug, Clone, PartialEq)]
enum DateToken {
    Year(usize),
    Month(usize),
    Day(usize),
    Weekday(usize),
    Hour(usize),
    Minute,
    Second,
    Fraction(usize),
    AmPm,
    Literal(String),
}

/// Splits a Qlik date code into tokens the way `mad_core::format::format_serial` reads it.
fn date_tokens(code: &str) -> Vec<DateToken> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '"')
                .map_or(chars.len(), |e| i + 1 + e);
            tokens.push(DateToken::Literal(chars[i + 1..end].iter().collect()));
            i = end + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        tokens.push(match c {
            'Y' | 'y' => DateToken::Year(run),
            'M' => DateToken::Month(run),
            'D' | 'd' => DateToken::Day(run),
            'W' | 'w' => DateToken::Weekday(run),
            'h' | 'H' => DateToken::Hour(run),
            'm' => DateToken::Minute,
            's' | 'S' => DateToken::Second,
            'f' | 'F' => DateToken::Fraction(run.min(3)),
            't' | 'T' => DateToken::AmPm,
            _ => DateToken::Literal(std::iter::repeat_n(c, run).collect()),
        });
        i += run;
    }
    tokens
}

fn excel_date_format(code: &str) -> Option<String> {
    let tokens = date_tokens(code);
    let fields: Vec<&DateToken> = tokens
        .iter()
        .filter(|t| !matches!(t, DateToken::Literal(_)))
        .collect();

    let mut out = String::with_capacity(code.len() + 4);
    let mut field: usize = 0;
    for (i, token) in tokens.iter().enumerate() {
        let before = field.checked_sub(1).and_then(|f| fields.get(f)).copied();
        let after = fields.get(field + 1).copied();
        // Excel reads `m`/`mm` as minutes right after an hour or right before seconds, and as
        // a month anywhere else; a code where that reading differs cannot be translated.
        let read_as_minutes =
            matches!(before, Some(DateToken::Hour(_))) || matches!(after, Some(DateToken::Second));
        match token {
            DateToken::Literal(text) => {
                push_date_literal(&mut out, text);
                continue;
            }
            DateToken::Year(n) => out.push_str(if *n >= 4 { "yyyy" } else { "yy" }),
            DateToken::Month(n) if *n <= 2 && read_as_minutes => return None,
            DateToken::Month(n) => out.push_str(&"m".repeat((*n).min(4))),
            DateToken::Minute if !read_as_minutes => return None,
            DateToken::Minute => out.push_str("mm"),
            DateToken::Day(n) => out.push_str(if *n == 1 { "d" } else { "dd" }),
            DateToken::Weekday(n) => out.push_str(if *n >= 4 { "dddd" } else { "ddd" }),
            DateToken::Hour(n) => out.push_str(if *n == 1 { "h" } else { "hh" }),
            DateToken::Second => out.push_str("ss"),
            DateToken::Fraction(n) => {
                let after_point = i > 0 && tokens[i - 1] == DateToken::Literal(".".into());
                if !after_point {
                    return None;
                }
                out.push_str(&"0".repeat(*n));
            }
            DateToken::AmPm => out.push_str("AM/PM"),
        }
        field += 1;
    }
    Some(out)
}

/// Separators Excel shows as they are in a date code; other text is quoted.
fn push_date_literal(out: &mut String, text: &str) {
    if text
        .chars()
        .all(|c| matches!(c, '-' | '/' | ':' | '.' | ',' | ' ' | '(' | ')'))
    {
        out.push_str(text);
    } else {
        push_literal(out, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excel(code: &str) -> Option<String> {
        excel_number_format(&NumberFormat::new(code))
    }

    #[test]
    fn number_codes() {
        assert_eq!(excel("#,##0.00").as_deref(), Some("#,##0.00"));
        assert_eq!(excel("0.0%").as_deref(), Some("0.0%"));
        assert_eq!(
            excel("$#,##0.00;($#,##0.00)").as_deref(),
            Some("$#,##0.00;($#,##0.00)")
        );
        assert_eq!(excel("#,##0 €").as_deref(), Some("#,##0 \"€\""));
        assert_eq!(excel("#,##0\" kr\"").as_deref(), Some("#,##0\" kr\""));
        assert_eq!(excel("000").as_deref(), Some("000"));
        assert_eq!(excel("0;-0;\"zero\"").as_deref(), Some("0;-0"));
        assert_eq!(excel("").as_deref(), None);
    }

    #[test]
    fn code_separators_become_excel_separators() {
        let code = NumberFormat {
            code: "# ##0,00 kr".into(),
            decimal: Some(','),
            thousands: Some(' '),
        };
        assert_eq!(
            excel_number_format(&code).as_deref(),
            Some("#,##0.00 \"kr\"")
        );
    }

    #[test]
    fn date_codes() {
        assert_eq!(excel("YYYY-MM-DD").as_deref(), Some("yyyy-mm-dd"));
        assert_eq!(
            excel("DD.MM.YYYY hh:mm").as_deref(),
            Some("dd.mm.yyyy hh:mm")
        );
        assert_eq!(
            excel("YYYY-MM-DD hh:mm:ss").as_deref(),
            Some("yyyy-mm-dd hh:mm:ss")
        );
        assert_eq!(excel("M/D/YYYY").as_deref(), Some("m/d/yyyy"));
        assert_eq!(excel("D MMM YY").as_deref(), Some("d mmm yy"));
        assert_eq!(excel("WWWW, D. MMMM").as_deref(), Some("dddd, d. mmmm"));
        assert_eq!(excel("h:mm TT").as_deref(), Some("h:mm AM/PM"));
        assert_eq!(excel("hh:mm:ss.fff").as_deref(), Some("hh:mm:ss.000"));
        assert_eq!(excel("mm:ss").as_deref(), Some("mm:ss"));
        assert_eq!(
            excel("YYYY \"week\" WW").as_deref(),
            Some("yyyy \"week\" ddd")
        );
    }

    #[test]
    fn month_and_minute_stay_apart() {
        // Qlik's lower-case `mm` is always minutes; alone, Excel would show the month.
        assert_eq!(excel("DD mm"), None);
        // Qlik's upper-case `MM` is always the month; after an hour Excel would show minutes.
        assert_eq!(excel("hh MM"), None);
        // A spelled-out month is unambiguous anywhere.
        assert_eq!(excel("hh MMM").as_deref(), Some("hh mmm"));
    }
}
