//! Certificates generated at start: a certificate authority, the server's certificate for
//! `localhost`/`127.0.0.1`, and client certificates for mutual TLS.

use std::fmt;
use std::sync::Arc;

use mad_core::{Error, Result, Secret};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::BACKEND;

/// A client certificate and its private key, both PEM, issued by the double's CA: the
/// `client.pem` and `client_key.pem` a Qlik administrator would export.
#[derive(Clone)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: Secret,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

/// The double's certificate authority and server certificate.
pub(crate) struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pki(***)")
    }
}

fn tls_error(what: &str, err: impl fmt::Display) -> Error {
    Error::internal(format!("{what}: {err}")).with_backend(BACKEND)
}

impl Pki {
    pub fn generate() -> Result<Self> {
        let ca_key = KeyPair::generate().map_err(|e| tls_error("generating the CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("preparing the CA", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mad-qlik-double CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
            .map_err(|e| tls_error("signing the CA", e))?;

        let server_key =
            KeyPair::generate().map_err(|e| tls_error("generating the server key", e))?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(|e| tls_error("preparing the server certificate", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&server_key, &ca)
            .map_err(|e| tls_error("signing the server certificate", e))?;
        Ok(Pki {
            server_cert: cert.der().clone(),
            server_key: server_key.serialize_der(),
            ca,
        })
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Issues a client certificate whose common name is `name`.
    pub fn issue_client(&self, name: &str) -> Result<ClientCertificate> {
        let key = KeyPair::generate().map_err(|e| tls_error("generating a client key", e))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("preparing a client certificate", e))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(|e| tls_error("signing a client certificate", e))?;
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }

    /// The server side of TLS. With `client_auth`, a client certificate is verified against
    /// the CA when one is presented; whether one is required is decided at the HTTP level, so
    /// a client without one gets a 401 answer rather than a broken handshake.
    pub fn server_config(&self, client_auth: bool) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("configuring TLS", e))?;
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots
                .add(self.ca.der().clone())
                .map_err(|e| tls_error("trusting the CA", e))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_error("configuring client certificates", e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .map_err(|e| tls_error("loading the server certificate", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
