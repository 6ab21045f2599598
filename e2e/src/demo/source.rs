//! Which metrics source the demo's analysis reads: the SMI TrafficMetrics API the operator
//! serves, or a real Prometheus the demo starts and points at the gateway pods.

use crate::eventually::eventually;
use crate::prometheus::{self, Prometheus};
use crate::simulator::ipam::ClaimedBlock;
use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use weir_operator::children::GATEWAY_ADMIN_PORT;

/// What `--metrics-source` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    /// The SMI TrafficMetrics API served by weir-operator.
    TrafficMetrics,
    /// A Prometheus the demo starts (fails when `prometheus` is not installed).
    Prometheus,
    /// Prometheus when installed, else the TrafficMetrics API.
    Auto,
}

/// The source the demo uses, decided before anything starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The TrafficMetrics API.
    TrafficMetrics,
    /// A Prometheus started by the demo.
    Prometheus,
}

/// Resolves `choice` given whether Prometheus is installed; an explicit `prometheus` without
/// it is an error naming the install step.
pub fn resolve(choice: SourceChoice, installed: bool) -> Result<Source> {
    match (choice, installed) {
        (SourceChoice::TrafficMetrics, _) | (SourceChoice::Auto, false) => {
            Ok(Source::TrafficMetrics)
        }
        (SourceChoice::Prometheus | SourceChoice::Auto, true) => Ok(Source::Prometheus),
        (SourceChoice::Prometheus, false) => anyhow::bail!(
            "--metrics-source prometheus: prometheus is not installed ({})",
            prometheus::INSTALL
        ),
    }
}

/// The Rollout's `analysis.source` line for a Prometheus at `address` (`None`: the
/// TrafficMetrics API, the default when the field is absent).
pub fn source_yaml(prometheus: Option<SocketAddr>) -> String {
    match prometheus {
        Some(addr) => format!("      source: {{prometheus: {{address: \"http://{addr}\"}}}}\n"),
        None => String::new(),
    }
}

/// A Prometheus the demo runs, on the first address of a loopback block it holds.
pub struct DemoPrometheus {
    /// The process.
    pub server: Prometheus,
    _block: ClaimedBlock,
}

// === impl DemoPrometheus ===

impl DemoPrometheus {
    /// The address Prometheus will listen on, in a claimed block (held by the returned block).
    pub fn claim_address() -> Result<(ClaimedBlock, SocketAddr)> {
        let block = ClaimedBlock::claim(24).context("claim a block for Prometheus")?;
        let ip = block.nth(1).context("a /24 has a first address")?;
        Ok((block, SocketAddr::new(IpAddr::V4(ip), 9090)))
    }

    /// Starts Prometheus on `addr` (config and data in `dir`), scraping the admin port of
    /// every Ready gateway Pod of `namespace` every 500 ms, and waits until it scraped them.
    pub async fn start(
        client: &Client,
        namespace: &str,
        block: ClaimedBlock,
        addr: SocketAddr,
        dir: &Path,
    ) -> Result<(Self, Vec<SocketAddr>)> {
        let targets = gateway_admins(client, namespace).await?;
        let server = Prometheus::start(addr, dir, &targets, "500ms").await?;
        server.wait_scraping(targets.len()).await?;
        Ok((
            Self {
                server,
                _block: block,
            },
            targets,
        ))
    }
}

/// The admin addresses of the namespace's Ready gateway Pods (at least one, 60 s at most).
async fn gateway_admins(client: &Client, namespace: &str) -> Result<Vec<SocketAddr>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let port = u16::try_from(GATEWAY_ADMIN_PORT).context("the gateway's admin port")?;
    eventually(60, "a Ready gateway Pod with an IP", || async {
        let list = pods
            .list(&ListParams::default().labels("app.kubernetes.io/name=weir-gateway"))
            .await?;
        let admins: Vec<SocketAddr> = list
            .items
            .into_iter()
            .filter_map(|p| {
                let status = p.status?;
                let ready = status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let ip: IpAddr = status.pod_ip?.parse().ok()?;
                ready.then_some(SocketAddr::new(ip, port))
            })
            .collect();
        anyhow::ensure!(!admins.is_empty(), "no Ready gateway Pod");
        Ok(admins)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_prometheus_only_when_installed() {
        assert_eq!(
            resolve(SourceChoice::Auto, true).unwrap(),
            Source::Prometheus
        );
        assert_eq!(
            resolve(SourceChoice::Auto, false).unwrap(),
            Source::TrafficMetrics
        );
        assert_eq!(
            resolve(SourceChoice::TrafficMetrics, true).unwrap(),
            Source::TrafficMetrics
        );
        assert_eq!(
            resolve(SourceChoice::Prometheus, true).unwrap(),
            Source::Prometheus
        );
    }

    #[test]
    fn an_explicit_prometheus_that_is_missing_is_an_error() {
        let err = resolve(SourceChoice::Prometheus, false).unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
    }

    #[test]
    fn the_prometheus_source_names_its_address_and_the_default_writes_nothing() {
        let addr: SocketAddr = "127.140.2.1:9090".parse().unwrap();
        assert_eq!(
            source_yaml(Some(addr)),
            "      source: {prometheus: {address: \"http://127.140.2.1:9090\"}}\n"
        );
        assert_eq!(source_yaml(None), "");
    }
}
