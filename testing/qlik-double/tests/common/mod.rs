//! A raw WebSocket client for the engine protocol and independent readers of the test data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mad_qlik_double::{App, ClientCertificate};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

pub const SUPERSTORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/superstore/superstore.csv"
);
pub const TRAFFIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/qlik/traffic"
);

pub const WAIT: Duration = Duration::from_secs(10);

pub fn superstore() -> App {
    App::from_file("superstore", SUPERSTORE).expect("the Superstore CSV loads")
}

/// Sums of `value` per `key` over the CSV rows whose `filter` column equals `wanted`, read with
/// the csv crate alone (independent of the double and of mad-core).
pub fn csv_sums(key: &str, value: &str, filter: Option<(&str, &str)>) -> BTreeMap<String, f64> {
    let mut reader = csv::Reader::from_path(SUPERSTORE).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (k, v) = (col(key), col(value));
    let f = filter.map(|(name, wanted)| (col(name), wanted.to_string()));
    let mut sums = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        if let Some((fc, wanted)) = &f
            && &record[*fc] != wanted
        {
            continue;
        }
        *sums.entry(record[k].to_string()).or_insert(0.0) += record[v].parse::<f64>().unwrap();
    }
    sums
}

pub fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to connect: extra headers, and TLS with the double's CA and optionally a client
/// certificate.
#[derive(Default, Clone)]
pub struct Connect {
    pub headers: Vec<(String, String)>,
    pub ca_pem: Option<String>,
    pub client: Option<ClientCertificate>,
}

impl Connect {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn tls(mut self, ca_pem: String) -> Self {
        self.ca_pem = Some(ca_pem);
        self
    }

    pub fn client_cert(mut self, cert: ClientCertificate) -> Self {
        self.client = Some(cert);
        self
    }
}

pub async fn transport(
    addr: std::net::SocketAddr,
    connect: &Connect,
) -> std::io::Result<Box<dyn Io>> {
    let tcp = TcpStream::connect(addr).await?;
    let Some(ca) = &connect.ca_pem else {
        return Ok(Box::new(tcp));
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match &connect.client {
        Some(cert) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(cert.key_pem.expose().as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    Ok(Box::new(connector.connect(name, tcp).await?))
}

/// A raw engine client: numbered requests, every received frame kept in order.
pub struct Client {
    pub ws: WebSocketStream<Box<dyn Io>>,
    next_id: i64,
    /// Frames received while waiting for responses: notifications and pushed change lists.
    pub other_frames: Vec<Json>,
}

/// Opens a WebSocket; a refused handshake comes back as its HTTP status, a failed TLS
/// handshake as 0.
pub async fn try_connect(
    addr: std::net::SocketAddr,
    url: &str,
    connect: &Connect,
) -> Result<Client, u16> {
    let stream = transport(addr, connect).await.map_err(|_| 0u16)?;
    let mut request = url.into_client_request().unwrap();
    for (name, value) in &connect.headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).unwrap());
    }
    match client_async(request, stream).await {
        Ok((ws, _)) => Ok(Client {
            ws,
            next_id: 1,
            other_frames: Vec::new(),
        }),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        // With TLS 1.3 a refused client certificate surfaces after the TLS handshake.
        Err(tungstenite::Error::Io(_)) => Err(0),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

pub async fn connect(addr: std::net::SocketAddr, url: &str) -> Client {
    try_connect(addr, url, &Connect::default())
        .await
        .expect("handshake accepted")
}

impl Client {
    /// The next text frame, parsed.
    pub async fn frame(&mut self) -> Json {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("the socket is open")
                .expect("a valid frame");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// Sends a raw frame.
    pub async fn send_raw(&mut self, frame: &str) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Sends a request shaped as enigma-go sends them and returns its id.
    pub async fn send(&mut self, handle: i64, method: &str, params: Json) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"jsonrpc": "2.0", "delta": false, "method": method, "handle": handle, "id": id, "params": params});
        self.send_raw(&frame.to_string()).await;
        id
    }

    /// Waits for the response with `id`, keeping other frames.
    pub async fn response(&mut self, id: i64) -> Json {
        if let Some(i) = self.other_frames.iter().position(|f| f["id"] == id) {
            return self.other_frames.remove(i);
        }
        loop {
            let frame = self.frame().await;
            if frame["id"] == id {
                return frame;
            }
            self.other_frames.push(frame);
        }
    }

    /// Sends a request and returns the whole response frame.
    pub async fn call(&mut self, handle: i64, method: &str, params: Json) -> Json {
        let id = self.send(handle, method, params).await;
        self.response(id).await
    }

    /// Sends a request and returns its `result`, failing on an error answer.
    pub async fn ok(&mut self, handle: i64, method: &str, params: Json) -> Json {
        let response = self.call(handle, method, params).await;
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// Opens `app` and returns the Doc handle.
    pub async fn open(&mut self, app: &str) -> i64 {
        let result = self
            .ok(-1, "OpenDoc", json!([app, "", "", "", false]))
            .await;
        result["qReturn"]["qHandle"].as_i64().unwrap()
    }

    /// Creates a session object and returns its handle.
    pub async fn object(&mut self, doc: i64, properties: Json) -> i64 {
        let result = self
            .ok(doc, "CreateSessionObject", json!([properties]))
            .await;
        result["qReturn"]["qHandle"].as_i64().unwrap()
    }

    /// Selects text values in a field.
    pub async fn select(&mut self, doc: i64, field: &str, values: &[&str]) {
        let field = self.ok(doc, "GetField", json!([field, ""])).await["qReturn"]["qHandle"]
            .as_i64()
            .unwrap();
        let values: Vec<Json> = values.iter().map(|v| json!({"qText": v})).collect();
        let result = self
            .ok(field, "SelectValues", json!([values, false, false]))
            .await;
        assert_eq!(result["qReturn"], true);
    }
}

/// A hypercube definition: plain field dimensions and expression measures.
pub fn cube(dimensions: &[&str], measures: &[&str], fetch: (i64, i64)) -> Json {
    let dims: Vec<Json> = dimensions
        .iter()
        .map(|d| json!({"qDef": {"qFieldDefs": [d]}}))
        .collect();
    let meas: Vec<Json> = measures
        .iter()
        .map(|m| json!({"qDef": {"qDef": m}}))
        .collect();
    json!({
        "qInfo": {"qType": "my-cube"},
        "qHyperCubeDef": {
            "qDimensions": dims,
            "qMeasures": meas,
            "qInitialDataFetch": [{"qLeft": 0, "qTop": 0, "qWidth": fetch.0, "qHeight": fetch.1}]
        }
    })
}

/// A plain HTTP exchange on a fresh connection; returns status, headers and body.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}
