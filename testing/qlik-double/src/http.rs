//! The HTTP side of a connection: the request head, plain answers, and the WebSocket upgrade.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A parsed request line and headers; the path is percent-decoded per segment later.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a cookie sent in the `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
            && self.header("sec-websocket-key").is_some()
    }

    /// The path split into percent-decoded segments.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }
}

/// Reads the request head; returns it and any bytes read past it.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(RequestHead, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf[end + 4..].to_vec();
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request head is not UTF-8"))?;
    Ok((parse_head(text)?, rest))
}

fn parse_head(text: &str) -> io::Result<RequestHead> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or_else(|| bad("no request line"))?;
    let mut parts = request_line.split(' ');
    let method = parts.next().ok_or_else(|| bad("no method"))?.to_string();
    let target = parts.next().ok_or_else(|| bad("no target"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(RequestHead {
        method,
        path: path.to_string(),
        query,
        headers,
    })
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a complete HTTP/1.1 answer and closes the exchange.
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, String)],
    body: &str,
) -> io::Result<()> {
    respond_with(
        stream,
        status,
        "text/plain; charset=utf-8",
        headers,
        body.as_bytes(),
    )
    .await
}

/// Writes a complete HTTP/1.1 answer with a body of `content_type` and closes the exchange.
pub async fn respond_with<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// Reads a request body of `Content-Length` bytes, starting with `already` (bytes read past
/// the head). Bodies over `limit` bytes are refused.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    mut already: Vec<u8>,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let length: usize = head
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if length > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request body too large",
        ));
    }
    let mut chunk = [0u8; 4096];
    while already.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the request body",
            ));
        }
        already.extend_from_slice(&chunk[..n]);
    }
    already.truncate(length);
    Ok(already)
}

/// Accepts a WebSocket upgrade (HTTP 101).
pub async fn accept_upgrade<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &RequestHead,
) -> io::Result<()> {
    let key = head.header("sec-websocket-key").unwrap_or_default();
    let accept = derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_cookies_parse() {
        let head = parse_head(
            "GET /hdr/app/My%20App/identity/x?qlik-csrf-token=a%2Bb HTTP/1.1\r\nHost: l\r\nCookie: a=1; X-Qlik-Session=abc",
        )
        .unwrap();
        assert_eq!(
            head.segments(),
            vec!["hdr", "app", "My App", "identity", "x"]
        );
        assert_eq!(head.query_param("qlik-csrf-token"), Some("a+b"));
        assert_eq!(head.cookie("X-Qlik-Session"), Some("abc"));
        assert_eq!(head.header("HOST"), Some("l"));
        assert_eq!(percent_decode("%3Ftransient%3D"), "?transient=");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
