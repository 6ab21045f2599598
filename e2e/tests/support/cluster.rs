//! A local API server and workload simulator on address blocks this test process holds, so
//! tests running in parallel, and two copies of the suite at once, never share an address.

use anyhow::{Context as _, Result};
use kube::{Api, Client};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};
use weir_e2e::simulator::ipam::ClaimedBlock;
use weir_e2e::simulator::{Simulator, SimulatorOptions};

/// The loopback blocks one cluster uses, held for as long as this value lives.
#[derive(Debug)]
pub struct Net {
    /// Pod IPs.
    pub pods: ClaimedBlock,
    /// Service ClusterIPs (the API server allocates them from here).
    pub services: ClaimedBlock,
    /// Addresses for processes the test starts itself (an operator's metrics port, a
    /// client's source address): [`Net::host`] hands them out.
    pub hosts: ClaimedBlock,
}

// === impl Net ===

impl Net {
    /// Claims a /24 each for pods, services and the test's own processes.
    pub fn claim() -> Result<Self> {
        Ok(Self {
            pods: ClaimedBlock::claim(24)?,
            services: ClaimedBlock::claim(24)?,
            hosts: ClaimedBlock::claim(24)?,
        })
    }

    /// API server options allocating ClusterIPs from [`Net::services`].
    pub fn server_options(&self) -> Options {
        Options {
            service_cidr: self.services.cidr(),
            ..Options::default()
        }
    }

    /// Simulator options on these ranges, handing pods `kubeconfig`, resyncing every 2 s.
    pub fn simulator_options(&self, kubeconfig: &Path) -> SimulatorOptions {
        SimulatorOptions {
            pod_cidr: self.pods.cidr(),
            service_cidr: self.services.cidr(),
            kubeconfig: Some(kubeconfig.to_path_buf()),
            resync: Duration::from_secs(2),
            ..SimulatorOptions::default()
        }
    }

    /// The `n`th address of the test's own block (1 to 254), for a listener or a source.
    pub fn host(&self, n: u8) -> Result<Ipv4Addr> {
        anyhow::ensure!((1..=254).contains(&n), "host {n} outside 1..=254");
        self.hosts.nth(u32::from(n)).context("host address")
    }

    /// The `n`th ClusterIP of the service block, for a Service created with a fixed IP.
    /// The API server allocates from the start of the block, so take high `n`s (200+).
    pub fn cluster_ip(&self, n: u8) -> Result<Ipv4Addr> {
        self.services.nth(u32::from(n)).context("cluster IP")
    }
}

/// A local API server, a simulator and a client, on this process's own [`Net`].
pub struct LocalCluster {
    /// The API server.
    pub server: Handle,
    /// The simulator, until [`LocalCluster::stop`].
    pub sim: Option<Simulator>,
    /// An admin client of the API server.
    pub client: Client,
    /// The address blocks (dropped last, after the processes using them).
    pub net: Net,
}

// === impl LocalCluster ===

impl LocalCluster {
    /// Starts a cluster whose simulator options `configure` may adjust.
    pub async fn start(configure: impl FnOnce(&mut SimulatorOptions)) -> Result<Self> {
        let net = Net::claim()?;
        let server = LocalApiServer::start(net.server_options())
            .await
            .context("start the local API server")?;
        let client = server.client().await?;
        let mut opts = net.simulator_options(server.kubeconfig_path());
        configure(&mut opts);
        server.serve_pod_logs(opts.pod_logs.clone());
        let sim = Simulator::start(client.clone(), opts)
            .await
            .context("start the simulator")?;
        Ok(Self {
            server,
            sim: Some(sim),
            client,
            net,
        })
    }

    /// An API of a namespaced kind in `default`.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Stops the simulator (its pods get SIGTERM), then the API server.
    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.server.shutdown().await;
    }
}
