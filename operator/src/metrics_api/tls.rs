//! The server's TLS: its certificate (files, or a self-signed one), and a client-certificate
//! verifier that asks for a certificate without judging it; [`super::auth`] judges it per
//! request.

use super::rotation::Validity;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM of the expected kind.
    #[error("{path} holds no PEM {what}")]
    Pem {
        /// The file.
        path: String,
        /// A certificate or a private key.
        what: &'static str,
    },
    /// A certificate could not be generated.
    #[error("cannot generate a certificate")]
    Generate(#[source] rcgen::Error),
    /// A validity date rcgen cannot encode.
    #[error("validity date {0} out of range")]
    Validity(String),
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    Rustls(#[source] rustls::Error),
}

/// A certificate chain and its key.
pub struct Identity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The key.
    pub key: PrivateKeyDer<'static>,
}

/// A certificate authority that issues certificates (for the self-signed default and tests).
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A PEM certificate and key, as files and Secrets hold them.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// The certificate.
    pub cert: String,
    /// The PKCS#8 private key.
    pub key: String,
}

// === impl Identity ===

impl Identity {
    /// Reads a PEM certificate chain and private key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        Self::from_pem(&cert_pem, &key_pem).map_err(|what| TlsError::Pem {
            path: if what == "certificate" { cert } else { key }
                .display()
                .to_string(),
            what,
        })
    }

    /// Parses a PEM chain and key; the error names which is missing.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, &'static str> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|_| "certificate")?;
        if chain.is_empty() {
            return Err("certificate");
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| "private key")?;
        Ok(Self { chain, key })
    }

    /// A self-signed serving certificate for `names` (DNS names or IPs).
    pub fn self_signed(names: &[String]) -> Result<(Self, String), TlsError> {
        let ca = Authority::new("weir-metrics-ca")?;
        let pair = ca.issue(
            names.first().map_or("weir-metrics", String::as_str),
            names,
            false,
        )?;
        let identity =
            Self::from_pem(pair.cert.as_bytes(), pair.key.as_bytes()).map_err(|what| {
                TlsError::Pem {
                    path: "(generated)".into(),
                    what,
                }
            })?;
        Ok((identity, ca.pem().to_string()))
    }

    /// A rustls server config serving whatever `resolver` hands out, asking clients for a
    /// certificate.
    pub fn resolver_config(
        resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    ) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_client_cert_verifier(Arc::new(RequestClientCert(provider)))
            .with_cert_resolver(resolver);
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// A rustls server config serving this identity, asking clients for a certificate.
    pub fn server_config(self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_client_cert_verifier(Arc::new(RequestClientCert(provider)))
            .with_single_cert(self.chain, self.key)
            .map_err(TlsError::Rustls)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

// === impl Authority ===

impl Authority {
    /// A new self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(TlsError::Generate)?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(TlsError::Generate)?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        })
    }

    /// A new self-signed CA named `common_name`, valid for `validity`.
    pub fn new_valid(common_name: &str, validity: &Validity) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(TlsError::Generate)?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (params.not_before, params.not_after) = offset_times(validity)?;
        let cert = params.self_signed(&key).map_err(TlsError::Generate)?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        })
    }

    /// A CA from its PEM certificate and PKCS#8 key, to issue more certificates.
    pub fn from_pem(cert: &str, key: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key).map_err(TlsError::Generate)?;
        let issuer = Issuer::from_ca_cert_pem(cert, key).map_err(TlsError::Generate)?;
        Ok(Self {
            issuer,
            pem: cert.to_string(),
        })
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA's private key in PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a serving certificate named `common_name` for `names`, valid for `validity`.
    pub fn issue_valid(
        &self,
        common_name: &str,
        names: &[String],
        validity: &Validity,
    ) -> Result<PemPair, TlsError> {
        let key = KeyPair::generate().map_err(TlsError::Generate)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(TlsError::Generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        (params.not_before, params.not_after) = offset_times(validity)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(TlsError::Generate)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Issues a certificate named `common_name` for `names`: a client certificate when
    /// `client`, a server certificate otherwise.
    pub fn issue(
        &self,
        common_name: &str,
        names: &[String],
        client: bool,
    ) -> Result<PemPair, TlsError> {
        let key = KeyPair::generate().map_err(TlsError::Generate)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(TlsError::Generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(TlsError::Generate)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A validity period as rcgen takes it.
fn offset_times(
    validity: &Validity,
) -> Result<(time::OffsetDateTime, time::OffsetDateTime), TlsError> {
    let at = |t: chrono::DateTime<chrono::Utc>| {
        time::OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|_| TlsError::Validity(t.to_rfc3339()))
    };
    Ok((at(validity.not_before)?, at(validity.not_after)?))
}

/// Asks for a client certificate and accepts any at the handshake (after checking the
/// handshake signature, which proves the client holds the key); the chain is judged per
/// request.
#[derive(Debug)]
struct RequestClientCert(Arc<CryptoProvider>);

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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
