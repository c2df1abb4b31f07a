//! Placeholders such as `{recipient.name}`, `{Region}` or `{run.date}` in titles, file names,
//! subjects and bodies.
//!
//! `{name}` is replaced by the value of `name`; `{{` and `}}` write literal braces. An unknown
//! name is an error listing the names that exist, so a typo never ships a report titled
//! "Sales for {recipent.name}".

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The values placeholders resolve to for one recipient, report and run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Placeholders {
    values: BTreeMap<String, String>,
}

impl Placeholders {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.into(), value.into());
        self
    }

    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Fills a template, or names the first unknown placeholder.
    pub fn render(&self, template: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len() + 16);
        for piece in parse(template)? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Name(name) => match self.values.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(Error::invalid_config(format!(
                            "unknown placeholder {{{name}}} in \"{template}\" (known: {})",
                            self.values.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                },
            }
        }
        Ok(out)
    }
}

/// The placeholder names a template uses, in order of appearance.
pub fn names_in(template: &str) -> Result<Vec<&str>> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Name(n) => Some(n),
            Piece::Text(_) => None,
        })
        .collect())
}

/// The literal text of a template, without its placeholders, piece by piece.
pub fn literals_in(template: &str) -> Result<Vec<&str>> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t),
            Piece::Name(_) => None,
        })
        .collect())
}

enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let (head, tail) = rest.split_at(i);
        if !head.is_empty() {
            pieces.push(Piece::Text(head));
        }
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(Error::invalid_config(format!(
                "unmatched '}}' in \"{template}\" (write '}}}}' for a literal brace)"
            )));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(Error::invalid_config(format!(
                    "unclosed '{{' in \"{template}\" (write '{{{{' for a literal brace)"
                )));
            };
            let name = tail[1..end].trim();
            if name.is_empty() {
                return Err(Error::invalid_config(format!(
                    "empty placeholder in \"{template}\""
                )));
            }
            pieces.push(Piece::Name(name));
            rest = &tail[end + 1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_known_names() {
        let p = Placeholders::new()
            .with("recipient.name", "Zoë")
            .with("Region", "West");
        assert_eq!(
            p.render("Sales {Region} for {recipient.name} {{x}}")
                .unwrap(),
            "Sales West for Zoë {x}"
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let p = Placeholders::new().with("recipient.name", "Zoë");
        let err = p.render("{recipent.name}").unwrap_err();
        assert!(err.to_string().contains("recipent.name"));
        assert!(p.render("{open").is_err());
        assert!(p.render("close}").is_err());
    }

    #[test]
    fn lists_names() {
        assert_eq!(names_in("{a}-{b}{{c}}").unwrap(), vec!["a", "b"]);
    }
}
