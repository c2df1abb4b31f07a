//! Moving cell references in formulas when a template's table marker row grows into the
//! report's rows.
//!
//! The marker row becomes the first data row and `inserted` rows are added below it. A
//! reference to a row below the marker moves down with its row. A range that ends on the
//! marker row and starts on or above it grows to the last data row, so `SUM(B5:B5)` under a
//! marker in row 5 sums every data row. References to other sheets, whole columns and the
//! texts inside string literals stay as they are.

/// Rows added to one sheet: 1-based row numbers, as in formulas.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowInsert<'a> {
    pub sheet: &'a str,
    pub marker_row: u32,
    /// The number of data rows (the marker row counts as the first).
    pub data_rows: u32,
    /// Rows inserted below the marker row.
    pub inserted: u32,
}

impl RowInsert<'_> {
    fn moved(&self, row: u32) -> u32 {
        if row > self.marker_row {
            row + self.inserted
        } else {
            row
        }
    }

    /// The rows of a range after the insert.
    fn range(&self, first: u32, last: u32) -> (u32, u32) {
        let grows = last == self.marker_row && first <= last && self.data_rows > 0;
        let last = if grows {
            self.marker_row + self.data_rows - 1
        } else {
            self.moved(last)
        };
        (self.moved(first), last)
    }
}

/// `formula` (without its leading `=`), written on sheet `own_sheet`, after the insert.
pub(super) fn rewrite(formula: &str, own_sheet: &str, insert: &RowInsert<'_>) -> String {
    let bytes = formula.as_bytes();
    let mut out = String::with_capacity(formula.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            let end = string_end(bytes, i);
            out.push_str(&formula[i..end]);
            i = end;
            continue;
        }
        let at_boundary = i == 0 || !is_name_byte(bytes[i - 1]);
        if at_boundary && let Some((reference, end)) = parse_reference(formula, i) {
            let sheet = reference.sheet.unwrap_or(own_sheet);
            if sheet.eq_ignore_ascii_case(insert.sheet) {
                out.push_str(&reference.render(insert));
            } else {
                out.push_str(&formula[i..end]);
            }
            i = end;
            continue;
        }
        let next = next_char_boundary(formula, i);
        out.push_str(&formula[i..next]);
        i = next;
    }
    out
}

/// A chart series reference after the insert. A series of one cell on the marker row is read
/// as a one-row range, so it grows with the rows like `$B$5:$B$5` does.
pub(super) fn rewrite_series(reference: &str, own_sheet: &str, insert: &RowInsert<'_>) -> String {
    match parse_reference(reference, 0) {
        Some((single, end)) if end == reference.len() && single.end.is_none() => {
            let cell = &reference[single.prefix.len()..];
            rewrite(&format!("{reference}:{cell}"), own_sheet, insert)
        }
        _ => rewrite(reference, own_sheet, insert),
    }
}

fn next_char_boundary(s: &str, i: usize) -> usize {
    (i + 1..=s.len())
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(s.len())
}

/// The end of the string literal starting at `start` (`""` is an escaped quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'\\') || b >= 0x80
}

/// A cell, a cell range or a row range, with the text of its sheet prefix.
#[derive(Debug)]
struct Reference<'a> {
    prefix: &'a str,
    sheet: Option<&'a str>,
    start: Cell<'a>,
    end: Option<Cell<'a>>,
}

/// One end of a reference: its column text (with `$`, possibly empty for row ranges) and row.
#[derive(Debug, Clone, Copy)]
struct Cell<'a> {
    column: &'a str,
    row_absolute: bool,
    row: u32,
}

impl Reference<'_> {
    fn render(&self, insert: &RowInsert<'_>) -> String {
        let (first, last) = match &self.end {
            Some(end) => {
                let (a, b) = insert.range(self.start.row, end.row);
                (a, Some((end, b)))
            }
            None => (insert.moved(self.start.row), None),
        };
        let mut out = String::from(self.prefix);
        self.start.render_into(&mut out, first);
        if let Some((end, row)) = last {
            out.push(':');
            end.render_into(&mut out, row);
        }
        out
    }
}

impl Cell<'_> {
    fn render_into(&self, out: &mut String, row: u32) {
        out.push_str(self.column);
        if self.row_absolute {
            out.push('$');
        }
        out.push_str(&row.to_string());
    }
}

/// Parses a reference starting at byte `i`: `[sheet!]cell[:cell]` or `[sheet!]row:row`.
fn parse_reference(formula: &str, i: usize) -> Option<(Reference<'_>, usize)> {
    let (sheet, body) = match parse_sheet(formula, i) {
        Some((sheet, after)) => (Some(sheet), after),
        None => (None, i),
    };
    let (start, mut end_at) = parse_cell(formula, body)?;
    let mut end = None;
    if formula.as_bytes().get(end_at) == Some(&b':')
        && let Some((cell, after)) = parse_cell(formula, end_at + 1)
        && cell.column.is_empty() == start.column.is_empty()
    {
        end = Some(cell);
        end_at = after;
    }
    if start.column.is_empty() && end.is_none() {
        return None; // a bare number, not a row range
    }
    let follows = formula.as_bytes().get(end_at).copied();
    if follows.is_some_and(|b| is_name_byte(b) || b == b'(' || b == b'!') {
        return None; // part of a name or a function call
    }
    let reference = Reference {
        prefix: &formula[i..body],
        sheet,
        start,
        end,
    };
    Some((reference, end_at))
}

/// A sheet prefix at `i`: `Name!` or `'Quoted name'!`; returns the name and the byte after `!`.
fn parse_sheet(formula: &str, i: usize) -> Option<(&str, usize)> {
    let bytes = formula.as_bytes();
    if bytes[i] == b'\'' {
        let mut j = i + 1;
        while j < bytes.len() {
            if bytes[j] == b'\'' {
                if bytes.get(j + 1) == Some(&b'\'') {
                    j += 2;
                    continue;
                }
                return (bytes.get(j + 1) == Some(&b'!')).then(|| (&formula[i + 1..j], j + 2));
            }
            j += 1;
        }
        return None;
    }
    let len = formula[i..]
        .bytes()
        .take_while(|&b| is_name_byte(b))
        .count();
    (len > 0 && bytes.get(i + len) == Some(&b'!')).then(|| (&formula[i..i + len], i + len + 1))
}

/// `$A$1`, `A1`, `$5` or `5` at `i`; returns the cell and the byte after it.
fn parse_cell(formula: &str, i: usize) -> Option<(Cell<'_>, usize)> {
    let bytes = formula.as_bytes();
    let dollar = |at: usize| bytes.get(at) == Some(&b'$');
    let count = |from: usize, keep: fn(&u8) -> bool| {
        bytes
            .get(from..)
            .map_or(0, |rest| rest.iter().take_while(|b| keep(b)).count())
    };

    let column_dollar = usize::from(dollar(i));
    let letters = count(i + column_dollar, u8::is_ascii_alphabetic);
    if letters > 3 {
        return None;
    }
    let column_end = if letters == 0 {
        i
    } else {
        i + column_dollar + letters
    };
    let row_absolute = dollar(column_end);
    let digits_at = column_end + usize::from(row_absolute);
    let digits = count(digits_at, u8::is_ascii_digit);
    if digits == 0 || digits > 7 {
        return None;
    }

    let row: u32 = formula[digits_at..digits_at + digits].parse().ok()?;
    let cell = Cell {
        column: &formula[i..column_end],
        row_absolute,
        row,
    };
    Some((cell, digits_at + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert() -> RowInsert<'static> {
        RowInsert {
            sheet: "Sales",
            marker_row: 5,
            data_rows: 4,
            inserted: 4, // three more data rows and a totals row
        }
    }

    fn on_sales(formula: &str) -> String {
        rewrite(formula, "Sales", &insert())
    }

    #[test]
    fn ranges_ending_on_the_marker_grow_to_the_last_data_row() {
        assert_eq!(on_sales("SUM(B5:B5)"), "SUM(B5:B8)");
        assert_eq!(on_sales("SUM($B$4:$B$5)*2"), "SUM($B$4:$B$8)*2");
        assert_eq!(on_sales("B5+B6"), "B5+B10");
        assert_eq!(on_sales("SUM(B6:C7)"), "SUM(B10:C11)");
        assert_eq!(on_sales("SUM(5:5)"), "SUM(5:8)");
        assert_eq!(on_sales("SUM(B:B)"), "SUM(B:B)");
        assert_eq!(on_sales("A1&\"B6\""), "A1&\"B6\"");
    }

    #[test]
    fn only_references_to_the_grown_sheet_move() {
        let rewritten = rewrite("SUM(Sales!B5:B5)+Other!B9+B9", "Other", &insert());
        assert_eq!(rewritten, "SUM(Sales!B5:B8)+Other!B9+B9");
        let quoted = rewrite("'Sales'!$B$6+'O''Neil'!B6", "Other", &insert());
        assert_eq!(quoted, "'Sales'!$B$10+'O''Neil'!B6");
        assert_eq!(
            rewrite("sales!B6", "Other", &insert()),
            "sales!B10",
            "sheet names compare without case"
        );
    }

    #[test]
    fn a_one_cell_series_grows_like_a_range() {
        assert_eq!(
            rewrite_series("Sales!$B$5", "Other", &insert()),
            "Sales!$B$5:$B$8"
        );
        assert_eq!(
            rewrite_series("Sales!$B$9", "Other", &insert()),
            "Sales!$B$13:$B$13"
        );
        assert_eq!(
            rewrite_series("Sales!$B$5:$C$5", "Other", &insert()),
            "Sales!$B$5:$C$8"
        );
    }

    #[test]
    fn names_and_functions_are_not_references() {
        assert_eq!(on_sales("LOG10(B6)"), "LOG10(B10)");
        assert_eq!(on_sales("Total2019+ATAN2(1,2)"), "Total2019+ATAN2(1,2)");
        assert_eq!(on_sales("ROUND(B6,2)+7"), "ROUND(B10,2)+7");
        assert_eq!(on_sales("\"Zürich\"&B6"), "\"Zürich\"&B10");
    }
}
