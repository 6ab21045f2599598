//! The TrafficMetrics API's managed certificate against the local control plane: the
//! metrics API (in this process, with lifetimes of seconds) creates its Secret, writes the
//! caBundle, renews its serving certificate and then its CA, and swaps what it serves
//! without a restart; the aggregator reaches it, verifying against the caBundle, throughout.

#[path = "support/analysis.rs"]
mod analysis_support;
#[path = "support/lib.rs"]
mod support;

use analysis_support::{get_raw, metrics_service, register_apiservice};
use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use support::cluster::Net;
use support::{eventually, seen};
use weir_e2e::apiserver::LocalApiServer;
use weir_operator::metrics::Metrics;
use weir_operator::metrics_api::rotation::Policy;
use weir_operator::metrics_api::serving_cert::ManagedCert;
use weir_operator::metrics_api::{self, Certificate, scrape::ScrapeConfig, store::Limits};

const SECRET: &str = "weir-metrics-tls";
const API_SERVICE: &str = "v1alpha1.metrics.smi-spec.io";

async fn secret_field(secrets: &Api<Secret>, key: &str) -> Result<Vec<u8>> {
    let s = secrets.get(SECRET).await?;
    Ok(s.data
        .unwrap_or_default()
        .get(key)
        .with_context(|| format!("no {key}"))?
        .0
        .clone())
}

/// The certificate `addr` serves, after verifying it for the Service's name against `ca_pem`.
async fn served_cert(addr: SocketAddr, ca_pem: &[u8]) -> Result<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("weir-metrics.weir-system.svc")?;
    let tls = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await??;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no peer certificate")?;
    Ok(leaf.as_ref().to_vec())
}

fn der_of(pem: &[u8]) -> Result<Vec<u8>> {
    Ok(CertificateDer::pem_slice_iter(pem)
        .next()
        .context("no certificate")??
        .as_ref()
        .to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_certificate_and_its_ca_rotate_while_the_aggregator_keeps_reaching_it()
-> Result<()> {
    let net = Net::claim()?;
    let server = LocalApiServer::start(net.server_options()).await?;
    let client = server.client().await?;
    let addr = SocketAddr::new(IpAddr::V4(net.host(40)?), 8443);
    metrics_service(&client, Some(addr)).await?;
    register_apiservice(&client, "").await?;

    // Leaf: 6 s, renewed after about 3.5 s; CA: 30 s, renewed after about 17.5 s.
    let managed = ManagedCert {
        namespace: "weir-system".into(),
        secret: SECRET.into(),
        api_service: Some(API_SERVICE.into()),
        names: ManagedCert::service_names("weir-metrics", "weir-system"),
        policy: Policy {
            ca_lifetime: chrono::Duration::seconds(30),
            leaf_lifetime: chrono::Duration::seconds(6),
        },
        check_every: Duration::from_millis(500),
    };
    let _running = metrics_api::start(
        client.clone(),
        metrics_api::Config {
            addr,
            certificate: Certificate::Managed(managed),
            scrape: ScrapeConfig {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
            },
            limits: Limits {
                retention: Duration::from_secs(60),
                max_points: 100,
                max_series: 1000,
            },
            auth_refresh: Duration::from_millis(500),
        },
        Arc::new(Metrics::default()),
    )
    .await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "weir-system");
    let services: Api<APIService> = Api::all(client.clone());
    let bundle = || async {
        let svc = services.get(API_SERVICE).await?;
        anyhow::Ok(
            svc.spec
                .and_then(|s| s.ca_bundle)
                .map(|b| b.0)
                .unwrap_or_default(),
        )
    };
    let reachable = || async {
        let doc = get_raw(&client, "/apis/metrics.smi-spec.io/v1alpha1").await?;
        seen(doc["kind"] == "APIResourceList", "discovery", doc)
    };

    // Written at start: the caBundle is the Secret's CA, and the aggregator gets through.
    let first_ca = secret_field(&secrets, "ca.crt").await?;
    ensure!(
        bundle().await? == first_ca,
        "the caBundle is not the Secret's ca.crt"
    );
    eventually(10, "discovery through the aggregator", reachable).await?;
    let first_leaf = secret_field(&secrets, "tls.crt").await?;
    ensure!(served_cert(addr, &first_ca).await? == der_of(&first_leaf)?);

    // The leaf is renewed from the same CA, and served without a restart.
    let second_leaf = eventually(15, "a renewed serving certificate", || async {
        let leaf = secret_field(&secrets, "tls.crt").await?;
        seen(leaf != first_leaf, "tls.crt changed", leaf.len())?;
        Ok(leaf)
    })
    .await?;
    ensure!(secret_field(&secrets, "ca.crt").await? == first_ca);
    let second_der = der_of(&second_leaf)?;
    eventually(5, "the renewed certificate served", || async {
        let served = served_cert(addr, &first_ca).await?;
        seen(served == second_der, "served the new leaf", served.len())
    })
    .await?;
    eventually(10, "discovery after the leaf's renewal", reachable).await?;

    // Then the CA: the bundle holds the new CA first and the old one after it.
    let new_bundle = eventually(30, "a new CA in the caBundle", || async {
        let b = bundle().await?;
        seen(b != first_ca && b.ends_with(&first_ca), "caBundle", b.len())?;
        Ok(b)
    })
    .await?;
    ensure!(secret_field(&secrets, "ca.crt").await? == new_bundle);
    let new_ca_only = der_of(&new_bundle)?;
    ensure!(new_ca_only != der_of(&first_ca)?);
    let new_ca_text = String::from_utf8(new_bundle.clone())?;
    let first_block = new_ca_text
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .context("a PEM block")?
        .to_string();
    eventually(5, "a certificate of the new CA served", || async {
        served_cert(addr, first_block.as_bytes()).await
    })
    .await?;
    eventually(10, "discovery after the CA's renewal", reachable).await?;
    server.shutdown().await;
    Ok(())
}
