//! One-shot HTTP/1.1 connections to aggregated API servers, over TCP or TLS.
//!
//! TLS presents the front-proxy client certificate and verifies the backend against the
//! APIService's `caBundle`, or not at all with `insecureSkipTLSVerify: true`.

use super::{FrontProxy, Target, Verify};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// Errors reaching a backend.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TCP connect failed.
    #[error("dial tcp {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS setup or handshake failed.
    #[error("TLS handshake with {addr}: {message}")]
    Tls {
        /// The address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// HTTP exchange failed.
    #[error("HTTP exchange with {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// The hyper error.
        #[source]
        source: hyper::Error,
    },
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

// === impl AcceptAnyCert ===

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(verify: &Verify, front_proxy: &FrontProxy) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match verify {
        Verify::Skip => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider))),
        Verify::Bundle { ca_pem, .. } => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem) {
                let cert = cert.map_err(|e| format!("the APIService caBundle: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the APIService caBundle: {e}"))?;
            }
            if roots.is_empty() {
                return Err(
                    "x509: certificate signed by unknown authority (the APIService has no caBundle and insecureSkipTLSVerify is false)"
                        .into(),
                );
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| e.to_string())?;
            builder.with_webpki_verifier(verifier)
        }
    };
    let (chain, key) = front_proxy
        .client_identity()
        .ok_or("the front-proxy client certificate does not parse")?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())
}

async fn exchange<IO>(
    addr: &str,
    io: IO,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, TransportError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| TransportError::Http {
        addr: addr.to_string(),
        source,
    };
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "aggregated API connection ended");
        }
    });
    send.send_request(req).await.map_err(http)
}

/// Sends one request to `target` over `http`, or `https` as the front proxy.
pub async fn send(
    target: &Target,
    front_proxy: &FrontProxy,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, TransportError> {
    let authority = target.authority.as_str();
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| TransportError::Connect {
            addr: authority.to_string(),
            source,
        })?;
    if target.scheme != "https" {
        return exchange(authority, tcp, req).await;
    }
    let tls_err = |message: String| TransportError::Tls {
        addr: authority.to_string(),
        message,
    };
    let cfg = tls_config(&target.verify, front_proxy).map_err(tls_err)?;
    let host = match &target.verify {
        Verify::Bundle { server_name, .. } => server_name.as_str(),
        Verify::Skip => authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_matches(['[', ']']),
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    exchange(authority, tls, req).await
}
