//! A page's content stream, written straight into bytes.
//!
//! Reports draw few kinds of things (fills, rules, text, chart shapes), and a burst writes
//! thousands of pages: writing each operator and number directly, with positions to a
//! hundredth of a point (under 4 µm) and colours to a thousandth, takes a fraction of the time
//! of a general float formatter and gives shorter streams to deflate.

/// The bytes of a content stream being written.
#[derive(Debug, Default)]
pub(crate) struct Ops {
    buf: Vec<u8>,
}

impl Ops {
    pub(crate) fn with_capacity(bytes: usize) -> Ops {
        Ops {
            buf: Vec::with_capacity(bytes),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// A length or position, to a hundredth of a point.
    fn pt(&mut self, v: f32) -> &mut Self {
        self.fixed(v, 2)
    }

    /// A colour component from 0 to 1, to a thousandth (finer than 8-bit colour steps).
    fn unit(&mut self, v: f32) -> &mut Self {
        self.fixed(v, 3)
    }

    fn fixed(&mut self, v: f32, decimals: u32) -> &mut Self {
        let scale = 10u64.pow(decimals);
        // `as` saturates and maps NaN to 0: a broken number cannot break the stream.
        let scaled = (f64::from(v) * scale as f64).round() as i64;
        if scaled < 0 {
            self.buf.push(b'-');
        }
        let scaled = scaled.unsigned_abs();
        let mut digits = itoa::Buffer::new();
        self.buf
            .extend_from_slice(digits.format(scaled / scale).as_bytes());
        let mut frac = scaled % scale;
        if frac != 0 {
            let mut places = decimals as usize;
            while frac.is_multiple_of(10) {
                frac /= 10;
                places -= 1;
            }
            let text = digits.format(frac);
            self.buf.push(b'.');
            self.buf
                .extend(std::iter::repeat_n(b'0', places - text.len()));
            self.buf.extend_from_slice(text.as_bytes());
        }
        self.buf.push(b' ');
        self
    }

    fn op(&mut self, operator: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(operator);
        self.buf.push(b'\n');
        self
    }

    pub(crate) fn save_state(&mut self) -> &mut Self {
        self.op(b"q")
    }

    pub(crate) fn restore_state(&mut self) -> &mut Self {
        self.op(b"Q")
    }

    pub(crate) fn fill_gray(&mut self, gray: f32) -> &mut Self {
        self.unit(gray).op(b"g")
    }

    pub(crate) fn stroke_gray(&mut self, gray: f32) -> &mut Self {
        self.unit(gray).op(b"G")
    }

    pub(crate) fn fill_rgb(&mut self, [r, g, b]: [f32; 3]) -> &mut Self {
        self.unit(r).unit(g).unit(b).op(b"rg")
    }

    pub(crate) fn stroke_rgb(&mut self, [r, g, b]: [f32; 3]) -> &mut Self {
        self.unit(r).unit(g).unit(b).op(b"RG")
    }

    pub(crate) fn line_width(&mut self, width: f32) -> &mut Self {
        self.pt(width).op(b"w")
    }

    pub(crate) fn rect(&mut self, x: f32, y: f32, width: f32, height: f32) -> &mut Self {
        self.pt(x).pt(y).pt(width).pt(height).op(b"re")
    }

    pub(crate) fn move_to(&mut self, x: f32, y: f32) -> &mut Self {
        self.pt(x).pt(y).op(b"m")
    }

    pub(crate) fn line_to(&mut self, x: f32, y: f32) -> &mut Self {
        self.pt(x).pt(y).op(b"l")
    }

    pub(crate) fn cubic_to(&mut self, [x1, y1, x2, y2, x3, y3]: [f32; 6]) -> &mut Self {
        self.pt(x1).pt(y1).pt(x2).pt(y2).pt(x3).pt(y3).op(b"c")
    }

    pub(crate) fn close_path(&mut self) -> &mut Self {
        self.op(b"h")
    }

    pub(crate) fn stroke(&mut self) -> &mut Self {
        self.op(b"S")
    }

    pub(crate) fn fill(&mut self) -> &mut Self {
        self.op(b"f")
    }

    pub(crate) fn fill_and_stroke(&mut self) -> &mut Self {
        self.op(b"B")
    }

    pub(crate) fn begin_text(&mut self) -> &mut Self {
        self.op(b"BT")
    }

    pub(crate) fn end_text(&mut self) -> &mut Self {
        self.op(b"ET")
    }

    /// Starts the next text at `x`, `y`.
    pub(crate) fn text_at(&mut self, x: f32, y: f32) -> &mut Self {
        self.buf.extend_from_slice(b"1 0 0 1 ");
        self.pt(x).pt(y).op(b"Tm")
    }

    /// Sets the font by its resource name (plain ASCII letters and digits) and size.
    pub(crate) fn font(&mut self, resource: &[u8], size: f32) -> &mut Self {
        self.buf.push(b'/');
        self.buf.extend_from_slice(resource);
        self.buf.push(b' ');
        self.pt(size).op(b"Tf")
    }

    /// Fills glyphs (`false`) or fills and strokes them (`true`).
    pub(crate) fn stroked_text(&mut self, stroked: bool) -> &mut Self {
        self.op(if stroked { b"2 Tr" } else { b"0 Tr" })
    }

    /// Shows `codes`, the font's character codes, written as a literal string: the two-byte
    /// codes of an embedded font take half the bytes they would as hex, and the stream is
    /// mostly text. Parentheses, backslashes and line ends are escaped, so no reader can take
    /// a code for the string's end or normalise it away.
    pub(crate) fn show(&mut self, codes: &[u8]) -> &mut Self {
        let escaped = |byte: &u8| matches!(byte, b'(' | b')' | b'\\' | b'\r' | b'\n');
        self.buf.reserve(codes.len() + 8);
        self.buf.push(b'(');
        let mut rest = codes;
        while let Some(at) = rest.iter().position(escaped) {
            self.buf.extend_from_slice(&rest[..at]);
            self.buf.push(b'\\');
            self.buf.push(match rest[at] {
                b'\r' => b'r',
                b'\n' => b'n',
                byte => byte,
            });
            rest = &rest[at + 1..];
        }
        self.buf.extend_from_slice(rest);
        self.op(b") Tj")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Ops)) -> String {
        let mut ops = Ops::default();
        f(&mut ops);
        String::from_utf8(ops.finish()).unwrap()
    }

    #[test]
    fn numbers_are_short_and_exact_to_their_precision() {
        let text = written(|o| {
            o.rect(42.519_684, 706.782_84, -0.004, 27.0)
                .line_to(0.106, -12.5)
                .fill_rgb([1.0, 0.5, 1.0 / 255.0])
                .line_width(f32::NAN);
        });
        assert_eq!(
            text,
            "42.52 706.78 0 27 re\n0.11 -12.5 l\n1 0.5 0.004 rg\n0 w\n"
        );
    }

    #[test]
    fn text_is_positioned_set_and_shown_as_a_literal_string() {
        let mut ops = Ops::default();
        ops.begin_text()
            .text_at(10.0, 20.25)
            .font(b"F1", 11.25)
            .stroked_text(true)
            .show(&[0x00, 0xd3, 0x00, b'('])
            .end_text();
        assert_eq!(
            ops.finish(),
            b"BT\n1 0 0 1 10 20.25 Tm\n/F1 11.25 Tf\n2 Tr\n(\x00\xd3\x00\\() Tj\nET\n"
        );
    }

    #[test]
    fn codes_that_would_end_or_bend_a_literal_string_are_escaped() {
        let mut ops = Ops::default();
        ops.show(&[b')', b'\\', b'\r', b'\n', 0xff]);
        assert_eq!(ops.finish(), b"(\\)\\\\\\r\\n\xff) Tj\n");
    }
}
