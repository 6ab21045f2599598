//! The metrics API's serving certificate, kept in a Secret of the operator's own and rotated
//! by [`super::rotation::decide`]; its CA goes into the APIService's `caBundle`.
//!
//! ```text
//!  every replica, every check: read Secret ─► decide(now) ─► Keep | NewLeaf | NewAuthority
//!                                                              │ write Secret (resourceVersion-guarded)
//!  serve what the Secret holds ◄───────────────────────────────┤
//!  APIService.spec.caBundle := Secret's ca.crt (if it differs) ◄┘
//! ```
//!
//! The Secret (type `kubernetes.io/tls`) holds `tls.crt`, `tls.key`, `ca.crt` (the current CA
//! first, then previous ones still valid) and `ca.key`. Replicas never fight: a write is
//! guarded by the resourceVersion read, and the loser serves what the winner wrote.

use super::rotation::{self, Decision, Policy, Stored, Validity};
use super::tls::{Authority, Identity, PemPair, TlsError};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use parking_lot::RwLock;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where the certificate lives and what it must cover.
#[derive(Debug, Clone)]
pub struct ManagedCert {
    /// The Secret's namespace (the operator's own).
    pub namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// The APIService whose `caBundle` is kept in step, if any.
    pub api_service: Option<String>,
    /// The DNS names the serving certificate must hold.
    pub names: Vec<String>,
    /// Lifetimes.
    pub policy: Policy,
    /// How often the Secret and the APIService are checked, renewal or not.
    pub check_every: Duration,
}

/// Why the certificate could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// An API call failed.
    #[error("cannot {action}")]
    Kube {
        /// What was attempted, naming the object.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Issuing or loading a certificate failed.
    #[error("certificate")]
    Tls(#[from] TlsError),
    /// Another replica kept winning the write.
    #[error("the Secret {0} kept changing while it was rotated")]
    Contended(String),
}

/// The Secret's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// The CAs to trust, current first (PEM).
    pub ca_bundle: String,
    /// The current CA's key (PEM).
    pub ca_key: String,
    /// The serving certificate (PEM).
    pub cert: String,
    /// Its key (PEM).
    pub key: String,
}

/// A certificate resolver whose certificate can be swapped while serving.
#[derive(Debug)]
pub struct Reloadable(RwLock<Arc<CertifiedKey>>);

const TLS_CRT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";

// === impl ManagedCert ===

impl ManagedCert {
    /// The names a Service `service` in `namespace` is reached by.
    pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
        vec![
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
            format!("{service}.{namespace}"),
            service.to_string(),
        ]
    }

    /// Sets the APIService's `caBundle` to `material`'s CAs, when an APIService is named and
    /// it does not hold them already.
    pub async fn publish(
        &self,
        client: &kube::Client,
        material: &Material,
    ) -> Result<(), CertError> {
        match &self.api_service {
            Some(name) => write_ca_bundle(client, name, &material.ca_bundle).await,
            None => Ok(()),
        }
    }

    /// Reads the Secret and rotates what [`rotation::decide`] says; returns what the Secret
    /// now holds and what was decided.
    pub async fn sync(
        &self,
        client: &kube::Client,
        now: DateTime<Utc>,
    ) -> Result<(Material, Decision), CertError> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let full = format!("{}/{}", self.namespace, self.secret);
        for _ in 0..5 {
            let existing = api
                .get_opt(&self.secret)
                .await
                .map_err(|source| CertError::Kube {
                    action: format!("read the Secret {full}"),
                    source,
                })?;
            let data = existing
                .as_ref()
                .and_then(|s| s.data.clone())
                .unwrap_or_default();
            let current = Material::from_data(&data);
            let stored = match &current {
                Ok(Some(m)) => m.stored(),
                Ok(None) => Stored::Missing,
                Err(why) => Stored::Invalid(why.clone()),
            };
            let decision = rotation::decide(now, &stored, &self.names);
            let previous = current.ok().flatten();
            let next = match (&decision, previous) {
                (Decision::Keep { .. }, Some(m)) => return Ok((m, decision)),
                (Decision::NewLeaf(_), Some(m)) => m.new_leaf(now, &self.policy, &self.names)?,
                (_, previous) => {
                    Material::new_authority(now, &self.policy, &self.names, previous.as_ref())?
                }
            };
            tracing::info!(secret = %full, ?decision, "issuing the metrics API's serving certificate");
            let written = match existing {
                Some(mut secret) => {
                    secret.data = Some(next.to_data());
                    secret.type_ = Some("kubernetes.io/tls".into());
                    api.replace(&self.secret, &PostParams::default(), &secret)
                        .await
                }
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(self.secret.clone()),
                            namespace: Some(self.namespace.clone()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/managed-by".to_string(),
                                "weir".to_string(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        type_: Some("kubernetes.io/tls".into()),
                        data: Some(next.to_data()),
                        ..Secret::default()
                    };
                    api.create(&PostParams::default(), &secret).await
                }
            };
            match written {
                Ok(_) => return Ok((next, decision)),
                // Another replica wrote first: read what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(source) => {
                    return Err(CertError::Kube {
                        action: format!("write the Secret {full}"),
                        source,
                    });
                }
            }
        }
        Err(CertError::Contended(full))
    }

    /// Checks every [`ManagedCert::check_every`] (sooner when a renewal falls due) and
    /// swaps what `serving` serves when the Secret changes; runs until aborted.
    pub async fn run(
        self,
        client: kube::Client,
        serving: Arc<Reloadable>,
        mut current: Material,
        mut recheck_at: DateTime<Utc>,
    ) {
        loop {
            let until_due = (recheck_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(
                self.check_every
                    .min(until_due)
                    .max(Duration::from_millis(100)),
            )
            .await;
            match self.sync(&client, Utc::now()).await {
                Ok((material, decision)) => {
                    recheck_at = match decision {
                        Decision::Keep { recheck_at } => recheck_at,
                        _ => Utc::now(),
                    };
                    if let Err(e) = self.publish(&client, &material).await {
                        tracing::warn!(error = %crate::controller::chain(&e), "cannot write the caBundle");
                        recheck_at = recheck_at.min(Utc::now() + chrono::Duration::seconds(5));
                    }
                    if material != current {
                        match serving.load(&material) {
                            Ok(()) => {
                                tracing::info!("serving the metrics API's new certificate");
                                current = material;
                            }
                            Err(e) => {
                                tracing::warn!(error = %crate::controller::chain(&e), "the Secret's certificate does not load")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %crate::controller::chain(&e), "cannot keep the metrics API's certificate");
                }
            }
        }
    }
}

/// Sets the APIService's `caBundle` to `bundle` unless it already holds it.
async fn write_ca_bundle(client: &kube::Client, name: &str, bundle: &str) -> Result<(), CertError> {
    let api: Api<APIService> = Api::all(client.clone());
    let svc = api.get(name).await.map_err(|source| CertError::Kube {
        action: format!("read the APIService {name}"),
        source,
    })?;
    let current = svc.spec.as_ref().and_then(|s| s.ca_bundle.as_ref());
    if current.is_some_and(|b| b.0 == bundle.as_bytes()) {
        return Ok(());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
    let patch = serde_json::json!({"spec": {"caBundle": encoded}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| CertError::Kube {
            action: format!("write the caBundle of the APIService {name}"),
            source,
        })?;
    tracing::info!(apiservice = name, "wrote the caBundle");
    Ok(())
}

// === impl Material ===

impl Material {
    /// Reads a Secret's data: `None` when it holds no certificate, an error naming what is
    /// missing or malformed.
    pub fn from_data(data: &BTreeMap<String, ByteString>) -> Result<Option<Self>, String> {
        if data.is_empty() {
            return Ok(None);
        }
        let text = |key: &str| {
            let bytes = data.get(key).ok_or_else(|| format!("no {key}"))?;
            String::from_utf8(bytes.0.clone()).map_err(|_| format!("{key} is not text"))
        };
        Ok(Some(Self {
            ca_bundle: text(CA_CRT)?,
            ca_key: text(CA_KEY)?,
            cert: text(TLS_CRT)?,
            key: text(TLS_KEY)?,
        }))
    }

    /// The Secret's data.
    pub fn to_data(&self) -> BTreeMap<String, ByteString> {
        [
            (CA_CRT, &self.ca_bundle),
            (CA_KEY, &self.ca_key),
            (TLS_CRT, &self.cert),
            (TLS_KEY, &self.key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }

    /// What the decision needs to know about this material.
    pub fn stored(&self) -> Stored {
        match self.facts() {
            Ok(s) => s,
            Err(why) => Stored::Invalid(why),
        }
    }

    fn facts(&self) -> Result<Stored, String> {
        let cas = pem_certs(&self.ca_bundle, CA_CRT)?;
        let leaves = pem_certs(&self.cert, TLS_CRT)?;
        let (ca_der, leaf_der) = match (cas.first(), leaves.first()) {
            (Some(c), Some(l)) => (c, l),
            _ => return Err("ca.crt or tls.crt holds no certificate".into()),
        };
        Identity::from_pem(self.cert.as_bytes(), self.key.as_bytes())
            .map_err(|what| format!("tls.crt/tls.key: no PEM {what}"))?;
        let ca = parse(ca_der, CA_CRT)?;
        let leaf = parse(leaf_der, TLS_CRT)?;
        let leaf_names = leaf
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Stored::Present {
            ca: validity(&ca)?,
            leaf: validity(&leaf)?,
            leaf_names,
            leaf_signed_by_ca: leaf.verify_signature(Some(ca.public_key())).is_ok(),
        })
    }

    /// A new CA and leaf; the bundle keeps `previous`'s CAs that are still valid.
    fn new_authority(
        now: DateTime<Utc>,
        policy: &Policy,
        names: &[String],
        previous: Option<&Self>,
    ) -> Result<Self, TlsError> {
        let ca_validity = policy.authority_validity(now);
        let ca = Authority::new_valid("weir-metrics-ca", &ca_validity)?;
        let leaf = issue_leaf(&ca, now, policy, &ca_validity, names)?;
        let old: Vec<(String, Validity)> = previous
            .map(|p| old_authorities(&p.ca_bundle))
            .unwrap_or_default();
        let bundle =
            rotation::bundle(now, ca.pem(), old.iter().map(|(pem, v)| (pem.as_str(), *v))).concat();
        Ok(Self {
            ca_bundle: bundle,
            ca_key: ca.key_pem(),
            cert: leaf.cert,
            key: leaf.key,
        })
    }

    /// A new leaf from this material's CA; the bundle is unchanged.
    fn new_leaf(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
        names: &[String],
    ) -> Result<Self, TlsError> {
        let first = old_authorities(&self.ca_bundle);
        let (ca_pem, ca_validity) = first.first().ok_or(TlsError::Pem {
            path: CA_CRT.into(),
            what: "certificate",
        })?;
        let ca = Authority::from_pem(ca_pem, &self.ca_key)?;
        let leaf = issue_leaf(&ca, now, policy, ca_validity, names)?;
        Ok(Self {
            cert: leaf.cert,
            key: leaf.key,
            ..self.clone()
        })
    }
}

fn issue_leaf(
    ca: &Authority,
    now: DateTime<Utc>,
    policy: &Policy,
    ca_validity: &Validity,
    names: &[String],
) -> Result<PemPair, TlsError> {
    let validity = policy.leaf_validity(now, ca_validity);
    let cn = names.first().map_or("weir-metrics", String::as_str);
    ca.issue_valid(cn, names, &validity)
}

/// Each CA of a PEM bundle with its validity (those that do not parse are dropped).
fn old_authorities(bundle: &str) -> Vec<(String, Validity)> {
    pem_certs(bundle, CA_CRT)
        .unwrap_or_default()
        .iter()
        .filter_map(|der| {
            let v = validity(&parse(der, CA_CRT).ok()?).ok()?;
            let pem = pem_encode(der);
            Some((pem, v))
        })
        .collect()
}

fn pem_encode(der: &CertificateDer<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn pem_certs(pem: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key}: {e}"))
}

fn parse<'a>(
    der: &'a CertificateDer<'_>,
    key: &str,
) -> Result<x509_parser::certificate::X509Certificate<'a>, String> {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, c)| c)
        .map_err(|e| format!("{key}: {e}"))
}

fn validity(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<Validity, String> {
    let at = |t: x509_parser::time::ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0)
            .ok_or_else(|| format!("a validity date out of range: {t}"))
    };
    Ok(Validity {
        not_before: at(cert.validity().not_before)?,
        not_after: at(cert.validity().not_after)?,
    })
}

// === impl Reloadable ===

impl Reloadable {
    /// Serves `material`'s certificate.
    pub fn new(material: &Material) -> Result<Self, TlsError> {
        Ok(Self(RwLock::new(certified(material)?)))
    }

    /// Serves `material`'s certificate from now on.
    pub fn load(&self, material: &Material) -> Result<(), TlsError> {
        *self.0.write() = certified(material)?;
        Ok(())
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

fn certified(material: &Material) -> Result<Arc<CertifiedKey>, TlsError> {
    let identity =
        Identity::from_pem(material.cert.as_bytes(), material.key.as_bytes()).map_err(|what| {
            TlsError::Pem {
                path: TLS_CRT.into(),
                what,
            }
        })?;
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(identity.key)
        .map_err(TlsError::Rustls)?;
    Ok(Arc::new(CertifiedKey::new(identity.chain, key)))
}

#[cfg(test)]
mod tests;
