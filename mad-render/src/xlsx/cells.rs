//! What the sheet writer needs from a worksheet, so one layout walk fills either the
//! streaming writer or a rust_xlsxwriter worksheet (which charts and conditional formats need).

use mad_core::Result;
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Formula, Worksheet};

use super::print::PrintSetup;
use super::xlsx_error;

/// A line above or below a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) enum Line {
    #[default]
    None,
    Thin,
    Double,
}

/// How a cell looks: the few properties reports use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct CellFormat {
    pub bold: bool,
    pub italic: bool,
    /// In points; the default font size (11) when `None`.
    pub font_size: Option<u8>,
    pub font_color: Option<u32>,
    pub fill: Option<u32>,
    pub border_top: Line,
    pub border_bottom: Line,
    pub align_right: bool,
    pub indent: u8,
    /// Long texts wrap within the cell's width.
    pub wrap: bool,
    /// An Excel number format code.
    pub num_format: Option<String>,
}

/// A format registered with a sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StyleId(pub usize);

/// A worksheet filled strictly row by row, left to right.
pub(crate) trait SheetTarget {
    fn add_format(&mut self, format: &CellFormat) -> StyleId;
    fn set_name(&mut self, name: &str) -> Result<()>;
    /// A column's width in characters of the default font; before any cell is written.
    fn set_column_width(&mut self, col: u16, width: f64) -> Result<()>;
    /// Keeps the first `rows` rows in view while scrolling; before any cell is written.
    fn freeze_rows(&mut self, rows: u32) -> Result<()>;
    fn string(&mut self, row: u32, col: u16, text: &str, style: Option<StyleId>) -> Result<()>;
    fn number(&mut self, row: u32, col: u16, number: f64, style: Option<StyleId>) -> Result<()>;
    /// A formula with the result it is known to have, shown until the reader recalculates.
    fn formula(
        &mut self,
        row: u32,
        col: u16,
        formula: &str,
        result: f64,
        style: StyleId,
    ) -> Result<()>;
    fn blank(&mut self, row: u32, col: u16, style: StyleId) -> Result<()>;
    fn autofilter(
        &mut self,
        first_row: u32,
        first_col: u16,
        last_row: u32,
        last_col: u16,
    ) -> Result<()>;
    /// Paper, orientation, margins, header and footer.
    fn print_setup(&mut self, setup: &PrintSetup) -> Result<()>;
    /// Starts a new printed page at each of `rows` (ascending, none the first row).
    fn row_breaks(&mut self, rows: &[u32]) -> Result<()>;
}

/// A rust_xlsxwriter worksheet as a [`SheetTarget`].
pub(crate) struct WorksheetTarget<'a> {
    pub worksheet: &'a mut Worksheet,
    formats: Vec<Format>,
}

impl<'a> WorksheetTarget<'a> {
    pub(crate) fn new(worksheet: &'a mut Worksheet) -> Self {
        WorksheetTarget {
            worksheet,
            formats: Vec::new(),
        }
    }
}

fn border(line: Line) -> FormatBorder {
    match line {
        Line::None => FormatBorder::None,
        Line::Thin => FormatBorder::Thin,
        Line::Double => FormatBorder::Double,
    }
}

fn to_format(f: &CellFormat) -> Format {
    let mut format = Format::new();
    if f.bold {
        format = format.set_bold();
    }
    if f.italic {
        format = format.set_italic();
    }
    if let Some(size) = f.font_size {
        format = format.set_font_size(size);
    }
    if let Some(color) = f.font_color {
        format = format.set_font_color(Color::RGB(color));
    }
    if let Some(fill) = f.fill {
        format = format.set_background_color(Color::RGB(fill));
    }
    if f.border_top != Line::None {
        format = format.set_border_top(border(f.border_top));
    }
    if f.border_bottom != Line::None {
        format = format.set_border_bottom(border(f.border_bottom));
    }
    if f.align_right {
        format = format.set_align(FormatAlign::Right);
    }
    if f.indent > 0 {
        format = format.set_indent(f.indent);
    }
    if f.wrap {
        format = format.set_text_wrap();
    }
    if let Some(code) = &f.num_format {
        format = format.set_num_format(code);
    }
    format
}

impl SheetTarget for WorksheetTarget<'_> {
    fn add_format(&mut self, format: &CellFormat) -> StyleId {
        self.formats.push(to_format(format));
        StyleId(self.formats.len() - 1)
    }

    fn set_name(&mut self, name: &str) -> Result<()> {
        self.worksheet
            .set_name(name)
            .map_err(|e| xlsx_error("naming the sheet", e))?;
        Ok(())
    }

    fn set_column_width(&mut self, col: u16, width: f64) -> Result<()> {
        self.worksheet
            .set_column_width(col, width)
            .map_err(|e| xlsx_error("setting a column width", e))?;
        Ok(())
    }

    fn freeze_rows(&mut self, rows: u32) -> Result<()> {
        self.worksheet
            .set_freeze_panes(rows, 0)
            .map_err(|e| xlsx_error("freezing the header", e))?;
        Ok(())
    }

    fn string(&mut self, row: u32, col: u16, text: &str, style: Option<StyleId>) -> Result<()> {
        let written = match style.and_then(|s| self.formats.get(s.0)) {
            Some(format) => self
                .worksheet
                .write_string_with_format(row, col, text, format),
            None => self.worksheet.write_string(row, col, text),
        };
        written.map_err(|e| xlsx_error(&format!("writing a text in row {}", row + 1), e))?;
        Ok(())
    }

    fn number(&mut self, row: u32, col: u16, number: f64, style: Option<StyleId>) -> Result<()> {
        let written = match style.and_then(|s| self.formats.get(s.0)) {
            Some(format) => self
                .worksheet
                .write_number_with_format(row, col, number, format),
            None => self.worksheet.write_number(row, col, number),
        };
        written.map_err(|e| xlsx_error(&format!("writing a number in row {}", row + 1), e))?;
        Ok(())
    }

    fn formula(
        &mut self,
        row: u32,
        col: u16,
        formula: &str,
        result: f64,
        style: StyleId,
    ) -> Result<()> {
        let formula = Formula::new(formula).set_result(result.to_string());
        self.worksheet
            .write_formula_with_format(row, col, formula, &self.formats[style.0])
            .map_err(|e| xlsx_error("writing a total", e))?;
        Ok(())
    }

    fn blank(&mut self, row: u32, col: u16, style: StyleId) -> Result<()> {
        self.worksheet
            .write_blank(row, col, &self.formats[style.0])
            .map_err(|e| xlsx_error("writing a blank cell", e))?;
        Ok(())
    }

    fn autofilter(
        &mut self,
        first_row: u32,
        first_col: u16,
        last_row: u32,
        last_col: u16,
    ) -> Result<()> {
        self.worksheet
            .autofilter(first_row, first_col, last_row, last_col)
            .map_err(|e| xlsx_error("adding the autofilter", e))?;
        Ok(())
    }

    fn print_setup(&mut self, setup: &PrintSetup) -> Result<()> {
        let (margin, band) = (setup.margin_inches, setup.band_margin_inches());
        let sheet = &mut *self.worksheet;
        sheet
            .set_paper_size(setup.paper_size)
            .set_margins(margin, margin, margin, margin, band, band);
        if setup.landscape {
            sheet.set_landscape();
        } else {
            sheet.set_portrait();
        }
        if !setup.header.is_empty() {
            sheet.set_header(&setup.header);
        }
        if !setup.footer.is_empty() {
            sheet.set_footer(&setup.footer);
        }
        Ok(())
    }

    fn row_breaks(&mut self, rows: &[u32]) -> Result<()> {
        self.worksheet
            .set_page_breaks(rows)
            .map_err(|e| xlsx_error("adding page breaks", e))?;
        Ok(())
    }
}
