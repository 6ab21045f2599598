//! The demo's cluster: the local control plane and simulator, Weir installed into it
//! (CRDs, the metrics API's Service and APIService), the real `weir-operator` as a Pod, and
//! the client Pods a TrafficTarget lets call `foobar`.

use super::story::NAMESPACE;
use crate::apiserver::{Handle, LocalApiServer, Options};
use crate::client_pod::ClientPod;
use crate::eventually::eventually;
use crate::install::{self, METRICS_NS, ServingCert};
use crate::simulator::ipam::ClaimedBlock;
use crate::simulator::{Simulator, SimulatorOptions};
use anyhow::{Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The binaries the demo's pods and commands run, looked up next to the demo's own binary.
pub const BINARIES: [&str; 3] = ["weir-operator", "weir-proxy", "kubectl-weir"];

/// The client Pods (each with its own ServiceAccount) sending traffic to `foobar`.
pub const CLIENTS: [&str; 2] = ["frontend", "batch"];

/// A running demo cluster.
pub struct DemoCluster {
    /// The API server.
    pub server: Handle,
    sim: Option<Simulator>,
    /// An admin client.
    pub client: Client,
    /// Where the binaries are (`WEIR_BIN_DIR`, else next to the demo's binary).
    pub bin_dir: PathBuf,
    /// Where each pod's output goes.
    pub log_dir: PathBuf,
    /// The client Pods.
    pub clients: Vec<ClientPod>,
    _cert: ServingCert,
    _blocks: [ClaimedBlock; 2],
}

/// The directory holding Weir's binaries: `WEIR_BIN_DIR`, else the demo binary's own.
/// Fails naming each binary missing there and the command that builds them.
pub fn bin_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("WEIR_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()
            .context("the demo binary's path")?
            .parent()
            .context("the demo binary has no directory")?
            .to_path_buf(),
    };
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{} is missing {}: build them with the demo, `cargo build --release --workspace --bins` \
         (scripts/demo.sh does), or set WEIR_BIN_DIR",
        dir.display(),
        missing.join(", ")
    );
    Ok(dir)
}

// === impl DemoCluster ===

impl DemoCluster {
    /// Starts the control plane with its kubeconfig at `kubeconfig`, installs Weir, starts
    /// the operator (from `bin_dir`, see [`bin_dir`]) and the client Pods; `say` reports each
    /// stage.
    pub async fn start(
        dir: &Path,
        kubeconfig: &Path,
        bin_dir: &Path,
        say: impl Fn(String),
    ) -> Result<Self> {
        let bin_dir = bin_dir.to_path_buf();
        let log_dir = dir.join("logs");
        std::fs::create_dir_all(&log_dir).with_context(|| log_dir.display().to_string())?;
        let pods = ClaimedBlock::claim(24).context("claim a pod range")?;
        let services = ClaimedBlock::claim(24).context("claim a service range")?;
        let server = LocalApiServer::start(Options {
            kubeconfig_path: Some(kubeconfig.to_path_buf()),
            service_cidr: services.cidr(),
            ..Options::default()
        })
        .await
        .context("start the local API server")?;
        let client = server
            .client()
            .await
            .context("a client of the API server")?;
        let pod_logs = crate::pod_logs::PodLogs::new();
        server.serve_pod_logs(pod_logs.clone());
        let sim = Simulator::start(
            client.clone(),
            SimulatorOptions {
                pod_logs,
                pod_cidr: pods.cidr(),
                service_cidr: services.cidr(),
                kubeconfig: Some(kubeconfig.to_path_buf()),
                binaries: vec![bin_dir.clone()],
                log_dir: Some(log_dir.clone()),
                resync: Duration::from_secs(1),
                ..SimulatorOptions::default()
            },
        )
        .await
        .context("start the simulator")?;
        say(format!(
            "control plane up at {} (pods on {}/{}, pod output in {})",
            server.url(),
            pods.cidr().0,
            pods.cidr().1,
            log_dir.display()
        ));
        let crds = install::install_crds(&client).await?;
        install::install_rbac(&client).await?;
        install::metrics_service(&client, None).await?;
        let cert = install::write_serving_cert(&dir.join("serving-cert"))?;
        install::register_apiservice(&client, &cert.ca_pem).await?;
        say(format!(
            "installed {} CRDs, config/rbac (the operator runs as ServiceAccount \
             {METRICS_NS}/weir-operator) and config/metrics-api (Service \
             {METRICS_NS}/weir-metrics, APIService v1alpha1.metrics.smi-spec.io)",
            crds.len()
        ));
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), METRICS_NS);
        deployments
            .create(
                &PostParams::default(),
                &install::operator_deployment("weir-operator:demo", &cert.cert, &cert.key)?,
            )
            .await
            .context("create the operator Deployment")?;
        eventually(60, "the weir-operator Pod available", || async {
            let d = deployments.get("weir-operator").await?;
            let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
            anyhow::ensure!(available >= 1, "{available} available");
            Ok(())
        })
        .await?;
        say(format!(
            "weir-operator running as a Pod in {METRICS_NS} ({})",
            bin_dir.join("weir-operator").display()
        ));
        let mut clients = Vec::new();
        for name in CLIENTS {
            let pod = ClientPod::start(&client, NAMESPACE, name).await?;
            pod.allow(&client, "default").await?;
            say(format!(
                "client Pod {name} at {} (ServiceAccount {name}), allowed by TrafficTarget {}",
                pod.ip,
                pod.target_name("default")
            ));
            clients.push(pod);
        }
        Ok(Self {
            server,
            sim: Some(sim),
            client,
            bin_dir,
            log_dir,
            clients,
            _cert: cert,
            _blocks: [pods, services],
        })
    }

    /// The namespace gateway's data address, once its Pod is Ready.
    pub async fn gateway(&self) -> Result<SocketAddr> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let ip: Ipv4Addr = eventually(60, "the gateway Pod Ready", || async {
            let list = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=weir-gateway"))
                .await?;
            let pod = list.items.into_iter().next().context("no gateway Pod")?;
            let status = pod.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            anyhow::ensure!(ready, "gateway Pod not Ready");
            Ok(status.pod_ip.context("no IP")?.parse()?)
        })
        .await?;
        Ok(SocketAddr::new(IpAddr::V4(ip), 8080))
    }

    /// Stops the simulator (its pods get SIGTERM), then the API server.
    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.server.shutdown().await;
    }
}
