//! The streaming writer: one worksheet written as SpreadsheetML while its rows arrive, deflated
//! into the workbook as it grows, so a sheet of any length holds only its compressed bytes in
//! memory. The parts that never change are stored as constants; texts are inline strings, so
//! nothing has to be kept until the end.

use std::fmt::Write as _;

use mad_core::{Error, Result};

use super::BACKEND;
use super::cells::{CellFormat, Line, SheetTarget, StyleId};
use super::print::PrintSetup;
use super::zip::{OpenEntry, ZipWriter, dos_stamp};

/// Bytes of sheet XML gathered before they are deflated.
const FLUSH_AT: usize = 32 * 1024;
/// Excel's own limit on the characters of a cell.
const MAX_TEXT: usize = 32_767;

const CONTENT_TYPES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "\n",
    r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
    r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
    r#"<Default Extension="xml" ContentType="application/xml"/>"#,
    r#"<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>"#,
    r#"<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>"#,
    r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#,
    r#"<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
    r#"<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#,
    "</Types>"
);

const PACKAGE_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "\n",
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>"#,
    r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>"#,
    "</Relationships>"
);

const WORKBOOK_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "\n",
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>"#,
    "</Relationships>"
);

const APP: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "\n",
    r#"<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">"#,
    "<Application>mad</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>",
    "</Properties>"
);

const SHEET_START: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    "\n",
    r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">"#,
);

/// A one-sheet workbook written as its cells arrive.
pub(crate) struct StreamingWorkbook {
    zip: ZipWriter,
    level: u8,
    sheet: Option<OpenEntry>,
    xml: String,
    name: String,
    widths: Vec<(u16, f64)>,
    frozen_rows: u32,
    formats: Vec<CellFormat>,
    /// The row open in `xml` and the next column it may take.
    row: Option<u32>,
    next_col: u16,
    autofilter: Option<String>,
    print: Option<PrintSetup>,
    row_breaks: Vec<u32>,
}

impl StreamingWorkbook {
    /// A workbook deflated at `level` (1 to 9) whose entries are dated `created_at` (Unix
    /// seconds).
    pub(crate) fn new(level: u8, created_at: i64) -> Result<StreamingWorkbook> {
        let mut zip = ZipWriter::new(dos_stamp(created_at));
        zip.stored("[Content_Types].xml", CONTENT_TYPES.as_bytes())?;
        zip.stored("_rels/.rels", PACKAGE_RELS.as_bytes())?;
        zip.stored("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes())?;
        zip.stored("docProps/app.xml", APP.as_bytes())?;
        Ok(StreamingWorkbook {
            zip,
            level,
            sheet: None,
            xml: String::with_capacity(FLUSH_AT + 4096),
            name: "Sheet1".into(),
            widths: Vec::new(),
            frozen_rows: 0,
            formats: Vec::new(),
            row: None,
            next_col: 0,
            autofilter: None,
            print: None,
            row_breaks: Vec::new(),
        })
    }

    /// Closes the sheet and writes the styles, the workbook and its properties: `title`, and
    /// `created` as an ISO 8601 UTC time.
    pub(crate) fn finish(mut self, title: &str, created: &str) -> Result<Vec<u8>> {
        self.start()?;
        if self.row.is_some() {
            self.xml.push_str("</row>");
        }
        self.xml.push_str("</sheetData>");
        if let Some(range) = &self.autofilter {
            let _ = write!(self.xml, r#"<autoFilter ref="{range}"/>"#);
        }
        self.push_print_settings();
        self.xml.push_str("</worksheet>");
        let mut sheet = self
            .sheet
            .take()
            .ok_or_else(|| Error::internal("the sheet was not started"))?;
        self.zip.write(&mut sheet, self.xml.as_bytes())?;
        self.zip.close(sheet)?;

        let styles = styles_xml(&self.formats);
        self.zip.stored("xl/styles.xml", styles.as_bytes())?;
        let workbook = workbook_xml(&self.name, self.autofilter.as_deref());
        self.zip.stored("xl/workbook.xml", workbook.as_bytes())?;
        let core = core_xml(title, created);
        self.zip.stored("docProps/core.xml", core.as_bytes())?;
        self.zip.finish()
    }

    /// The page margins, page setup, header and footer and row breaks, in the schema's order.
    fn push_print_settings(&mut self) {
        let Some(print) = &self.print else {
            self.xml.push_str(
                r#"<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>"#,
            );
            return;
        };
        let xml = &mut self.xml;
        let (margin, band) = (print.margin_inches, print.band_margin_inches());
        let _ = write!(
            xml,
            r#"<pageMargins left="{margin}" right="{margin}" top="{margin}" bottom="{margin}" header="{band}" footer="{band}"/>"#
        );
        let orientation = if print.landscape {
            "landscape"
        } else {
            "portrait"
        };
        let _ = write!(
            xml,
            r#"<pageSetup paperSize="{}" orientation="{orientation}"/>"#,
            print.paper_size
        );
        if !print.header.is_empty() || !print.footer.is_empty() {
            xml.push_str("<headerFooter>");
            if !print.header.is_empty() {
                let _ = write!(xml, "<oddHeader>{}</oddHeader>", xml_text(&print.header));
            }
            if !print.footer.is_empty() {
                let _ = write!(xml, "<oddFooter>{}</oddFooter>", xml_text(&print.footer));
            }
            xml.push_str("</headerFooter>");
        }
        if !self.row_breaks.is_empty() {
            let count = self.row_breaks.len();
            let _ = write!(
                xml,
                r#"<rowBreaks count="{count}" manualBreakCount="{count}">"#
            );
            for row in &self.row_breaks {
                let _ = write!(xml, r#"<brk id="{row}" max="16383" man="1"/>"#);
            }
            xml.push_str("</rowBreaks>");
        }
    }

    /// Writes the sheet's opening (views, widths) once, before its first cell.
    fn start(&mut self) -> Result<()> {
        if self.sheet.is_some() {
            return Ok(());
        }
        self.sheet = Some(self.zip.open("xl/worksheets/sheet1.xml", self.level)?);
        let xml = &mut self.xml;
        xml.push_str(SHEET_START);
        xml.push_str(r#"<sheetViews><sheetView tabSelected="1" workbookViewId="0">"#);
        if self.frozen_rows > 0 {
            let rows = self.frozen_rows;
            let _ = write!(
                xml,
                r#"<pane ySplit="{rows}" topLeftCell="A{}" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>"#,
                rows + 1
            );
        }
        xml.push_str(r#"</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>"#);
        if !self.widths.is_empty() {
            xml.push_str("<cols>");
            for (col, width) in &self.widths {
                let _ = write!(
                    xml,
                    r#"<col min="{n}" max="{n}" width="{}" customWidth="1"/>"#,
                    stored_width(*width),
                    n = col + 1
                );
            }
            xml.push_str("</cols>");
        }
        xml.push_str("<sheetData>");
        Ok(())
    }

    /// Opens the cell at (`row`, `col`): `<c r=".." s=".."`, left for the caller to finish.
    fn cell(&mut self, row: u32, col: u16, style: Option<StyleId>) -> Result<()> {
        self.start()?;
        match self.row {
            Some(open) if open == row && col >= self.next_col => {}
            Some(open) if row > open => {
                self.xml.push_str("</row>");
                self.open_row(row);
            }
            None => self.open_row(row),
            Some(_) => {
                return Err(Error::internal(format!(
                    "cells must be written row by row, left to right; row {} column {} came late",
                    row + 1,
                    col + 1
                ))
                .with_backend(BACKEND));
            }
        }
        self.next_col = col + 1;
        self.xml.push_str("<c r=\"");
        push_column_name(&mut self.xml, col);
        self.xml.push_str(itoa::Buffer::new().format(row + 1));
        self.xml.push('"');
        if let Some(StyleId(id)) = style {
            self.xml.push_str(" s=\"");
            self.xml.push_str(itoa::Buffer::new().format(id + 1));
            self.xml.push('"');
        }
        Ok(())
    }

    fn open_row(&mut self, row: u32) {
        self.xml.push_str("<row r=\"");
        self.xml.push_str(itoa::Buffer::new().format(row + 1));
        self.xml.push_str("\">");
        self.row = Some(row);
        self.next_col = 0;
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.xml.len() >= FLUSH_AT
            && let Some(sheet) = self.sheet.as_mut()
        {
            self.zip.write(sheet, self.xml.as_bytes())?;
            self.xml.clear();
        }
        Ok(())
    }

    fn before_cells(&self, what: &str) -> Result<()> {
        if self.sheet.is_some() {
            return Err(
                Error::internal(format!("{what} must come before the first cell"))
                    .with_backend(BACKEND),
            );
        }
        Ok(())
    }
}

impl SheetTarget for StreamingWorkbook {
    fn add_format(&mut self, format: &CellFormat) -> StyleId {
        // A sheet has a few dozen formats: comparing them is cheaper than hashing them.
        if let Some(id) = self.formats.iter().position(|f| f == format) {
            return StyleId(id);
        }
        self.formats.push(format.clone());
        StyleId(self.formats.len() - 1)
    }

    fn set_name(&mut self, name: &str) -> Result<()> {
        self.name = name.to_string();
        Ok(())
    }

    fn set_column_width(&mut self, col: u16, width: f64) -> Result<()> {
        self.before_cells("a column width")?;
        self.widths.retain(|(c, _)| *c != col);
        self.widths.push((col, width));
        self.widths.sort_by_key(|(c, _)| *c);
        Ok(())
    }

    fn freeze_rows(&mut self, rows: u32) -> Result<()> {
        self.before_cells("freezing rows")?;
        self.frozen_rows = rows;
        Ok(())
    }

    fn string(&mut self, row: u32, col: u16, text: &str, style: Option<StyleId>) -> Result<()> {
        // A text has at least as many bytes as characters: count them only when it may be long.
        if text.len() > MAX_TEXT && text.chars().count() > MAX_TEXT {
            return Err(Error::invalid_input(format!(
                "the text in row {} is longer than the {MAX_TEXT} characters an Excel cell holds",
                row + 1
            ))
            .with_backend(BACKEND));
        }
        self.cell(row, col, style)?;
        let space = text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace);
        self.xml.push_str(match space {
            true => r#" t="inlineStr"><is><t xml:space="preserve">"#,
            false => r#" t="inlineStr"><is><t>"#,
        });
        push_text(&mut self.xml, text);
        self.xml.push_str("</t></is></c>");
        self.flush_if_full()
    }

    fn number(&mut self, row: u32, col: u16, number: f64, style: Option<StyleId>) -> Result<()> {
        if !number.is_finite() {
            return Ok(());
        }
        self.cell(row, col, style)?;
        // The shortest text that reads back as the same number (an exponent for very large or
        // small ones, which Excel reads too).
        self.xml.push_str("><v>");
        self.xml.push_str(
            ryu::Buffer::new()
                .format_finite(number)
                .trim_end_matches(".0"),
        );
        self.xml.push_str("</v></c>");
        self.flush_if_full()
    }

    fn formula(
        &mut self,
        row: u32,
        col: u16,
        formula: &str,
        result: f64,
        style: StyleId,
    ) -> Result<()> {
        self.cell(row, col, Some(style))?;
        self.xml.push_str("><f>");
        push_text(&mut self.xml, formula);
        self.xml.push_str("</f>");
        if result.is_finite() {
            let _ = write!(self.xml, "<v>{result}</v>");
        }
        self.xml.push_str("</c>");
        self.flush_if_full()
    }

    fn blank(&mut self, row: u32, col: u16, style: StyleId) -> Result<()> {
        self.cell(row, col, Some(style))?;
        self.xml.push_str("/>");
        Ok(())
    }

    fn autofilter(
        &mut self,
        first_row: u32,
        first_col: u16,
        last_row: u32,
        last_col: u16,
    ) -> Result<()> {
        let mut range = String::new();
        push_column_name(&mut range, first_col);
        let _ = write!(range, "{}:", first_row + 1);
        push_column_name(&mut range, last_col);
        let _ = write!(range, "{}", last_row + 1);
        self.autofilter = Some(range);
        Ok(())
    }

    fn print_setup(&mut self, setup: &PrintSetup) -> Result<()> {
        self.print = Some(setup.clone());
        Ok(())
    }

    fn row_breaks(&mut self, rows: &[u32]) -> Result<()> {
        self.row_breaks = rows.to_vec();
        Ok(())
    }
}

/// The width Excel stores for a column `chars` characters of the default font wide (Calibri
/// 11: digits 7 pixels wide, 5 pixels of padding).
fn stored_width(chars: f64) -> f64 {
    if chars <= 0.0 {
        return 0.0;
    }
    let pixels = if chars < 1.0 {
        (chars * 12.0).round()
    } else {
        (chars * 7.0).round() + 5.0
    };
    (pixels / 7.0 * 256.0).trunc() / 256.0
}

/// Appends a column's letters: 0 → A, 25 → Z, 26 → AA.
fn push_column_name(out: &mut String, col: u16) {
    let mut letters = [0u8; 3];
    let mut n = u32::from(col) + 1;
    let mut at = letters.len();
    while n > 0 {
        at -= 1;
        letters[at] = b'A' + ((n - 1) % 26) as u8;
        n = (n - 1) / 26;
    }
    for &l in &letters[at..] {
        out.push(l as char);
    }
}

/// Appends `text` escaped for XML element and attribute content. Characters XML cannot hold
/// are written as SpreadsheetML's `_xHHHH_` escapes, and a literal `_xHHHH_` in the text is
/// protected so readers do not decode it.
fn push_text(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let replacement: Option<&str> = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' => Some("&quot;"),
            '\t' | '\n' | '\r' => None,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&text[start..i]);
                let _ = write!(out, "_x{:04X}_", c as u32);
                start = i + c.len_utf8();
                continue;
            }
            '_' if looks_escaped(&bytes[i..]) => Some("_x005F_"),
            _ => None,
        };
        if let Some(r) = replacement {
            out.push_str(&text[start..i]);
            out.push_str(r);
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
}

/// True when `bytes` starts with `_xHHHH_`.
fn looks_escaped(bytes: &[u8]) -> bool {
    bytes.len() >= 7
        && bytes[1] == b'x'
        && bytes[2..6].iter().all(u8::is_ascii_hexdigit)
        && bytes[6] == b'_'
}

fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    push_text(&mut out, text);
    out
}

fn workbook_xml(name: &str, autofilter: Option<&str>) -> String {
    let mut xml = String::with_capacity(1024);
    xml.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        "\n",
        r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">"#,
        r#"<bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews><sheets>"#,
    ));
    let _ = write!(
        xml,
        r#"<sheet name="{}" sheetId="1" r:id="rId1"/></sheets>"#,
        xml_text(name)
    );
    if let Some(range) = autofilter {
        let absolute: String = range
            .split(':')
            .map(|cell| {
                let split = cell
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(cell.len());
                format!("${}${}", &cell[..split], &cell[split..])
            })
            .collect::<Vec<_>>()
            .join(":");
        let _ = write!(
            xml,
            r#"<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'{}'!{absolute}</definedName></definedNames>"#,
            xml_text(&name.replace('\'', "''"))
        );
    }
    xml.push_str(r#"<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>"#);
    xml
}

fn core_xml(title: &str, created: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\n",
            r#"<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<dc:title>{title}</dc:title><dc:creator>mad</dc:creator>",
            r#"<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>"#,
            r#"<dcterms:modified xsi:type="dcterms:W3CDTF">{created}</dcterms:modified>"#,
            "</cp:coreProperties>"
        ),
        title = xml_text(title),
        created = created
    )
}

/// The style sheet: fonts, fills, borders and number formats of every registered format, each
/// format one cell style (index + 1; 0 is the default).
fn styles_xml(formats: &[CellFormat]) -> String {
    fn index<T: PartialEq + Clone>(list: &mut Vec<T>, item: T) -> usize {
        match list.iter().position(|x| *x == item) {
            Some(i) => i,
            None => {
                list.push(item);
                list.len() - 1
            }
        }
    }
    type Font = (bool, bool, Option<u8>, Option<u32>);
    let mut fonts: Vec<Font> = vec![(false, false, None, None)];
    let mut fills: Vec<Option<u32>> = vec![None];
    let mut borders: Vec<(Line, Line)> = vec![(Line::None, Line::None)];
    let mut codes: Vec<String> = Vec::new();
    let mut xfs = String::new();
    for f in formats {
        let font = index(&mut fonts, (f.bold, f.italic, f.font_size, f.font_color));
        // Fill 1 is Excel's reserved gray125 pattern: user fills start at 2.
        let fill = match f.fill {
            None => 0,
            Some(_) => index(&mut fills, f.fill) + 1,
        };
        let border = index(&mut borders, (f.border_top, f.border_bottom));
        let code = match &f.num_format {
            Some(code) => 164 + index(&mut codes, code.clone()),
            None => 0,
        };
        let _ = write!(
            xfs,
            r#"<xf numFmtId="{code}" fontId="{font}" fillId="{fill}" borderId="{border}" xfId="0""#
        );
        for (flag, on) in [
            ("applyNumberFormat", code != 0),
            ("applyFont", font != 0),
            ("applyFill", fill != 0),
            ("applyBorder", border != 0),
            ("applyAlignment", f.align_right || f.indent > 0 || f.wrap),
        ] {
            if on {
                let _ = write!(xfs, r#" {flag}="1""#);
            }
        }
        if f.align_right || f.indent > 0 || f.wrap {
            xfs.push_str("><alignment");
            if f.align_right {
                xfs.push_str(r#" horizontal="right""#);
            } else if f.indent > 0 {
                xfs.push_str(r#" horizontal="left""#);
            }
            if f.indent > 0 {
                let _ = write!(xfs, r#" indent="{}""#, f.indent);
            }
            if f.wrap {
                xfs.push_str(r#" wrapText="1""#);
            }
            xfs.push_str("/></xf>");
        } else {
            xfs.push_str("/>");
        }
    }

    let mut xml = String::with_capacity(2048 + xfs.len());
    xml.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        "\n",
        r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#
    ));
    if !codes.is_empty() {
        let _ = write!(xml, r#"<numFmts count="{}">"#, codes.len());
        for (i, code) in codes.iter().enumerate() {
            let _ = write!(
                xml,
                r#"<numFmt numFmtId="{}" formatCode="{}"/>"#,
                164 + i,
                xml_text(code)
            );
        }
        xml.push_str("</numFmts>");
    }
    let _ = write!(xml, r#"<fonts count="{}">"#, fonts.len());
    for (bold, italic, size, color) in &fonts {
        xml.push_str("<font>");
        if *bold {
            xml.push_str("<b/>");
        }
        if *italic {
            xml.push_str("<i/>");
        }
        let _ = write!(xml, r#"<sz val="{}"/>"#, size.unwrap_or(11));
        match color {
            Some(rgb) => {
                let _ = write!(xml, r#"<color rgb="FF{rgb:06X}"/>"#);
            }
            None => xml.push_str(r#"<color theme="1"/>"#),
        }
        xml.push_str(r#"<name val="Calibri"/><family val="2"/><scheme val="minor"/></font>"#);
    }
    let _ = write!(
        xml,
        r#"</fonts><fills count="{}"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>"#,
        fills.len() + 1
    );
    for rgb in fills.iter().flatten() {
        let _ = write!(
            xml,
            r#"<fill><patternFill patternType="solid"><fgColor rgb="FF{rgb:06X}"/><bgColor indexed="64"/></patternFill></fill>"#
        );
    }
    let _ = write!(xml, r#"</fills><borders count="{}">"#, borders.len());
    for (top, bottom) in &borders {
        xml.push_str("<border><left/><right/>");
        push_line(&mut xml, "top", *top);
        push_line(&mut xml, "bottom", *bottom);
        xml.push_str("<diagonal/></border>");
    }
    let _ = write!(
        xml,
        concat!(
            "</borders>",
            r#"<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>"#,
            r#"<cellXfs count="{}"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>{}</cellXfs>"#,
            r#"<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>"#,
            r#"<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>"#,
            "</styleSheet>"
        ),
        formats.len() + 1,
        xfs
    );
    xml
}

fn push_line(xml: &mut String, side: &str, line: Line) {
    let style = match line {
        Line::None => {
            let _ = write!(xml, "<{side}/>");
            return;
        }
        Line::Thin => "thin",
        Line::Double => "double",
    };
    let _ = write!(xml, r#"<{side} style="{style}"><color auto="1"/></{side}>"#);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        xml_text(text)
    }

    #[test]
    fn texts_are_escaped_for_xml_and_spreadsheetml() {
        assert_eq!(escaped("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c'");
        assert_eq!(escaped("bell\u{7}tab\t"), "bell_x0007_tab\t");
        assert_eq!(escaped("_x0041_ and _x00"), "_x005F_x0041_ and _x00");
        assert_eq!(escaped("Zürich 東京"), "Zürich 東京");
    }

    #[test]
    fn column_names() {
        for (col, name) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (701, "ZZ"),
            (702, "AAA"),
            (16_383, "XFD"),
        ] {
            let mut s = String::new();
            push_column_name(&mut s, col);
            assert_eq!(s, name);
        }
    }

    #[test]
    fn widths_as_excel_stores_them() {
        assert_eq!(stored_width(8.43), 9.140625);
        assert_eq!(stored_width(10.0), 10.7109375);
    }

    #[test]
    fn cells_out_of_order_are_refused() {
        let mut book = StreamingWorkbook::new(1, 0).unwrap();
        book.number(1, 1, 1.0, None).unwrap();
        assert!(book.number(1, 0, 1.0, None).is_err());
        assert!(book.number(0, 5, 1.0, None).is_err());
        assert!(book.freeze_rows(1).is_err());
    }
}
