//! File names that are safe on every file system a report may land on.

/// The longest file name, in bytes, that common file systems accept.
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// The name used when nothing usable is left of a file name.
const FALLBACK_STEM: &str = "document";

/// The longest extension kept apart when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Turns a document's file name into one that is safe as a single file name anywhere.
///
/// The result has no path separators, no control or direction-changing characters, no
/// characters Windows refuses (`<>:"|?*`), no `..`, no leading or trailing dots or spaces, is
/// not a Windows device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`, with any
/// extension), is at most [`MAX_FILE_NAME_BYTES`] bytes long with its extension kept, and is
/// never empty. Letters of every script are kept as they are.
pub fn sanitize_file_name(name: &str) -> String {
    let cleaned = collapse_dots(&replace_unsafe_chars(name));
    let (stem, extension) = split_extension(&cleaned);
    let extension = extension.unwrap_or("");

    let mut stem = trim_edges(stem).to_string();
    if stem.is_empty() {
        stem = FALLBACK_STEM.to_string();
    }
    if is_reserved_device_name(&stem) {
        stem.insert(0, '_');
    }

    join_capped(&stem, extension, "")
}

/// The name to use for the `n`-th copy of `name` (`report.pdf` → `report (2).pdf`), still at
/// most [`MAX_FILE_NAME_BYTES`] bytes. `name` must already be sanitised; `n` below 2 returns it
/// unchanged.
pub fn versioned_file_name(name: &str, n: u32) -> String {
    if n < 2 {
        return name.to_string();
    }
    let (stem, extension) = split_extension(name);
    join_capped(stem, extension.unwrap_or(""), &format!(" ({n})"))
}

/// Cleans a placeholder value that becomes part of a path: the value may not add folder
/// levels or climb out of one, so separators become `_` and runs of dots one dot.
pub(crate) fn sanitize_path_value(value: &str) -> String {
    collapse_dots(&replace_unsafe_chars(value))
}

/// `stem` + `suffix` + `.extension`, shortening `stem` (at a character boundary) so the whole
/// fits in [`MAX_FILE_NAME_BYTES`].
fn join_capped(stem: &str, extension: &str, suffix: &str) -> String {
    let dot = usize::from(!extension.is_empty());
    let room = MAX_FILE_NAME_BYTES - extension.len() - dot - suffix.len();
    let mut stem = trim_edges(truncate_at_char(stem, room)).to_string();
    if stem.is_empty() {
        stem = FALLBACK_STEM.to_string();
    }

    let mut name = stem;
    name.push_str(suffix);
    if !extension.is_empty() {
        name.push('.');
        name.push_str(extension);
    }
    name
}

fn replace_unsafe_chars(name: &str) -> String {
    name.chars()
        .map(|c| if is_unsafe_char(c) { '_' } else { c })
        .collect()
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        // Direction marks and overrides can make `txt.exe` read as `exe.txt`.
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        // Zero-width characters and the byte order mark hide in names.
        || matches!(c, '\u{200b}'..='\u{200d}' | '\u{feff}')
}

fn collapse_dots(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !(c == '.' && out.ends_with('.')) {
            out.push(c);
        }
    }
    out
}

/// Splits `name.ext` where `ext` looks like an extension (ASCII letters and digits, short).
fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !ext.is_empty()
                && ext.len() <= MAX_EXTENSION_BYTES
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            (stem, Some(ext))
        }
        _ => (name, None),
    }
}

fn trim_edges(s: &str) -> &str {
    s.trim_matches(|c: char| c == '.' || c.is_whitespace())
}

fn truncate_at_char(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Windows treats these names as devices whatever follows the first dot.
fn is_reserved_device_name(stem: &str) -> bool {
    let base = stem.split('.').next().unwrap_or(stem).trim_end();
    let upper = base.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => true,
        _ => {
            let bytes = upper.as_bytes();
            bytes.len() == 4
                && (upper.starts_with("COM") || upper.starts_with("LPT"))
                && (b'1'..=b'9').contains(&bytes[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_safe(name: &str) {
        assert!(!name.is_empty());
        assert!(name.len() <= MAX_FILE_NAME_BYTES, "{} bytes", name.len());
        assert!(!name.contains(['/', '\\']), "{name}");
        assert!(!name.contains(".."), "{name}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(!name.ends_with(['.', ' ']), "{name}");
        assert!(!name.starts_with('.'), "{name}");
    }

    #[test]
    fn separators_and_climbing_are_removed() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "_._etc_passwd");
        assert_eq!(sanitize_file_name("/abs/path.pdf"), "_abs_path.pdf");
        assert_eq!(sanitize_file_name("a\\b.pdf"), "a_b.pdf");
        assert_eq!(sanitize_file_name(".."), FALLBACK_STEM);
        assert_eq!(sanitize_file_name(".hidden.pdf"), "hidden.pdf");
    }

    #[test]
    fn reserved_names_get_a_prefix() {
        assert_eq!(sanitize_file_name("CON.pdf"), "_CON.pdf");
        assert_eq!(sanitize_file_name("con.tar.gz"), "_con.tar.gz");
        assert_eq!(sanitize_file_name("Lpt9"), "_Lpt9");
        assert_eq!(sanitize_file_name("COM0.pdf"), "COM0.pdf");
        assert_eq!(sanitize_file_name("CONSOLE.pdf"), "CONSOLE.pdf");
    }

    #[test]
    fn control_and_hidden_characters_are_replaced() {
        assert_eq!(sanitize_file_name("a\nb\u{0}c.pdf"), "a_b_c.pdf");
        assert_eq!(sanitize_file_name("bill\u{202e}fdp.exe"), "bill_fdp.exe");
        assert_eq!(sanitize_file_name("report. . "), "report");
    }

    #[test]
    fn empty_names_get_a_stem() {
        assert_eq!(sanitize_file_name(""), "document");
        assert_eq!(sanitize_file_name(".pdf"), "document.pdf");
        assert_eq!(sanitize_file_name("  .  "), "document");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let name = sanitize_file_name(&format!("{}.pdf", "ü".repeat(300)));
        assert_safe(&name);
        assert!(name.ends_with("ü.pdf"));
        let versioned = versioned_file_name(&name, 12);
        assert_safe(&versioned);
        assert!(versioned.ends_with(" (12).pdf"));
    }

    #[test]
    fn unicode_is_kept() {
        let name = "Umsatz Zürich – Łódź 東京.pdf";
        assert_eq!(sanitize_file_name(name), name);
    }

    #[test]
    fn versions_go_before_the_extension() {
        assert_eq!(versioned_file_name("report.pdf", 1), "report.pdf");
        assert_eq!(versioned_file_name("report.pdf", 2), "report (2).pdf");
        assert_eq!(versioned_file_name("report", 3), "report (3)");
    }

    #[test]
    fn every_hostile_name_comes_out_safe() {
        for name in [
            "../../etc/passwd",
            "/abs/path",
            "CON.pdf",
            "a\\b",
            "\u{1}\u{7f}",
            "",
            " ",
            "...",
            "a/../../b.pdf",
            &"x".repeat(300),
            &format!("{}.verylongextension", "y".repeat(300)),
        ] {
            assert_safe(&sanitize_file_name(name));
        }
    }

    #[test]
    fn path_values_cannot_add_levels() {
        assert_eq!(sanitize_path_value("../x/y"), "._x_y");
        assert_eq!(sanitize_path_value("West"), "West");
    }
}
