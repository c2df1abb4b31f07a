//! Symbol tables: the distinct values of a field, each a type byte and its payload.

use std::sync::Arc;

use mad_core::{Error, Result, Value};

const INT: u8 = 0x01;
const FLOAT: u8 = 0x02;
const TEXT: u8 = 0x04;
const DUAL_INT: u8 = 0x05;
const DUAL_FLOAT: u8 = 0x06;

/// The smallest symbol: a type byte and the zero byte ending an empty text.
pub(crate) const MIN_SYMBOL_BYTES: u64 = 2;

/// Decodes exactly `count` symbols that must fill `table` to its last byte.
pub(crate) fn decode(table: &[u8], count: usize, field: &str) -> Result<Vec<Value>> {
    let mut reader = Reader {
        bytes: table,
        pos: 0,
    };
    let mut symbols = Vec::with_capacity(count);
    for number in 0..count {
        let symbol = reader
            .symbol()
            .map_err(|what| symbol_error(field, number, count, &what))?;
        symbols.push(symbol);
    }

    if reader.pos != table.len() {
        return Err(Error::invalid_input(format!(
            "the symbol table of field '{field}' has {} bytes left after its {count} symbols",
            table.len() - reader.pos
        )));
    }
    Ok(symbols)
}

fn symbol_error(field: &str, number: usize, count: usize, what: &str) -> Error {
    Error::invalid_input(format!(
        "symbol {} of {count} of field '{field}' {what}",
        number + 1
    ))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn symbol(&mut self) -> std::result::Result<Value, String> {
        let kind = self.take::<1>()?[0];
        match kind {
            INT => Ok(Value::Number(self.int()?)),
            FLOAT => Ok(Value::Number(self.float()?)),
            TEXT => Ok(Value::Text(self.text()?)),
            DUAL_INT => Ok(Value::Dual(self.int()?, self.text()?)),
            DUAL_FLOAT => Ok(Value::Dual(self.float()?, self.text()?)),
            other => Err(format!(
                "has the unknown type byte 0x{other:02X} at byte {} of the table",
                self.pos - 1
            )),
        }
    }

    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let bytes = *self.bytes[self.pos..]
            .first_chunk::<N>()
            .ok_or("runs past the end of the symbol table")?;
        self.pos += N;
        Ok(bytes)
    }

    fn int(&mut self) -> std::result::Result<f64, String> {
        Ok(f64::from(i32::from_le_bytes(self.take()?)))
    }

    fn float(&mut self) -> std::result::Result<f64, String> {
        Ok(f64::from_le_bytes(self.take()?))
    }

    fn text(&mut self) -> std::result::Result<Arc<str>, String> {
        let rest = &self.bytes[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("has a text without its terminating zero byte")?;
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|_| "has a text that is not valid UTF-8".to_string())?;
        self.pos += len + 1;
        Ok(Arc::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_type() {
        let mut table = vec![INT];
        table.extend(7i32.to_le_bytes());
        table.push(FLOAT);
        table.extend(1.5f64.to_le_bytes());
        table.extend(b"\x04abc\0");
        table.push(DUAL_INT);
        table.extend((-52593i32).to_le_bytes());
        table.extend(b"1756-01-01\0");
        table.push(DUAL_FLOAT);
        table.extend((-8.7f64).to_le_bytes());
        table.extend(b"-8.7\0");
        let symbols = decode(&table, 5, "f").unwrap();
        assert_eq!(
            symbols,
            vec![
                Value::Number(7.0),
                Value::Number(1.5),
                Value::text("abc"),
                Value::dual(-52593.0, "1756-01-01"),
                Value::dual(-8.7, "-8.7"),
            ]
        );
    }

    #[test]
    fn damage_is_reported_with_the_symbol_number() {
        let err = decode(b"\x04ab\0\x03", 2, "f").unwrap_err();
        assert!(err.message().contains("symbol 2 of 2"), "{err}");
        assert!(err.message().contains("0x03"), "{err}");
        let err = decode(b"\x04ab", 1, "f").unwrap_err();
        assert!(err.message().contains("zero byte"), "{err}");
        let err = decode(b"\x01\0\0", 1, "f").unwrap_err();
        assert!(err.message().contains("past the end"), "{err}");
        let err = decode(b"\x04\xff\0", 1, "f").unwrap_err();
        assert!(err.message().contains("UTF-8"), "{err}");
        let err = decode(b"\x04a\0\x04b\0", 1, "f").unwrap_err();
        assert!(err.message().contains("3 bytes left"), "{err}");
    }
}
