//! `weir-local-cluster`: the in-memory API server plus the workload simulator, like a one-node
//! cluster, until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::{self, SimulatorOptions};

/// Runs Weir's local control plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to write the kubeconfig for kubectl and kube-rs clients.
    #[arg(long, env = "WEIR_KUBECONFIG_OUT")]
    kubeconfig_out: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Run the API server alone, without the workload simulator.
    #[arg(long)]
    no_simulator: bool,
    /// Changes kept for watch resumption; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Directory for pod process logs (default: inherit stdout/stderr).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
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
    let opts = Options {
        port: args.port,
        kubeconfig_path: Some(args.kubeconfig_out.clone()),
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
    let stop = CancellationToken::new();
    let sim = if args.no_simulator {
        None
    } else {
        let client = server.client().await.context("building a client")?;
        let sim_opts = SimulatorOptions {
            kubeconfig: Some(args.kubeconfig_out.clone()),
            log_dir: args.log_dir.clone(),
            ..SimulatorOptions::default()
        };
        Some(tokio::spawn(simulator::run(client, sim_opts, stop.clone())))
    };
    terminated().await;
    tracing::info!("shutting down");
    stop.cancel();
    if let Some(sim) = sim {
        match sim.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "simulator stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "simulator task failed"),
        }
    }
    server.shutdown().await;
    Ok(())
}
