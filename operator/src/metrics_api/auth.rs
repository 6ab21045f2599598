//! Authentication of the aggregation layer, as an extension API server does it: the
//! caller presents a client certificate signed by the request-header CA published in
//! `kube-system/extension-apiserver-authentication`, with a common name in
//! `requestheader-allowed-names` (any, when that list is empty); the user is then read
//! from the first `requestheader-username-headers` header (`X-Remote-User`). Anything
//! else is 401.
//!
//! The TLS handshake asks for a certificate but does not judge it (Go's
//! `RequestClientCert`); the chain is checked here, per request, against the CA loaded
//! now, so a rotated ConfigMap takes effect without a restart and a bad certificate gets a
//! 401 rather than a broken handshake.

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ConfigMap the aggregation layer's settings are published in.
pub const CONFIG_MAP: (&str, &str) = ("kube-system", "extension-apiserver-authentication");

/// Why the request-header settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The ConfigMap has no request-header CA.
    #[error("{}/{} has no requestheader-client-ca-file", CONFIG_MAP.0, CONFIG_MAP.1)]
    NoCa,
    /// The CA is not PEM certificates.
    #[error("requestheader-client-ca-file holds no usable certificate")]
    BadCa,
    /// A list key is not a JSON array of strings.
    #[error("{key} is not a JSON list of strings")]
    BadList {
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The verifier could not be built.
    #[error("cannot verify client certificates with this CA")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// Who a request is from, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (`X-Remote-User`).
    pub name: String,
    /// The groups (`X-Remote-Group`).
    pub groups: Vec<String>,
    /// The proxy's certificate common name.
    pub proxy: String,
}

/// The request-header settings, ready to authenticate requests.
pub struct RequestHeaderAuth {
    verifier: Arc<dyn ClientCertVerifier>,
    allowed_names: Vec<String>,
    username_headers: Vec<String>,
    group_headers: Vec<String>,
}

impl std::fmt::Debug for RequestHeaderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHeaderAuth")
            .field("allowed_names", &self.allowed_names)
            .field("username_headers", &self.username_headers)
            .field("group_headers", &self.group_headers)
            .finish_non_exhaustive()
    }
}

// === impl RequestHeaderAuth ===

impl RequestHeaderAuth {
    /// Reads the settings from the ConfigMap's data.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let ca = data
            .get("requestheader-client-ca-file")
            .filter(|s| !s.trim().is_empty())
            .ok_or(ConfigError::NoCa)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let cert = cert.map_err(|_| ConfigError::BadCa)?;
            roots.add(cert).map_err(|_| ConfigError::BadCa)?;
        }
        if roots.is_empty() {
            return Err(ConfigError::BadCa);
        }
        let list = |key: &str, default: &[&str]| -> Result<Vec<String>, ConfigError> {
            match data.get(key).filter(|s| !s.trim().is_empty()) {
                None => Ok(default.iter().map(|s| s.to_string()).collect()),
                Some(text) => serde_json::from_str(text).map_err(|source| ConfigError::BadList {
                    key: key.to_string(),
                    source,
                }),
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(ConfigError::Verifier)?;
        Ok(Self {
            verifier,
            allowed_names: list("requestheader-allowed-names", &[])?,
            username_headers: list("requestheader-username-headers", &["X-Remote-User"])?,
            group_headers: list("requestheader-group-headers", &["X-Remote-Group"])?,
        })
    }

    /// Authenticates a request from its peer's certificates (leaf first) and headers.
    pub fn authenticate(
        &self,
        peer: Option<&[CertificateDer<'static>]>,
        headers: &http::HeaderMap,
        now: UnixTime,
    ) -> Result<User, String> {
        let Some((leaf, intermediates)) = peer.and_then(|p| p.split_first()) else {
            return Err(
                "no client certificate: requests must come through the aggregation layer".into(),
            );
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| {
                format!("the client certificate is not valid for the request-header CA: {e}")
            })?;
        let cn = common_name(leaf)
            .ok_or_else(|| "the client certificate has no common name".to_string())?;
        if !self.allowed_names.is_empty() && !self.allowed_names.contains(&cn) {
            return Err(format!(
                "common name {cn:?} is not in requestheader-allowed-names {:?}",
                self.allowed_names
            ));
        }
        let header_values = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .flat_map(|n| headers.get_all(n.as_str()).iter())
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|v| !v.is_empty())
                .collect()
        };
        let name = header_values(&self.username_headers)
            .into_iter()
            .next()
            .ok_or_else(|| format!("no user in {:?}", self.username_headers))?;
        Ok(User {
            name,
            groups: header_values(&self.group_headers),
            proxy: cn,
        })
    }
}

/// The subject common name of a DER certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests;
