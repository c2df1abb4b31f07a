//! Placeholder templates for subjects, bodies and paths.

use std::path::PathBuf;

use mad_core::placeholder::names_in;
use mad_core::{Error, Placeholders, Result};

use super::names::{sanitize_file_name, sanitize_path_value};

/// Checks that `template` is well formed (balanced braces, no empty placeholder), so a broken
/// template fails when the channel is built instead of at the first delivery.
pub fn check_template(backend: &'static str, option: &str, template: &str) -> Result<()> {
    names_in(template)
        .map(|_| ())
        .map_err(|e| e.with_backend(backend).context(format!("the {option}")))
}

/// Fills a one-line template such as a subject. Line breaks and other control characters in
/// the result (from a recipient's name, say) become spaces, so a value can never add a header.
pub fn render_line(
    backend: &'static str,
    option: &str,
    template: &str,
    placeholders: &Placeholders,
) -> Result<String> {
    let text = fill(backend, option, template, placeholders)?;
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Ok(line.trim().to_string())
}

/// Fills a multi-line template such as a message body. Control characters other than line
/// breaks and tabs are dropped.
pub fn render_text(
    backend: &'static str,
    option: &str,
    template: &str,
    placeholders: &Placeholders,
) -> Result<String> {
    let text = fill(backend, option, template, placeholders)?;
    Ok(text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect())
}

/// Checks a path template such as `{recipient.id}/{run.date}`: well formed, relative, and
/// never climbing with `..`.
pub fn check_path_template(backend: &'static str, option: &str, template: &str) -> Result<()> {
    check_template(backend, option, template)?;

    let mut skeleton = Placeholders::new();
    for name in names_in(template)? {
        skeleton.set(name, "x");
    }
    let shape = skeleton.render(template)?;
    check_absolute(backend, option, template, &shape)?;
    check_climbing(backend, option, template, &shape)
}

/// Fills a path template into a relative path whose every part is a safe file name.
///
/// Placeholder values never add folder levels: a `/` or `\` in a value becomes `_`, so only
/// the template's own separators make folders. Empty parts (an empty value between two
/// separators) are left out. An absolute result or a `..` part is an `InvalidConfig` error.
pub fn render_path(
    backend: &'static str,
    option: &str,
    template: &str,
    placeholders: &Placeholders,
) -> Result<PathBuf> {
    check_path_template(backend, option, template)?;

    let mut safe = Placeholders::new();
    for (name, value) in placeholders.iter() {
        safe.set(name, sanitize_path_value(value));
    }
    let rendered = fill(backend, option, template, &safe)?;
    // Values hold no separators or drive colons, so only `..` (a value `.` beside a literal
    // `.`) can still appear; a leading separator here comes from an empty value.
    check_climbing(backend, option, template, &rendered)?;

    let mut path = PathBuf::new();
    for part in rendered.split(['/', '\\']).map(str::trim) {
        if !part.is_empty() && part != "." {
            path.push(sanitize_file_name(part));
        }
    }
    Ok(path)
}

fn fill(
    backend: &'static str,
    option: &str,
    template: &str,
    placeholders: &Placeholders,
) -> Result<String> {
    placeholders
        .render(template)
        .map_err(|e| e.with_backend(backend).context(format!("the {option}")))
}

fn check_absolute(backend: &'static str, option: &str, template: &str, path: &str) -> Result<()> {
    let first = path.split(['/', '\\']).next().unwrap_or("");
    let bytes = first.as_bytes();
    let has_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with(['/', '\\']) || has_drive {
        return Err(Error::invalid_config(format!(
            "the {option} \"{template}\" gives the absolute path \"{path}\"; write a path \
             relative to the channel's folder"
        ))
        .with_backend(backend));
    }
    Ok(())
}

fn check_climbing(backend: &'static str, option: &str, template: &str, path: &str) -> Result<()> {
    if path.split(['/', '\\']).any(|part| part.trim() == "..") {
        return Err(Error::invalid_config(format!(
            "the {option} \"{template}\" gives \"{path}\", which climbs out of the channel's \
             folder with '..'; write a path below the folder"
        ))
        .with_backend(backend));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::ErrorKind;

    fn values() -> Placeholders {
        Placeholders::new()
            .with("recipient.id", "../../etc")
            .with("recipient.name", "Zoë\r\nBcc: evil@example.com")
            .with("Region", "North/East")
            .with("empty", "")
    }

    #[test]
    fn lines_cannot_break() {
        let line = render_line("test", "subject", "Hi {recipient.name}", &values()).unwrap();
        assert_eq!(line, "Hi Zoë  Bcc: evil@example.com");
    }

    #[test]
    fn text_keeps_line_breaks() {
        let p = Placeholders::new().with("a", "x\u{7}y");
        assert_eq!(render_text("test", "body", "1\n{a}", &p).unwrap(), "1\nxy");
    }

    #[test]
    fn values_do_not_add_levels() {
        let p = values();
        let path = render_path("test", "subfolder", "{recipient.id}/{Region}", &p).unwrap();
        assert_eq!(path, PathBuf::from("_._etc").join("North_East"));
        let path = render_path("test", "subfolder", "a/{empty}/b", &p).unwrap();
        assert_eq!(path, PathBuf::from("a").join("b"));
    }

    #[test]
    fn absolute_and_climbing_templates_are_refused() {
        for template in [
            "/abs/{Region}",
            "\\share",
            "C:/x",
            "../{Region}",
            "a/../../b",
        ] {
            let err = check_path_template("test", "subfolder", template).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{template}");
            assert_eq!(err.backend(), Some("test"));
        }
        let dot = values().with("dot", ".");
        let err = render_path("test", "subfolder", "{dot}./x", &dot).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(render_path("test", "subfolder", "{empty}/x", &dot).is_ok());
    }

    #[test]
    fn broken_templates_name_the_option() {
        let err = check_template("test", "subject", "{open").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("subject"), "{err}");
        let err = render_line("test", "subject", "{nope}", &values()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
