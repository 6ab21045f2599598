//! The workload simulator: a kube-rs client program that plays the parts of
//! a one-node cluster that the API server does not — the Deployment and
//! ReplicaSet controllers, the EndpointSlice controller, kubelet and
//! kube-proxy — against any API server, local or real.
//!
//! ```text
//!            watch (reflectors)                     writes (Api)
//!  API ──► Deployments, ReplicaSets, Pods, ──► controllers ──► ReplicaSets, Pods, status
//!          Services, EndpointSlices         ├► endpoints   ──► EndpointSlices, Endpoints, clusterIP
//!                                           ├► kubelet     ──► pod status, Events; runs programs
//!                                           └► kube-proxy  ──► listens on clusterIP:port
//! ```
//!
//! Each role is a level-triggered loop: any watch event (or a resync tick)
//! wakes it, and it reconciles everything from the reflector stores.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

mod cache;
mod controllers;
pub mod deployment;
pub mod endpoints;
pub mod index;
pub mod ipam;
mod kube_proxy;
pub mod kubelet;
pub mod names;
mod node;
mod recorder;
mod services;

#[cfg(test)]
mod fixtures;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{action} {object}: {source}")]
    Kube {
        /// What we were doing (`create`, `patch status`, …).
        action: &'static str,
        /// `kind namespace/name` of the object concerned.
        object: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The initial list of a watched kind did not complete.
    #[error("initial sync of {kind} did not complete within {timeout:?}")]
    SyncTimeout {
        /// The kind being listed.
        kind: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Result alias for the simulator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the simulator runs.
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Play the Deployment, ReplicaSet and EndpointSlice controllers and
    /// allocate ClusterIPs. Off for kubelet-only mode against a real API
    /// server with a kube-controller-manager.
    pub controllers: bool,
    /// Play kube-proxy: listen on every Service's 127.x ClusterIP.
    pub kube_proxy: bool,
    /// This kubelet's node; it runs pods bound to it (and, with
    /// `controllers`, unbound ones; without, it binds them and registers
    /// the Node).
    pub node_name: String,
    /// Directories searched for `weir-proxy` and `weir-operator`; empty:
    /// `WEIR_BIN_DIR`, then next to the current executable, then `target/debug`.
    pub binaries: Vec<PathBuf>,
    /// The kubeconfig handed to `weir-proxy` and `weir-operator` pods.
    pub kubeconfig: Option<PathBuf>,
    /// Where pod processes write `<ns>_<pod>_<container>.log`; `None`: inherit.
    pub log_dir: Option<PathBuf>,
    /// Where containers' output is kept for `kubectl logs`; hand the same store to the API
    /// server ([`crate::apiserver::Handle::serve_pod_logs`]).
    pub pod_logs: std::sync::Arc<crate::pod_logs::PodLogs>,
    /// Pod IP range (base, prefix length).
    pub pod_cidr: (Ipv4Addr, u8),
    /// ClusterIP range (base, prefix length).
    pub service_cidr: (Ipv4Addr, u8),
    /// Full reconcile at least this often, even without watch events.
    pub resync: Duration,
}

// === impl SimulatorOptions ===

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            controllers: true,
            kube_proxy: true,
            node_name: "weir-local".into(),
            binaries: Vec::new(),
            kubeconfig: None,
            log_dir: None,
            pod_logs: crate::pod_logs::PodLogs::new(),
            pod_cidr: (Ipv4Addr::new(127, 1, 0, 0), 16),
            service_cidr: (Ipv4Addr::new(127, 96, 0, 0), 16),
            resync: Duration::from_secs(5),
        }
    }
}

/// A task that is aborted when this handle is dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

// === impl AbortOnDrop ===

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running simulator; dropping it stops every role, server and process.
#[derive(Debug)]
pub struct Simulator {
    shutdown: CancellationToken,
    /// Watches and roles that can simply be aborted.
    tasks: JoinSet<()>,
    /// The kubelet, which stops its pods gracefully on shutdown.
    kubelet: Option<AbortOnDrop>,
}

// === impl Simulator ===

impl Simulator {
    /// Starts every role and waits for the initial lists to sync.
    pub async fn start(client: Client, opts: SimulatorOptions) -> Result<Self> {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let caches = cache::Caches::start(&client, &opts, &mut tasks);
        caches.wait_synced(Duration::from_secs(30)).await?;
        if !opts.controllers && node::register(&client, &opts).await? {
            tasks.spawn(node::heartbeat(
                client.clone(),
                opts.clone(),
                shutdown.clone(),
            ));
        }
        if opts.controllers {
            let ctrl = controllers::Controllers::new(client.clone(), caches.clone());
            tasks.spawn(ctrl.run(opts.resync, shutdown.clone()));
            let svcs = services::ServiceController::new(client.clone(), caches.clone(), &opts);
            tasks.spawn(svcs.run(opts.resync, shutdown.clone()));
        }
        let kubelet = kubelet::Kubelet::new(client.clone(), caches.clone(), &opts);
        let kubelet = AbortOnDrop(tokio::spawn(kubelet.run(opts.resync, shutdown.clone())));
        if opts.kube_proxy {
            let proxy = kube_proxy::KubeProxy::new(caches.clone());
            tasks.spawn(proxy.run(opts.resync, shutdown.clone()));
        }
        Ok(Self {
            shutdown,
            tasks,
            kubelet: Some(kubelet),
        })
    }

    /// Stops every role; pod processes get SIGTERM, then SIGKILL.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(mut kubelet) = self.kubelet.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(10), &mut kubelet.0).await;
            if stopped.is_err() {
                tracing::warn!("kubelet did not stop its pods in 10s; killing them");
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs the simulator until `shutdown` is cancelled, then stops it.
pub async fn run(
    client: Client,
    opts: SimulatorOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    let sim = Simulator::start(client, opts).await?;
    shutdown.cancelled().await;
    sim.shutdown().await;
    Ok(())
}

/// Paces a role's reconcile loop: a pass runs after a change or a resync
/// tick, and after a change the loop first waits as long as the last pass
/// took (5 ms to 250 ms), so a burst of events costs a bounded share of CPU
/// however large the cluster.
pub(crate) struct Pacer {
    changes: tokio::sync::watch::Receiver<u64>,
    resync: Duration,
    started: tokio::time::Instant,
}

// === impl Pacer ===

impl Pacer {
    /// A pacer woken by `changes`, and at least every `resync`.
    pub(crate) fn new(changes: tokio::sync::watch::Receiver<u64>, resync: Duration) -> Self {
        Self {
            changes,
            resync,
            started: tokio::time::Instant::now(),
        }
    }

    /// Waits until the next pass is due; false when shutting down.
    pub(crate) async fn next(&mut self, shutdown: &CancellationToken) -> bool {
        let spent = self.started.elapsed();
        tokio::select! {
            () = shutdown.cancelled() => return false,
            _ = self.changes.changed() => {}
            () = tokio::time::sleep(self.resync) => {}
        }
        let gap = spent.clamp(Duration::from_millis(5), Duration::from_millis(250));
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(gap) => {}
        }
        self.changes.mark_unchanged();
        self.started = tokio::time::Instant::now();
        true
    }
}

/// A span carrying an object's namespace and name.
pub(crate) fn span<K: kube::Resource>(kind: &'static str, obj: &K) -> tracing::Span {
    let meta = obj.meta();
    tracing::info_span!(
        "reconcile",
        kind,
        namespace = meta.namespace.as_deref().unwrap_or_default(),
        name = meta.name.as_deref().unwrap_or_default(),
    )
}

/// `kind ns/name` for error messages and logs.
pub(crate) fn describe<K: kube::Resource>(obj: &K) -> String
where
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let meta = obj.meta();
    format!(
        "{kind} {}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Now, truncated to whole seconds as the API server stores times.
pub(crate) fn now_secs() -> k8s_openapi::jiff::Timestamp {
    use k8s_openapi::jiff::Timestamp;
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn pacer_waits_as_long_as_the_last_pass_took_and_ticks_on_resync() {
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let mut pacer = Pacer::new(rx, Duration::from_secs(5));
        let stop = CancellationToken::new();
        tokio::time::sleep(Duration::from_millis(100)).await; // a 100 ms pass
        tx.send_modify(|n| *n += 1);
        let t0 = Instant::now();
        assert!(pacer.next(&stop).await);
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
        let t1 = Instant::now();
        assert!(pacer.next(&stop).await);
        assert_eq!(t1.elapsed(), Duration::from_millis(5005));
        tokio::time::sleep(Duration::from_secs(2)).await; // a very slow pass
        tx.send_modify(|n| *n += 1);
        let t2 = Instant::now();
        assert!(pacer.next(&stop).await);
        assert_eq!(t2.elapsed(), Duration::from_millis(250));
        stop.cancel();
        assert!(!pacer.next(&stop).await);
    }
}
