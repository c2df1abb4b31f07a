//! Measuring and breaking text into lines.
//!
//! Each character is its font's glyph, placed left to right by its advance: there is no
//! kerning and no shaping, so Arabic or Indic text shows unjoined letters and right-to-left
//! text runs left to right.

use std::ops::Range;

use super::font::FontFace;

const ELLIPSIS: char = '…';

/// One line of a wrapped text: its bytes in the text arena and its width in points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub range: Range<usize>,
    pub width: f32,
}

/// The text every mark of a document points into, so cells are stored once and marks stay
/// small.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    text: String,
}

impl Arena {
    /// Stores `s` with control characters other than line breaks turned into spaces.
    pub(crate) fn push(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        if s.chars().any(|c| c.is_control() && c != '\n') {
            self.text.extend(s.chars().map(|c| match c {
                '\n' => '\n',
                c if c.is_control() => ' ',
                c => c,
            }));
        } else {
            self.text.push_str(s);
        }
        start..self.text.len()
    }

    /// Forgets every text.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
    }

    /// Stores the text at `range` of `other` as it is.
    pub(crate) fn copy(&mut self, other: &Arena, range: Range<usize>) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(&other.text[range]);
        start..self.text.len()
    }

    pub(crate) fn get(&self, range: Range<usize>) -> &str {
        &self.text[range]
    }

    /// The widths in points of the widest paragraph and of the widest word of the text at
    /// `range`.
    pub(crate) fn measure(&self, range: Range<usize>, face: &FontFace, size: f32) -> (f32, f32) {
        let (mut widest, mut longest_word) = (0.0_f32, 0.0_f32);
        let (mut line, mut word) = (0.0, 0.0);
        for c in self.text[range].chars() {
            match c {
                '\n' => {
                    widest = widest.max(line);
                    longest_word = longest_word.max(word);
                    (line, word) = (0.0, 0.0);
                }
                ' ' => {
                    longest_word = longest_word.max(word);
                    word = 0.0;
                    line += face.advance(c);
                }
                c => {
                    let advance = face.advance(c);
                    word += advance;
                    line += advance;
                }
            }
        }
        let scale = size / 1000.0;
        (widest.max(line) * scale, longest_word.max(word) * scale)
    }

    /// Breaks the text at `range` into lines no wider than `max` points, appending them to
    /// `out`; at most `max_lines` lines, the last one ending in an ellipsis when text was cut.
    pub(crate) fn wrap(
        &mut self,
        range: Range<usize>,
        face: &FontFace,
        size: f32,
        max: f32,
        max_lines: usize,
        out: &mut Vec<Line>,
    ) {
        let first = out.len();
        wrap(&self.text[range.clone()], range.start, face, size, max, out);
        if out.len() - first > max_lines {
            out.truncate(first + max_lines.max(1));
            let last = out.pop().unwrap_or(Line {
                range: range.start..range.start,
                width: 0.0,
            });
            let cut = self.ellipsize(last, face, size, max);
            out.push(cut);
        }
    }

    /// A copy of `line` shortened to end in an ellipsis within `max` points.
    fn ellipsize(&mut self, line: Line, face: &FontFace, size: f32, max: f32) -> Line {
        let room = max - face.advance(ELLIPSIS) * size / 1000.0;
        let mut kept = self.text[line.range].to_string();
        let mut width = face.width(&kept, size);
        while width > room {
            match kept.pop() {
                Some(c) => width -= face.advance(c) * size / 1000.0,
                None => break,
            }
        }
        let kept = kept.trim_end();
        let width = face.width(kept, size) + face.advance(ELLIPSIS) * size / 1000.0;
        let start = self.text.len();
        self.text.push_str(kept);
        self.text.push(ELLIPSIS);
        Line {
            range: start..self.text.len(),
            width,
        }
    }
}

/// Greedy line breaking at spaces, or after a hyphen, slash or comma inside a word; a word
/// longer than a line is broken between characters, never in front of a closing punctuation
/// mark. Line breaks in the text always break. Each line's trailing spaces are dropped.
fn wrap(text: &str, offset: usize, face: &FontFace, size: f32, max: f32, out: &mut Vec<Line>) {
    // A little tolerance, so a text measured to fit exactly is not broken by rounding.
    let max_units = max * 1000.0 / size + 0.01;
    let space = face.advance(' ');
    let mut paragraph_start = 0;
    for paragraph in text.split('\n') {
        let base = offset + paragraph_start;
        let mut start = 0;
        let mut width = 0.0;
        // The last place to break: where the line would end, its width there, and where the
        // next line would start with the width consumed up to it.
        let mut last_break: Option<(usize, f32, usize, f32)> = None;
        // A break after a hyphen, slash or comma, taken unless a no-break space follows it.
        let mut after_mark: Option<(usize, f32, usize, f32)> = None;
        let mut previous: Option<(usize, f32)> = None;
        for (i, c) in paragraph.char_indices() {
            let advance = face.advance(c);
            if let Some(mark) = after_mark.take()
                && !glues(c)
            {
                last_break = Some(mark);
            }
            if c == ' ' {
                last_break = Some((i, width, i + 1, width + advance));
                previous = Some((i, width));
                width += advance;
                continue;
            }
            if width + advance > max_units && i > start {
                match last_break.filter(|&(end, ..)| end > start) {
                    Some((end, line_width, next, consumed)) => {
                        push_line(paragraph, base, start..end, line_width, space, size, out);
                        start = next;
                        width -= consumed;
                    }
                    None => {
                        // Carry the character before a closing mark over with it, when the
                        // line keeps at least one character.
                        let at = match previous {
                            Some((p, before)) if closes(c) && p > start => (p, before),
                            _ => (i, width),
                        };
                        push_line(paragraph, base, start..at.0, at.1, space, size, out);
                        start = at.0;
                        width -= at.1;
                    }
                }
                last_break = None;
            }
            previous = Some((i, width));
            width += advance;
            if matches!(c, '-' | '/' | ',' | ';') {
                after_mark = Some((i + c.len_utf8(), width, i + c.len_utf8(), width));
            }
        }
        push_line(
            paragraph,
            base,
            start..paragraph.len(),
            width,
            space,
            size,
            out,
        );
        paragraph_start += paragraph.len() + 1;
    }
}

/// Spaces that hold their neighbours together: no line breaks next to them.
fn glues(c: char) -> bool {
    matches!(
        c,
        '\u{a0}' | '\u{202f}' | '\u{2007}' | '\u{2060}' | '\u{feff}'
    )
}

/// Punctuation that closes what comes before it, so a line should not start with it.
fn closes(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '%' | '»' | '”' | '’' | '…'
    )
}

fn push_line(
    paragraph: &str,
    base: usize,
    mut range: Range<usize>,
    mut units: f32,
    space: f32,
    size: f32,
    out: &mut Vec<Line>,
) {
    while range.end > range.start && paragraph.as_bytes()[range.end - 1] == b' ' {
        range.end -= 1;
        units -= space;
    }
    out.push(Line {
        range: base + range.start..base + range.end,
        width: units.max(0.0) * size / 1000.0,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::font::Style;

    fn lines(text: &str, max: f32, max_lines: usize) -> Vec<String> {
        let face = Style::Regular.face().unwrap();
        let mut arena = Arena::default();
        arena.push("prefix");
        let range = arena.push(text);
        let mut out = Vec::new();
        arena.wrap(range, face, 10.0, max, max_lines, &mut out);
        for line in &out {
            let measured = face.width(arena.get(line.range.clone()), 10.0);
            assert!((measured - line.width).abs() < 0.01, "{line:?}");
        }
        out.iter()
            .map(|l| arena.get(l.range.clone()).to_string())
            .collect()
    }

    #[test]
    fn no_break_after_a_hyphen_held_to_the_next_word() {
        // The Superstore names hold no-break spaces: "KT400U2 -\u{a0}Keyboard".
        let out = lines("KeyTronic KT400U2 -\u{a0}Keyboard\u{a0}- Black", 110.0, 10);
        assert!(out.iter().all(|l| !l.starts_with('\u{a0}')), "{out:?}");
        assert!(
            out.iter().any(|l| l.starts_with("-\u{a0}Keyboard")),
            "{out:?}"
        );
    }

    #[test]
    fn breaks_at_spaces() {
        assert_eq!(
            lines("Hon Deluxe Fabric Upholstered Stacking Chairs", 80.0, 10),
            ["Hon Deluxe", "Fabric", "Upholstered", "Stacking Chairs"]
        );
    }

    #[test]
    fn breaks_long_words_and_keeps_line_breaks() {
        let out = lines("Kuala\nWWWWWWWWWWWWWW", 50.0, 10);
        assert_eq!(out[0], "Kuala");
        assert!(out.len() > 2);
        assert_eq!(out[1..].concat(), "WWWWWWWWWWWWWW");
    }

    #[test]
    fn breaks_inside_words_after_hyphens_and_never_before_a_comma() {
        let out = lines("Saint-Jean-de-Luz-sur-Nivelle", 60.0, 10);
        assert!(out.len() > 1, "{out:?}");
        assert!(
            out[..out.len() - 1].iter().all(|l| l.ends_with('-')),
            "{out:?}"
        );
        assert_eq!(out.concat(), "Saint-Jean-de-Luz-sur-Nivelle");

        // A hard break that would put the comma first takes the letter before along.
        let text = "WWWWWWWWW,WW";
        for max in [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0] {
            let out = lines(text, max, 10);
            assert_eq!(out.concat(), text, "{max}");
            assert!(out.iter().all(|l| !l.starts_with(',')), "{max}: {out:?}");
        }
    }

    #[test]
    fn cuts_with_an_ellipsis() {
        let out = lines(&"word ".repeat(200), 60.0, 2);
        assert_eq!(out.len(), 2);
        assert!(out[1].ends_with('…'), "{out:?}");
    }

    #[test]
    fn empty_text_is_one_empty_line() {
        assert_eq!(lines("", 50.0, 3), [""]);
        assert_eq!(lines("x", 0.1, 3), ["x"]);
    }

    #[test]
    fn measures_paragraphs_and_words() {
        let face = Style::Regular.face().unwrap();
        let mut arena = Arena::default();
        let r = arena.push("ab abcd\nabc");
        let (widest, word) = arena.measure(r, face, 10.0);
        assert!((widest - face.width("ab abcd", 10.0)).abs() < 0.01);
        assert!((word - face.width("abcd", 10.0)).abs() < 0.01);
    }

    #[test]
    fn control_characters_become_spaces() {
        let mut arena = Arena::default();
        let r = arena.push("a\tb\u{7}c\nd");
        assert_eq!(arena.get(r), "a b c\nd");
    }
}
