//! Multipart request bodies (`multipart/form-data`, `multipart/related`) built in memory.

use bytes::{BufMut, Bytes, BytesMut};

use crate::common::unique_token;

/// A multipart body under construction.
#[derive(Debug)]
pub(crate) struct Multipart {
    boundary: String,
    body: BytesMut,
}

impl Multipart {
    pub(crate) fn new() -> Self {
        Multipart {
            boundary: format!("mad-{}{}", unique_token(), unique_token()),
            body: BytesMut::new(),
        }
    }

    /// Adds a part with `headers` (each a complete `Name: value` line without its line
    /// break) and `content`. The boundary has 128 random bits, so no content holds it by
    /// chance.
    pub(crate) fn part(mut self, headers: &[String], content: &[u8]) -> Self {
        self.body.put_slice(b"--");
        self.body.put_slice(self.boundary.as_bytes());
        self.body.put_slice(b"\r\n");
        for header in headers {
            self.body.put_slice(header.as_bytes());
            self.body.put_slice(b"\r\n");
        }
        self.body.put_slice(b"\r\n");
        self.body.put_slice(content);
        self.body.put_slice(b"\r\n");
        self
    }

    /// The content type (`multipart/{subtype}; boundary=...`) and the finished body.
    pub(crate) fn finish(mut self, subtype: &str) -> (String, Bytes) {
        self.body.put_slice(b"--");
        self.body.put_slice(self.boundary.as_bytes());
        self.body.put_slice(b"--\r\n");
        (
            format!("multipart/{subtype}; boundary={}", self.boundary),
            self.body.freeze(),
        )
    }
}

/// A quoted string for a `Content-Disposition` parameter: quotes, backslashes and control
/// characters cannot end it early or add a header line.
pub(crate) fn quoted(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited() {
        let (content_type, body) = Multipart::new()
            .part(&["Content-Type: application/json".into()], b"{}")
            .part(&["Content-Type: text/plain".into()], b"hi")
            .finish("related");
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--{boundary}--\r\n"
            )
        );
        assert_eq!(quoted("a\"b\r\nc.pdf"), "\"a_b__c.pdf\"");
    }
}
