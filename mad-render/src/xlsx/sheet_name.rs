//! Sheet names Excel accepts.

/// Excel's limit, counted in UTF-16 code units.
const MAX_UTF16_UNITS: usize = 31;

/// A sheet name Excel accepts, made from any text (usually the report title).
///
/// `[ ] : * ? / \` and control characters become spaces, runs of spaces collapse, leading and
/// trailing apostrophes go, the name is cut to 31 UTF-16 units (never inside a character),
/// `History` (reserved by Excel) gets a suffix, and an empty result becomes `Report`.
pub fn sanitise_sheet_name(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len().min(64));
    for c in name.chars() {
        let forbidden = matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') || c.is_control();
        let c = if forbidden { ' ' } else { c };
        if c.is_whitespace() && (cleaned.is_empty() || cleaned.ends_with(' ')) {
            continue;
        }
        cleaned.push(if c.is_whitespace() { ' ' } else { c });
    }

    let mut name = String::with_capacity(cleaned.len());
    let mut units = 0;
    for c in cleaned
        .trim_matches(|c: char| c == '\'' || c == ' ')
        .chars()
    {
        units += c.len_utf16();
        if units > MAX_UTF16_UNITS {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end_matches(['\'', ' ']).to_string();

    if name.is_empty() {
        "Report".to_string()
    } else if name.eq_ignore_ascii_case("history") {
        format!("{name} (report)")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16_len(s: &str) -> usize {
        s.chars().map(char::len_utf16).sum()
    }

    #[test]
    fn forbidden_characters_go() {
        assert_eq!(
            sanitise_sheet_name("Sales [2016]: A/B\\C*?"),
            "Sales 2016 A B C"
        );
        assert_eq!(sanitise_sheet_name("'quoted'"), "quoted");
        assert_eq!(sanitise_sheet_name("line\nbreak\ttab"), "line break tab");
        assert_eq!(sanitise_sheet_name(" ?:* "), "Report");
        assert_eq!(sanitise_sheet_name("History"), "History (report)");
    }

    #[test]
    fn long_names_are_cut_on_character_boundaries() {
        let long = "Umsatz für Zürich und Łódź im Jahr 2016 nach Monat";
        let cut = sanitise_sheet_name(long);
        assert!(utf16_len(&cut) <= 31, "{cut}");
        assert!(long.starts_with(&cut));

        let emoji = "📊".repeat(20); // two UTF-16 units each
        let cut = sanitise_sheet_name(&emoji);
        assert_eq!(cut.chars().count(), 15);
        assert_eq!(utf16_len(&cut), 30);
    }
}
