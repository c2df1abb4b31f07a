//! The XML header of a QVD file and where the binary part starts.

use mad_core::{Error, Result};
use serde::Deserialize;

const END_TAG: &[u8] = b"</QvdTableHeader>";

/// The table-level header: the fields and where the row block lies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TableHeader {
    #[serde(default)]
    pub table_name: String,
    pub fields: FieldList,
    #[serde(default)]
    pub compression: String,
    #[serde(default)]
    pub encryption_info: String,
    pub record_byte_size: u64,
    pub no_of_records: u64,
    /// Start of the row block, relative to the binary part.
    pub offset: u64,
    /// Length of the row block in bytes.
    pub length: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FieldList {
    #[serde(rename = "QvdFieldHeader", default)]
    pub fields: Vec<FieldHeader>,
}

/// One field's header: its bits in a record, its symbol table and its metadata.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FieldHeader {
    pub field_name: String,
    pub bit_offset: u64,
    pub bit_width: u64,
    pub bias: i64,
    #[serde(default)]
    pub number_format: NumberFormatHeader,
    pub no_of_symbols: u64,
    /// Start of the symbol table, relative to the binary part.
    pub offset: u64,
    /// Length of the symbol table in bytes.
    pub length: u64,
    #[serde(default)]
    pub tags: Tags,
}

/// A field's `NumberFormat` element, as Qlik writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NumberFormatHeader {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default)]
    pub fmt: String,
    #[serde(default)]
    pub dec: String,
    #[serde(default)]
    pub thou: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Tags {
    #[serde(rename = "String", default)]
    pub tags: Vec<String>,
}

impl Tags {
    pub fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// Splits a QVD file into its XML header and its binary part (symbol tables, then rows).
///
/// The header ends with `</QvdTableHeader>`, a line break (CRLF, rarely LF) and a zero byte.
/// The line break and the zero byte are skipped when present; no symbol type is zero, so the
/// zero byte cannot be mistaken for data.
pub(crate) fn split(bytes: &[u8]) -> Result<(&str, &[u8])> {
    let end = find(bytes, END_TAG).ok_or_else(|| {
        let what = if bytes.is_empty() {
            "the file is empty".to_string()
        } else if find(bytes, b"<QvdTableHeader").is_none() {
            "this is not a QVD file (it has no <QvdTableHeader> element)".to_string()
        } else {
            format!(
                "the XML header is truncated (no </QvdTableHeader> in {} bytes)",
                bytes.len()
            )
        };
        Error::invalid_input(format!("{what}; check that the file is a complete QVD"))
    })? + END_TAG.len();

    let text = std::str::from_utf8(&bytes[..end]).map_err(|e| {
        Error::invalid_input(format!(
            "the XML header is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let mut rest = &bytes[end..];
    rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    rest = rest.strip_prefix(b"\n").unwrap_or(rest);
    rest = rest.strip_prefix(b"\0").unwrap_or(rest);
    Ok((text, rest))
}

/// Reads the XML header, naming the element that is wrong.
pub(crate) fn parse(text: &str) -> Result<TableHeader> {
    let mut deserializer = quick_xml::de::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let place = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        Error::invalid_input(format!(
            "the XML header is damaged{place}: {}; check that the file is a complete QVD",
            e.into_inner()
        ))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
 <QvdTableHeader>
   <TableName>t &amp; u</TableName>
   <Fields>
     <QvdFieldHeader>
       <FieldName>a&lt;b</FieldName>
       <BitOffset>3</BitOffset>
       <BitWidth>5</BitWidth>
       <Bias>-2</Bias>
       <NumberFormat><Type>DATE</Type><nDec>0</nDec><Fmt>DD.MM.YYYY</Fmt><Dec>,</Dec><Thou></Thou></NumberFormat>
       <NoOfSymbols>4</NoOfSymbols>
       <Offset>0</Offset>
       <Length>20</Length>
       <Tags><String>$numeric</String><String>$date</String></Tags>
     </QvdFieldHeader>
   </Fields>
   <Compression></Compression>
   <RecordByteSize>1</RecordByteSize>
   <NoOfRecords>9</NoOfRecords>
   <Offset>20</Offset>
   <Length>9</Length>
   <Lineage><LineageInfo><Discriminator>x</Discriminator></LineageInfo></Lineage>
 </QvdTableHeader>"#;

    #[test]
    fn reads_fields_and_escapes() {
        let header = parse(HEADER).unwrap();
        assert_eq!(header.table_name, "t & u");
        assert_eq!(header.no_of_records, 9);
        let field = &header.fields.fields[0];
        assert_eq!(field.field_name, "a<b");
        assert_eq!((field.bit_offset, field.bit_width, field.bias), (3, 5, -2));
        assert_eq!(field.number_format.kind, "DATE");
        assert_eq!(field.number_format.fmt, "DD.MM.YYYY");
        assert_eq!(field.number_format.dec, ",");
        assert_eq!(field.number_format.thou, "");
        assert!(field.tags.has("$date"));
    }

    #[test]
    fn split_skips_line_break_and_zero_byte() {
        let file = [HEADER.as_bytes(), b"\r\n\0\x01"].concat();
        let (text, rest) = split(&file).unwrap();
        assert!(text.ends_with("</QvdTableHeader>"));
        assert_eq!(rest, b"\x01");
        let file = [HEADER.as_bytes(), b"\n\x04"].concat();
        assert_eq!(split(&file).unwrap().1, b"\x04");
    }

    #[test]
    fn missing_end_tag_is_reported() {
        let err = split(&HEADER.as_bytes()[..200]).unwrap_err();
        assert!(err.message().contains("truncated"), "{err}");
        let err = split(b"hello").unwrap_err();
        assert!(err.message().contains("not a QVD"), "{err}");
    }

    #[test]
    fn bad_elements_are_named() {
        let text = HEADER.replace("<NoOfRecords>9</NoOfRecords>", "");
        let err = parse(&text).unwrap_err();
        assert!(err.message().contains("NoOfRecords"), "{err}");
        let text = HEADER.replace("<BitWidth>5</BitWidth>", "<BitWidth>-5</BitWidth>");
        let err = parse(&text).unwrap_err();
        assert!(
            err.message().contains("QvdFieldHeader[0].BitWidth"),
            "{err}"
        );
        let text = HEADER.replace("</Fields>", "");
        let err = parse(&text).unwrap_err();
        assert!(err.message().contains("</Fields>"), "{err}");
    }
}
