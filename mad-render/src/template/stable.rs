//! Puts the parts of a filled workbook that umya-spreadsheet writes in hash order into a
//! stable order, so equal input gives equal bytes.
//!
//! umya-spreadsheet keeps number formats in a hash map: it writes custom ones in its iteration
//! order, and a style whose code is both built in and custom (a template's own `#,##0.00`)
//! gets either id, whichever the map yields first; both change from one workbook to the next.
//! Their order means nothing to a reader (cells refer to formats by id), and a built-in id
//! shows the same code, so sorting them by id and preferring the built-in id changes nothing
//! else.

use std::io::{Cursor, Read, Write};

use mad_core::{Error, ErrorKind, Result};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const STYLES: &str = "xl/styles.xml";

/// Number formats Excel has built in whose codes need no XML escaping, by id.
const BUILT_IN: [(u32, &str); 8] = [
    (1, "0"),
    (2, "0.00"),
    (3, "#,##0"),
    (4, "#,##0.00"),
    (9, "0%"),
    (10, "0.00%"),
    (11, "0.00E+00"),
    (49, "@"),
];

/// The package with its number formats sorted by id; every other part copied as it is.
pub(crate) fn stable_package(package: Vec<u8>) -> Result<Vec<u8>> {
    let mut archive = ZipArchive::new(Cursor::new(&package[..])).map_err(failed)?;
    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(package.len() + 1024)));
    for index in 0..archive.len() {
        let is_styles = archive
            .name_for_index(index)
            .and_then(|n| n.ok())
            .as_deref()
            == Some(STYLES);
        if !is_styles {
            let entry = archive.by_index_raw(index).map_err(failed)?;
            writer.raw_copy_file(entry).map_err(failed)?;
            continue;
        }
        let mut entry = archive.by_index(index).map_err(failed)?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(entry.last_modified().unwrap_or_default());
        let mut xml = String::new();
        entry
            .read_to_string(&mut xml)
            .map_err(|e| failed(e.into()))?;
        writer.start_file(STYLES, options).map_err(failed)?;
        writer
            .write_all(sort_number_formats(&xml).as_bytes())
            .map_err(|e| failed(e.into()))?;
    }
    Ok(writer.finish().map_err(failed)?.into_inner())
}

/// The styles part with the `<numFmt .../>` elements of `<numFmts>` in ascending id order;
/// unchanged when they are not in the simple form umya-spreadsheet writes.
fn sort_number_formats(xml: &str) -> String {
    let Some(open) = xml.find("<numFmts") else {
        return xml.to_string();
    };
    let Some(start) = xml[open..].find('>').map(|i| open + i + 1) else {
        return xml.to_string();
    };
    let Some(end) = xml[start..].find("</numFmts>").map(|i| start + i) else {
        return xml.to_string();
    };
    let mut formats: Vec<(u32, &str)> = Vec::new();
    for element in xml[start..end].split_inclusive("/>") {
        match number_format_id(element) {
            Some(id) => formats.push((id, element)),
            None => return xml.to_string(),
        }
    }
    formats.sort_by_key(|(id, _)| *id);

    let mut sorted = String::with_capacity(xml.len());
    sorted.push_str(&xml[..start]);
    formats
        .iter()
        .for_each(|(_, element)| sorted.push_str(element));
    let mut rest = xml[end..].to_string();
    for (id, element) in &formats {
        let code = element
            .split("formatCode=\"")
            .nth(1)
            .and_then(|v| v.split('"').next());
        if let Some((built_in, _)) = BUILT_IN.iter().find(|(_, c)| Some(*c) == code) {
            rest = rest.replace(
                &format!("numFmtId=\"{id}\""),
                &format!("numFmtId=\"{built_in}\""),
            );
        }
    }
    sorted.push_str(&rest);
    sorted
}

fn number_format_id(element: &str) -> Option<u32> {
    let rest = element.strip_prefix("<numFmt ")?;
    let value = rest.split("numFmtId=\"").nth(1)?;
    value.split('"').next()?.parse().ok()
}

fn failed(err: zip::result::ZipError) -> Error {
    Error::new(ErrorKind::Render, "rewriting the filled workbook").with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats_are_sorted_by_id() {
        let xml = r##"<styleSheet><numFmts count="2"><numFmt numFmtId="176" formatCode="dd.mm.yyyy"/><numFmt numFmtId="164" formatCode="#,##0.00 &quot;/&gt;&quot;"/></numFmts><fonts/></styleSheet>"##;
        assert_eq!(
            sort_number_formats(xml),
            r##"<styleSheet><numFmts count="2"><numFmt numFmtId="164" formatCode="#,##0.00 &quot;/&gt;&quot;"/><numFmt numFmtId="176" formatCode="dd.mm.yyyy"/></numFmts><fonts/></styleSheet>"##
        );
    }

    #[test]
    fn styles_use_the_built_in_id_of_a_custom_code() {
        let xml = r##"<numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00"/></numFmts><cellXfs><xf numFmtId="164"/><xf numFmtId="4"/></cellXfs>"##;
        assert_eq!(
            sort_number_formats(xml),
            r##"<numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00"/></numFmts><cellXfs><xf numFmtId="4"/><xf numFmtId="4"/></cellXfs>"##
        );
    }

    #[test]
    fn an_unexpected_form_is_left_alone() {
        let xml = r#"<numFmts count="1"><numFmt numFmtId="164"></numFmt></numFmts>"#;
        assert_eq!(sort_number_formats(xml), xml);
        assert_eq!(sort_number_formats("<styleSheet/>"), "<styleSheet/>");
    }
}
