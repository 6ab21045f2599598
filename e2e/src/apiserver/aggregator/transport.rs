//! One-shot HTTP/1.1 connections to aggregated API servers, over TCP or TLS.
//!
//! TLS does not verify the backend's certificate (as `insecureSkipTLSVerify: true`), and no
//! client certificate is presented.

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

fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth(),
    )
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

/// Sends one request to `authority` (`host:port`) over `http` or `https`.
pub async fn send(
    scheme: &str,
    authority: &str,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, TransportError> {
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| TransportError::Connect {
            addr: authority.to_string(),
            source,
        })?;
    if scheme != "https" {
        return exchange(authority, tcp, req).await;
    }
    let tls_err = |message: String| TransportError::Tls {
        addr: authority.to_string(),
        message,
    };
    let cfg = tls_config().map_err(|e| tls_err(e.to_string()))?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    exchange(authority, tls, req).await
}
