//! QVD files, read natively.
//!
//! A QVD file holds one table the way Qlik holds it in memory: an XML header naming the fields,
//! then per field a symbol table (its distinct values), then one bit-packed record per row
//! holding each field's symbol index. [`parse_qvd`] turns the symbol tables and indices into
//! [`mad_core::Column`]s as they are, so reading costs one pass over the bytes and no hashing.
//!
//! The reader trusts nothing in the file: every offset, length, count and index is checked
//! against the bytes, and any inconsistency is an [`InvalidInput`] error saying what is wrong.
//!
//! [`InvalidInput`]: mad_core::ErrorKind::InvalidInput

mod field;
mod header;
mod rows;
mod source;
mod symbols;

use std::path::Path;
use std::sync::Arc;

use mad_core::{
    BuildContext, Column, DataSource, Error, Registry, Result, Schema, Table, Value, parse_options,
};

use self::header::{FieldHeader, TableHeader};
use self::rows::BitField;
pub use self::source::{QvdOptions, QvdSource};

const BACKEND: &str = "qvd";

/// Registers the `qvd` source kind; its options are [`QvdOptions`].
pub fn register(registry: &mut Registry) {
    registry.register_source(BACKEND, build_source);
}

fn build_source(options: &serde_json::Value, ctx: &BuildContext) -> Result<Arc<dyn DataSource>> {
    let mut options: QvdOptions =
        parse_options(BACKEND, options).map_err(|e| e.with_backend(BACKEND))?;
    options.path = ctx.resolve(&options.path);
    Ok(Arc::new(QvdSource::new(options)))
}

/// Reads a whole QVD file into a table.
///
/// A missing file is [`ErrorKind::NotFound`]; a damaged one is [`ErrorKind::InvalidInput`]
/// naming the file and the damage; a compressed or encrypted one is
/// [`ErrorKind::Unsupported`].
///
/// [`ErrorKind::NotFound`]: mad_core::ErrorKind::NotFound
/// [`ErrorKind::InvalidInput`]: mad_core::ErrorKind::InvalidInput
/// [`ErrorKind::Unsupported`]: mad_core::ErrorKind::Unsupported
pub fn read_qvd(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        Error::io(format!("reading the QVD file {}", path.display()), e).with_backend(BACKEND)
    })?;

    let table = parse_qvd(&bytes).map_err(|e| e.context(path.display()))?;
    tracing::debug!(
        path = %path.display(),
        rows = table.len(),
        fields = table.fields().len(),
        "read QVD file"
    );
    Ok(table)
}

/// Parses the bytes of a QVD file into a table; see [`read_qvd`].
pub fn parse_qvd(bytes: &[u8]) -> Result<Table> {
    parse(bytes).map_err(|e| e.with_backend(BACKEND))
}

fn parse(bytes: &[u8]) -> Result<Table> {
    let (text, body) = header::split(bytes)?;
    let header = header::parse(text)?;
    check_supported(&header)?;
    check_names(&header.fields.fields)?;
    let rows = RowBlock::locate(&header, body)?;

    let mut fields = Vec::with_capacity(header.fields.fields.len());
    let mut columns = Vec::with_capacity(header.fields.fields.len());
    for field_header in &header.fields.fields {
        let (field, column) = read_field(field_header, body, &rows).map_err(|e| {
            match header.table_name.as_str() {
                "" => e,
                name => e.context(format!("table '{name}'")),
            }
        })?;
        fields.push(field);
        columns.push(column);
    }

    Table::new(Schema::new(fields), columns)
}

fn check_supported(header: &TableHeader) -> Result<()> {
    if !header.compression.trim().is_empty() {
        return Err(Error::unsupported(
            BACKEND,
            format!(
                "compressed QVD files (Compression '{}')",
                header.compression
            ),
        ));
    }
    if !header.encryption_info.trim().is_empty() {
        return Err(Error::unsupported(BACKEND, "encrypted QVD files"));
    }
    Ok(())
}

fn check_names(fields: &[FieldHeader]) -> Result<()> {
    if fields.is_empty() {
        return Err(Error::invalid_input("the XML header lists no fields"));
    }
    for (i, field) in fields.iter().enumerate() {
        if fields[..i].iter().any(|f| f.field_name == field.field_name) {
            return Err(Error::invalid_input(format!(
                "the XML header lists the field '{}' twice",
                field.field_name
            )));
        }
    }
    Ok(())
}

/// The records of the file: how many, how long, and their bytes.
struct RowBlock<'a> {
    rows: usize,
    record_size: usize,
    bytes: &'a [u8],
}

impl<'a> RowBlock<'a> {
    fn locate(header: &TableHeader, body: &'a [u8]) -> Result<Self> {
        let too_big = || {
            Error::invalid_input(format!(
                "the header declares {} records of {} bytes, more than a table can hold",
                header.no_of_records, header.record_byte_size
            ))
        };
        let rows = usize::try_from(header.no_of_records)
            .ok()
            .filter(|&r| u32::try_from(r).is_ok())
            .ok_or_else(too_big)?;
        let record_size = usize::try_from(header.record_byte_size).map_err(|_| too_big())?;
        // When every field holds one value, records take no bytes and nothing bounds the
        // record count; a damaged count there costs memory instead of giving an error.
        let needed = rows.checked_mul(record_size).ok_or_else(too_big)?;

        if header.length < needed as u64 {
            return Err(Error::invalid_input(format!(
                "the row block is {} bytes, shorter than the {rows} records of {record_size} \
                 bytes the header declares",
                header.length
            )));
        }
        let bytes = slice(body, header.offset, header.length).ok_or_else(|| {
            Error::invalid_input(format!(
                "the row block (bytes {}..{} after the header) runs past the end of the file, \
                 {} bytes after the header; the file is truncated",
                header.offset,
                header.offset.saturating_add(header.length),
                body.len()
            ))
        })?;
        Ok(RowBlock {
            rows,
            record_size,
            bytes: &bytes[..needed],
        })
    }
}

fn read_field(
    header: &FieldHeader,
    body: &[u8],
    rows: &RowBlock<'_>,
) -> Result<(mad_core::Field, Column)> {
    let name = header.field_name.as_str();
    let bits = BitField {
        offset: header.bit_offset,
        width: header.bit_width,
        bias: header.bias,
        symbols: symbol_count(header)?,
    };
    bits.check(rows.record_size as u64, name)?;
    let table = slice(body, header.offset, header.length).ok_or_else(|| {
        Error::invalid_input(format!(
            "the symbol table of field '{name}' (bytes {}..{} after the header) runs past the \
             end of the file, {} bytes after the header; the file is truncated",
            header.offset,
            header.offset.saturating_add(header.length),
            body.len()
        ))
    })?;

    let mut symbols = symbols::decode(table, bits.symbols as usize, name)?;
    let decoded = bits.decode(rows.bytes, rows.record_size, rows.rows, name)?;
    let field = field::describe(header, &symbols);
    if decoded.has_nulls {
        symbols.push(Value::Null);
    }

    let column = Column::from_parts(symbols, decoded.indices)
        .map_err(|e| Error::internal(format!("field '{name}': {}", e.message())))?;
    Ok((field, column))
}

/// The declared symbol count, refused when the symbol table is too short to hold that many.
fn symbol_count(header: &FieldHeader) -> Result<u32> {
    let count = header.no_of_symbols;
    let fits = count.saturating_mul(symbols::MIN_SYMBOL_BYTES) <= header.length;
    match u32::try_from(count) {
        Ok(count) if fits && count < u32::MAX => Ok(count),
        _ => Err(Error::invalid_input(format!(
            "field '{}' declares {count} symbols in a symbol table of {} bytes",
            header.field_name, header.length
        ))),
    }
}

fn slice(body: &[u8], offset: u64, length: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    body.get(start..end)
}
