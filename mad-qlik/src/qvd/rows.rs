//! The row block: per record, each field's symbol index, bit-packed.
//!
//! A record is `RecordByteSize` bytes read as one little-endian unsigned integer. A field's
//! stored value is `BitWidth` bits at `BitOffset`; its symbol index is the stored value plus
//! `Bias`, and a negative index is a null. A width of zero stores nothing: every record holds
//! the index `Bias`.

use mad_core::{Error, Result};

/// The widest stored index a reader accepts: symbol indices are 32-bit in the model.
const MAX_BIT_WIDTH: u64 = 32;

/// Where one field's index sits in a record, and how to turn it into a symbol number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BitField {
    pub offset: u64,
    pub width: u64,
    pub bias: i64,
    /// The number of symbols; indices at or above it are damage.
    pub symbols: u32,
}

/// A field's symbol numbers, one per record; a null is the number `symbols` (one past the
/// last symbol), so the caller appends a null symbol when `has_nulls` is set.
#[derive(Debug)]
pub(crate) struct Indices {
    pub indices: Vec<u32>,
    pub has_nulls: bool,
}

impl BitField {
    /// Refuses bit positions outside a record of `record_size` bytes.
    pub fn check(&self, record_size: u64, field: &str) -> Result<()> {
        if self.width > MAX_BIT_WIDTH {
            return Err(Error::invalid_input(format!(
                "field '{field}' has a BitWidth of {}, more than the {MAX_BIT_WIDTH} a symbol \
                 index can use",
                self.width
            )));
        }
        let end = self.offset.saturating_add(self.width);
        if self.width > 0 && end > record_size.saturating_mul(8) {
            return Err(Error::invalid_input(format!(
                "field '{field}' uses bits {}..{end} of records that are only {record_size} \
                 bytes ({} bits) long",
                self.offset,
                record_size.saturating_mul(8)
            )));
        }
        Ok(())
    }

    /// The symbol numbers of every record in `block` (`record_size` bytes each).
    /// The layout must have passed [`BitField::check`].
    pub fn decode(
        &self,
        block: &[u8],
        record_size: usize,
        rows: usize,
        field: &str,
    ) -> Result<Indices> {
        let mut indices = Vec::new();
        indices.try_reserve_exact(rows).map_err(|_| {
            Error::invalid_input(format!(
                "the header declares {rows} records, too many to hold in memory"
            ))
        })?;
        let mut has_nulls = false;
        if rows == 0 {
            return Ok(Indices { indices, has_nulls });
        }

        if self.width == 0 {
            let index = self.resolve(0, 0, rows, field)?;
            has_nulls = index == self.symbols;
            indices.resize(rows, index);
            return Ok(Indices { indices, has_nulls });
        }

        if record_size == 0 || block.len() / record_size < rows {
            return Err(short(field));
        }
        let first = (self.offset / 8) as usize;
        let shift = self.offset % 8;
        let span = (shift + self.width).div_ceil(8) as usize;
        let mask = (1u64 << self.width) - 1;
        for row in 0..rows {
            // Eight bytes from the field's first byte hold all its bits (at most 7 + 32); they
            // may reach into the next record, which the mask drops. Near the end of the block
            // only the field's own bytes are read.
            let start = row * record_size + first;
            let word = match block.get(start..).and_then(<[u8]>::first_chunk::<8>) {
                Some(bytes) => *bytes,
                None => {
                    let mut word = [0u8; 8];
                    let bytes = block.get(start..start + span).ok_or_else(|| short(field))?;
                    word[..span].copy_from_slice(bytes);
                    word
                }
            };
            let stored = (u64::from_le_bytes(word) >> shift) & mask;
            let index = self.resolve(stored, row, rows, field)?;
            has_nulls |= index == self.symbols;
            indices.push(index);
        }
        Ok(Indices { indices, has_nulls })
    }

    /// The symbol number for a stored value: the null number for a negative index, an error
    /// for one past the symbol table.
    fn resolve(&self, stored: u64, row: usize, rows: usize, field: &str) -> Result<u32> {
        let index = stored as i64 + self.bias;
        if index < 0 {
            return Ok(self.symbols);
        }
        if index >= i64::from(self.symbols) {
            return Err(Error::invalid_input(format!(
                "record {} of {rows} points field '{field}' to symbol {}, but the field has \
                 only {} symbols",
                row + 1,
                index + 1,
                self.symbols
            )));
        }
        Ok(index as u32)
    }
}

fn short(field: &str) -> Error {
    Error::internal(format!(
        "the row block given for field '{field}' is shorter than its records"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(offset: u64, width: u64, bias: i64, symbols: u32) -> BitField {
        BitField {
            offset,
            width,
            bias,
            symbols,
        }
    }

    #[test]
    fn reads_fields_across_byte_boundaries() {
        // Two 3-byte records holding a 5-bit field at bit 0 and a 12-bit field at bit 5.
        let pack = |a: u32, b: u32| {
            let r = a | (b << 5);
            [r as u8, (r >> 8) as u8, (r >> 16) as u8]
        };
        let block = [pack(3, 4000), pack(31, 1)].concat();
        let a = field(0, 5, 0, 32).decode(&block, 3, 2, "a").unwrap();
        assert_eq!(a.indices, vec![3, 31]);
        let b = field(5, 12, 0, 4096).decode(&block, 3, 2, "b").unwrap();
        assert_eq!(b.indices, vec![4000, 1]);
        assert!(!b.has_nulls);
    }

    #[test]
    fn negative_indices_are_nulls() {
        let block = [0u8, 1, 2, 3];
        let decoded = field(0, 8, -2, 2).decode(&block, 1, 4, "f").unwrap();
        assert_eq!(decoded.indices, vec![2, 2, 0, 1]);
        assert!(decoded.has_nulls);
    }

    #[test]
    fn zero_width_repeats_the_bias() {
        let decoded = field(0, 0, 0, 1).decode(&[], 0, 3, "f").unwrap();
        assert_eq!(decoded.indices, vec![0, 0, 0]);
        let decoded = field(0, 0, -2, 0).decode(&[], 0, 2, "f").unwrap();
        assert_eq!(decoded.indices, vec![0, 0]);
        assert!(decoded.has_nulls);
        assert!(field(0, 0, 0, 0).decode(&[], 0, 1, "f").is_err());
        assert!(field(0, 0, 0, 0).decode(&[], 0, 0, "f").is_ok());
    }

    #[test]
    fn index_past_the_symbols_is_damage() {
        let err = field(0, 8, 0, 5).decode(&[1, 5], 1, 2, "f").unwrap_err();
        assert!(err.message().contains("record 2 of 2"), "{err}");
    }

    #[test]
    fn layout_outside_the_record_is_refused() {
        assert!(field(20, 5, 0, 1).check(3, "f").is_err());
        assert!(field(0, 33, 0, 1).check(8, "f").is_err());
        assert!(field(19, 5, 0, 1).check(3, "f").is_ok());
        assert!(field(99, 0, 0, 1).check(1, "f").is_ok());
    }
}
