//! Weir's install on a cluster, as the demo and the end-to-end tests do it: the CRDs of
//! `crds/manifests`, the metrics API's Service and APIService of `config/metrics-api` (with
//! the caBundle of a serving certificate issued here), and reading TrafficMetrics back.

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use weir_operator::metrics_api::tls::Authority;

mod rbac;
pub use rbac::{install_rbac, rbac_objects};

/// The namespace and Service of the metrics API, as in config/metrics-api.
pub const METRICS_NS: &str = "weir-system";
/// The metrics API's Service.
pub const METRICS_SERVICE: &str = "weir-metrics";

/// The folder of the generated CRDs.
const CRDS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/manifests");
/// The metrics API's Service and APIService.
const METRICS_API_YAML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/metrics-api/metrics-api.yaml"
);

/// Creates every CRD of crds/manifests; returns their names.
pub async fn install_crds(client: &Client) -> Result<Vec<String>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(CRDS_DIR)
        .with_context(|| format!("reading {CRDS_DIR}"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| path.display().to_string())?;
        let created = crds
            .create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("create {}", path.display()))?;
        names.push(created.metadata.name.unwrap_or_default());
    }
    Ok(names)
}

/// The serving certificate of the metrics API, signed by a CA the APIService's caBundle holds.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// The CA in PEM.
    pub ca_pem: String,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
}

/// Issues a serving certificate for `weir-metrics.weir-system.svc` into `dir`
/// (`tls.crt`, `tls.key`).
pub fn write_serving_cert(dir: &Path) -> Result<ServingCert> {
    let ca = Authority::new("weir-serving-ca").context("create the serving CA")?;
    let pair = ca
        .issue(
            METRICS_SERVICE,
            &[format!("{METRICS_SERVICE}.{METRICS_NS}.svc")],
            false,
        )
        .context("issue the serving certificate")?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, &pair.cert).with_context(|| cert.display().to_string())?;
    std::fs::write(&key, &pair.key).with_context(|| key.display().to_string())?;
    Ok(ServingCert {
        ca_pem: ca.pem().to_string(),
        cert,
        key,
    })
}

/// The documents of config/metrics-api/metrics-api.yaml: the Service and the APIService.
fn metrics_api_config() -> Result<(Service, APIService)> {
    let path = METRICS_API_YAML;
    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        docs.push(serde_json::to_value(serde_yaml::Value::deserialize(doc)?)?);
    }
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .with_context(|| format!("no {kind} in {path}"))
    };
    Ok((
        serde_json::from_value(find("Service")?)?,
        serde_json::from_value(find("APIService")?)?,
    ))
}

/// Applies the APIService of config/metrics-api with `ca_pem` as its caBundle.
pub async fn register_apiservice(client: &Client, ca_pem: &str) -> Result<()> {
    let (_, mut apisvc) = metrics_api_config()?;
    // ByteString holds the PEM itself and is base64-encoded on the wire.
    apisvc.spec.as_mut().context("APIService spec")?.ca_bundle =
        Some(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec()));
    Api::<APIService>::all(client.clone())
        .patch(
            "v1alpha1.metrics.smi-spec.io",
            &PatchParams::apply("weir-test").force(),
            &Patch::Apply(&apisvc),
        )
        .await
        .context("apply the APIService")?;
    Ok(())
}

/// Creates namespace weir-system and the Service of config/metrics-api; with `endpoint`,
/// also an EndpointSlice pointing at it (a metrics API running in the test process).
pub async fn metrics_service(client: &Client, endpoint: Option<SocketAddr>) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": METRICS_NS}}))?;
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
    let (svc, _) = metrics_api_config()?;
    Api::<Service>::namespaced(client.clone(), METRICS_NS)
        .create(&PostParams::default(), &svc)
        .await
        .context("create the metrics Service")?;
    if let Some(addr) = endpoint {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "weir-metrics-local", "namespace": METRICS_NS,
                         "labels": {"kubernetes.io/service-name": METRICS_SERVICE}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]}))?;
        Api::<EndpointSlice>::namespaced(client.clone(), METRICS_NS)
            .create(&PostParams::default(), &slice)
            .await
            .context("create the metrics EndpointSlice")?;
    }
    Ok(())
}

/// GET of a path through the Kubernetes API (the aggregator for metrics.smi-spec.io).
pub async fn get_raw(client: &Client, path: &str) -> Result<Value> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(client.request::<Value>(req).await?)
}

/// The value of a metric in a TrafficMetrics document, as a number.
pub fn metric(doc: &Value, name: &str) -> Option<f64> {
    let m = doc["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?;
    weir_crds::smi::metrics::parse_metric_quantity(m["value"].as_str()?).ok()
}

/// The operator's Deployment in weir-system as the demo and the tests run it: the real
/// `weir-operator` (`image`, run by the simulator) as ServiceAccount weir-operator, serving
/// the TrafficMetrics API with `cert` and `key`, scraping the gateways every 250 ms.
pub fn operator_deployment(
    image: &str,
    cert: &Path,
    key: &Path,
) -> Result<k8s_openapi::api::apps::v1::Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "weir-operator", "namespace": METRICS_NS},
        "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "weir-operator"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "weir-operator"}},
                "spec": {"serviceAccountName": "weir-operator",
                    "containers": [{"name": "operator", "image": image,
                    "args": ["--metrics-api-addr", "$(POD_IP):8443",
                             "--metrics-addr", "$(POD_IP):8081",
                             "--tls-cert-file", cert.display().to_string(),
                             "--tls-private-key-file", key.display().to_string(),
                             "--scrape-interval", "250ms", "--auth-refresh", "1s",
                             "--source-timeout-seconds", "3", "--lease-seconds", "5",
                             "--resync-seconds", "5"],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "RUST_LOG", "value": "info,kube=warn"}],
                    "ports": [{"name": "https", "containerPort": 8443}]}]}}}}))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_read_as_a_number_and_a_missing_one_is_none() {
        let doc = json!({"metrics": [
            {"name": "success_count", "value": "398"},
            {"name": "p99_response_latency", "value": "12m"}]});
        assert_eq!(metric(&doc, "success_count"), Some(398.0));
        assert_eq!(metric(&doc, "p99_response_latency"), Some(0.012));
        assert_eq!(metric(&doc, "failure_count"), None);
        assert_eq!(metric(&json!({}), "success_count"), None);
    }
}
