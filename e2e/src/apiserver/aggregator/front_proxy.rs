//! The aggregation layer's identity, as kube-apiserver has it: a front-proxy CA, the client
//! certificate it presents to extension API servers (`CN=front-proxy-client`), and the
//! `kube-system/extension-apiserver-authentication` ConfigMap that tells them how to check it.

use super::super::State;
use super::super::admission::stamp_new;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

/// The common name of the client certificate, as kube-apiserver's default.
pub const CLIENT_NAME: &str = "front-proxy-client";

/// The front-proxy CA and client certificate, in PEM.
#[derive(Debug, Clone)]
pub struct FrontProxy {
    /// The CA certificate.
    pub ca_pem: String,
    /// The client certificate.
    pub cert_pem: String,
    /// The client certificate's PKCS#8 key.
    pub key_pem: String,
}

// === impl FrontProxy ===

impl FrontProxy {
    /// A new CA and a client certificate signed by it.
    pub fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "front-proxy-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate()?;
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, CLIENT_NAME);
        client.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert_pem = client.signed_by(&key, &issuer)?.pem();
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// The client certificate chain and key for rustls.
    pub fn client_identity(
        &self,
    ) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).ok()?;
        Some((chain, key))
    }

    /// Stores `kube-system/extension-apiserver-authentication` as kube-apiserver publishes it:
    /// the request-header CA, the allowed names and the header names, lists as JSON text.
    pub fn publish(&self, state: &mut State) {
        let mut cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
            "data": {
                "requestheader-client-ca-file": self.ca_pem,
                "requestheader-allowed-names": json!([CLIENT_NAME]).to_string(),
                "requestheader-username-headers": json!(["X-Remote-User"]).to_string(),
                "requestheader-group-headers": json!(["X-Remote-Group"]).to_string(),
                "requestheader-extra-headers-prefix": json!(["X-Remote-Extra-"]).to_string(),
            }
        });
        stamp_new(&mut cm, false);
        state.store.put(
            &("".into(), "configmaps".into()),
            "kube-system",
            "extension-apiserver-authentication",
            cm,
        );
    }
}
