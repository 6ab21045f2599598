//! `weir-local-cluster`: the in-memory API server plus the workload simulator, like a one-node
//! cluster, until SIGTERM or Ctrl-C. With `--kubelet-only --kubeconfig FILE` it runs no API
//! server: it joins the cluster FILE names as one simulated node that runs the pods bound to
//! it (the real kube-controller-manager plays the controllers).

use anyhow::Context;
use clap::Parser;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::ipam::parse_cidr;
use weir_e2e::simulator::{self, SimulatorOptions};

/// Runs Weir's local control plane, or (with --kubelet-only) one simulated node of an
/// existing cluster.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to write the kubeconfig for kubectl and kube-rs clients.
    #[arg(
        long,
        env = "WEIR_KUBECONFIG_OUT",
        required_unless_present = "kubelet_only"
    )]
    kubeconfig_out: Option<PathBuf>,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0, conflicts_with = "kubelet_only")]
    port: u16,
    /// Run the API server alone, without the workload simulator.
    #[arg(long, conflicts_with = "kubelet_only")]
    no_simulator: bool,
    /// Changes kept for watch resumption; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 10_000, conflicts_with = "kubelet_only")]
    history: usize,
    /// Run no API server: join the API server --kubeconfig names as a kubelet. It registers
    /// the node (with a Lease heartbeat), binds unscheduled pods to it and runs the pods
    /// bound to it; Deployments, EndpointSlices and ClusterIPs are left to that cluster.
    #[arg(long, requires = "kubeconfig")]
    kubelet_only: bool,
    /// With --kubelet-only: the kubeconfig of the cluster to join (also handed to the
    /// weir-proxy and weir-operator pods it runs).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The simulated node's name.
    #[arg(long, default_value = "weir-local")]
    node_name: String,
    /// Pod IPs come from this range inside 127.0.0.0/8.
    #[arg(long, default_value = "127.1.0.0/16", value_parser = parse_cidr)]
    pod_cidr: (Ipv4Addr, u8),
    /// Directory for pod process logs (default: inherit stdout/stderr).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// Runs the simulator until SIGTERM or Ctrl-C, or until it fails.
async fn simulate(client: kube::Client, opts: SimulatorOptions) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut sim = tokio::spawn(simulator::run(client, opts, stop.clone()));
    let done = tokio::select! {
        () = weir_e2e::terminated() => {
            tracing::info!("shutting down");
            stop.cancel();
            sim.await
        }
        done = &mut sim => done,
    };
    done.context("the simulator task failed")?
        .context("the simulator stopped")?;
    Ok(())
}

async fn kubelet_only(args: &Args) -> anyhow::Result<()> {
    let path = args
        .kubeconfig
        .clone()
        .context("--kubelet-only needs --kubeconfig FILE")?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("using {}", path.display()))?;
    println!(
        "weir-local-cluster: kubelet-only node {} on {}",
        args.node_name, config.cluster_url
    );
    let client = kube::Client::try_from(config).context("building a client")?;
    let opts = SimulatorOptions {
        controllers: false,
        kube_proxy: false,
        node_name: args.node_name.clone(),
        kubeconfig: Some(path),
        log_dir: args.log_dir.clone(),
        pod_cidr: args.pod_cidr,
        ..SimulatorOptions::default()
    };
    simulate(client, opts).await
}

async fn local_cluster(args: &Args) -> anyhow::Result<()> {
    let kubeconfig_out = args
        .kubeconfig_out
        .clone()
        .context("--kubeconfig-out is required")?;
    let opts = Options {
        port: args.port,
        kubeconfig_path: Some(kubeconfig_out.clone()),
        history: args.history,
        ..Options::default()
    };
    let server = LocalApiServer::start(opts)
        .await
        .context("starting the API server")?;
    println!(
        "weir-local-cluster: serving {} (kubeconfig {})",
        server.url(),
        server.kubeconfig_path().display()
    );
    let outcome = if args.no_simulator {
        weir_e2e::terminated().await;
        Ok(())
    } else {
        let client = server.client().await.context("building a client")?;
        let sim_opts = SimulatorOptions {
            kubeconfig: Some(kubeconfig_out),
            log_dir: args.log_dir.clone(),
            node_name: args.node_name.clone(),
            pod_cidr: args.pod_cidr,
            ..SimulatorOptions::default()
        };
        server.serve_pod_logs(sim_opts.pod_logs.clone());
        simulate(client, sim_opts).await
    };
    server.shutdown().await;
    outcome
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.kubelet_only {
        kubelet_only(&args).await
    } else {
        local_cluster(&args).await
    }
}
