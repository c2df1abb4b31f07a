//! TLS settings shared by the Engine API client and the Qlik Cloud REST client: rustls with
//! the ring provider, the public roots plus an optional private CA, and an optional client
//! certificate for mutual TLS.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mad_core::{Error, ErrorKind, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How to trust the server and, optionally, prove who we are with a certificate.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// PEM file of a private certificate authority to trust besides the public roots (the
    /// `root.pem` of a client-managed Qlik site, or a test double's CA).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate and private key presented to the server (mutual TLS).
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// Accept any server certificate. For tests against throwaway servers only: it turns
    /// off the protection TLS gives against someone in the middle.
    pub accept_invalid_certs_dangerous: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_file", &self.ca_file)
            .field(
                "client_certificate",
                &self.client_certificate.as_ref().map(|(cert, _)| cert),
            )
            .field(
                "accept_invalid_certs_dangerous",
                &self.accept_invalid_certs_dangerous,
            )
            .finish()
    }
}

impl TlsSettings {
    /// The rustls configuration these settings describe, speaking HTTP/1.1.
    pub fn client_config(&self, backend: &'static str) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(backend, "configuring TLS", e))?;
        let builder = if self.accept_invalid_certs_dangerous {
            let verifier = AcceptAnyServer {
                algorithms: provider.signature_verification_algorithms,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        } else {
            builder.with_root_certificates(self.roots(backend)?)
        };
        let mut config = match &self.client_certificate {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let certs = read_certificates(cert, backend)?;
                let key = read_key(key, backend)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "the client certificate {} and its key do not fit together: {e}",
                            cert.display()
                        ),
                    )
                    .with_backend(backend)
                })?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn roots(&self, backend: &'static str) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &self.ca_file {
            for cert in read_certificates(ca, backend)? {
                roots.add(cert).map_err(|e| {
                    Error::invalid_config(format!(
                        "the CA file {} holds a certificate that cannot be trusted: {e}",
                        ca.display()
                    ))
                    .with_backend(backend)
                })?;
            }
        }
        Ok(roots)
    }
}

fn tls_error(backend: &'static str, what: &str, err: impl fmt::Display) -> Error {
    Error::internal(format!("{what}: {err}")).with_backend(backend)
}

fn read_pem_file(path: &Path, what: &str, backend: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::io(format!("reading the {what} {}", path.display()), e))
        .map_err(|e| e.with_backend(backend))
}

fn read_certificates(path: &Path, backend: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem_file(path, "certificate file", backend)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid_config(format!(
                "{} is not a PEM certificate file: {e}",
                path.display()
            ))
            .with_backend(backend)
        })?;
    if certs.is_empty() {
        return Err(Error::invalid_config(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ))
        .with_backend(backend));
    }
    Ok(certs)
}

fn read_key(path: &Path, backend: &'static str) -> Result<PrivateKeyDer<'static>> {
    let pem = read_pem_file(path, "private key file", backend)?;
    // The key's bytes never reach an error message: only the path does.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        Error::invalid_config(format!(
            "{} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))
        .with_backend(backend)
    })
}

/// Accepts every server certificate but still checks the handshake signatures, so the
/// connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
