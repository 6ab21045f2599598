//! The namespace gateway the operator runs (`weir-proxy` in a simulated Pod), seen from a
//! test: where its admin port is, and whether its config already holds what the test is
//! about to send traffic through, read from `/config` (the snapshot as JSON).

use super::client_pod::ClientPod;
use super::eventually::eventually;
use anyhow::{Context as _, Result, ensure};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use weir_operator::children::{GATEWAY_ADMIN_PORT, GATEWAY_NAME};

/// A namespace's running gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The gateway Pod's name.
    pub pod: String,
    /// Its admin listener (`/config`, `/metrics`, `/ready`).
    pub admin: SocketAddr,
}

// === impl Gateway ===

impl Gateway {
    /// Waits up to `secs` for the gateway Deployment of `namespace` to be available, and
    /// returns its ready Pod.
    pub async fn find(client: &Client, namespace: &str, secs: u64) -> Result<Self> {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        eventually(secs, "the gateway available", || async {
            let d = deployments.get(GATEWAY_NAME).await?;
            let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
            ensure!(available >= 1, "{available} available replicas");
            let lp =
                ListParams::default().labels(&format!("app.kubernetes.io/name={GATEWAY_NAME}"));
            let pod = pods
                .list(&lp)
                .await?
                .items
                .into_iter()
                .find(|p| p.metadata.deletion_timestamp.is_none())
                .context("no gateway Pod")?;
            let ip: Ipv4Addr = pod
                .status
                .and_then(|s| s.pod_ip)
                .context("the gateway Pod has no IP")?
                .parse()?;
            Ok(Self {
                pod: pod.metadata.name.unwrap_or_default(),
                admin: SocketAddr::new(IpAddr::V4(ip), GATEWAY_ADMIN_PORT as u16),
            })
        })
        .await
    }

    /// The gateway's current config snapshot.
    pub async fn config(&self) -> Result<Value> {
        let client: HttpClient<_, Empty<bytes::Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build_http();
        let url = format!("http://{}/config", self.admin);
        let rsp = tokio::time::timeout(Duration::from_secs(5), client.get(url.parse()?))
            .await
            .context("GET /config timed out")??;
        ensure!(rsp.status().is_success(), "GET {url}: {}", rsp.status());
        let body = rsp.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// Waits up to `secs` until the gateway's config splits root Service `root` of
    /// `namespace` exactly as `weights` (backend Service → relative weight), every backend
    /// with a weight has a ready endpoint, and every one of `clients` is a known Pod with a
    /// TrafficTarget from [`ClientPod::allow`] in force.
    pub async fn wait_for_split(
        &self,
        namespace: &str,
        root: &str,
        weights: &[(&str, u64)],
        clients: &[&ClientPod],
        secs: u64,
    ) -> Result<()> {
        let what = format!("the gateway to route {namespace}/{root} as {weights:?}");
        eventually(secs, &what, || async {
            let config = self.config().await?;
            check_split(&config, namespace, root, weights)?;
            for client in clients {
                let pod = &config["pods_by_ip"][client.ip.to_string()];
                ensure!(
                    pod["name"] == client.name.as_str(),
                    "client Pod {} ({}) unknown to the gateway: {pod}",
                    client.name,
                    client.ip
                );
                // The TrafficTargets `ClientPod::allow` made must be in force with their rule
                // (their route group seen too): watches of different kinds arrive in any order.
                let prefix = format!("{}/{}-to-", client.namespace, client.name);
                let targets = &config["traffic_targets"];
                let in_force = targets.as_object().is_some_and(|t| {
                    t.iter()
                        .any(|(name, rules)| name.starts_with(&prefix) && rules.as_u64() >= Some(1))
                });
                ensure!(
                    in_force,
                    "no TrafficTarget {prefix}* with a rule in force at the gateway: {targets}"
                );
            }
            Ok(())
        })
        .await
    }
}

/// `Ok` when `config` splits `root` as `weights`, each weighted backend with an endpoint.
fn check_split(config: &Value, namespace: &str, root: &str, weights: &[(&str, u64)]) -> Result<()> {
    let route = &config["routes"][namespace][root];
    let backends = route["split"]["backends"]
        .as_array()
        .with_context(|| format!("no split for {namespace}/{root}: {route}"))?;
    let seen: Vec<(String, u64, usize)> = backends
        .iter()
        .map(|b| {
            let endpoints = b["target"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["endpoints"].as_array().map_or(0, Vec::len))
                .sum();
            let name = b["target"]["name"].as_str().unwrap_or_default().to_string();
            (
                name,
                b["weight_millis"].as_u64().unwrap_or(0) / 1000,
                endpoints,
            )
        })
        .collect();
    let want: Vec<(String, u64)> = weights.iter().map(|(n, w)| (n.to_string(), *w)).collect();
    let got: Vec<(String, u64)> = seen.iter().map(|(n, w, _)| (n.clone(), *w)).collect();
    ensure!(got == want, "split (backend, weight, endpoints): {seen:?}");
    ensure!(
        seen.iter().all(|(_, w, e)| *w == 0 || *e > 0),
        "a weighted backend without endpoints: {seen:?}"
    );
    Ok(())
}

/// The ClusterIP and port of Service `name` in `namespace`.
pub async fn cluster_ip(client: &Client, namespace: &str, name: &str) -> Result<SocketAddr> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let spec = services.get(name).await?.spec.context("no spec")?;
    let ip: Ipv4Addr = spec.cluster_ip.context("no ClusterIP")?.parse()?;
    let port = spec
        .ports
        .into_iter()
        .flatten()
        .next()
        .context("no port")?
        .port;
    Ok(SocketAddr::new(IpAddr::V4(ip), u16::try_from(port)?))
}
