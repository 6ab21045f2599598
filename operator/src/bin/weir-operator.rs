//! `weir-operator`: the Rollout controller. Only the holder of the Lease writes.

use anyhow::Context as _;
use clap::Parser;
use kube_lease_manager::LeaseManagerBuilder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use weir_crds::rollout::Verdict;
use weir_operator::checks::{CheckSource, FixedVerdict, NoMetrics};
use weir_operator::controller::{self, Config, Context};
use weir_operator::metrics::{self, Metrics};

/// Weir's Rollout controller.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of /metrics, /ready and /live.
    #[arg(long, default_value = "0.0.0.0:8081")]
    metrics_addr: SocketAddr,
    /// Do not run a weir-proxy gateway in namespaces with Rollouts.
    #[arg(long)]
    no_gateway: bool,
    /// The gateway's image.
    #[arg(long, default_value = concat!("weir-proxy:", env!("CARGO_PKG_VERSION")))]
    gateway_image: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "weir-operator")]
    lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// Reconcile every Rollout at least this often (seconds).
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// Judge every check with this verdict (Pass or Fail) instead of metrics; for tests and demos.
    #[arg(long, hide = true)]
    fixed_verdict: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let args = Args::parse();
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration")?;
    let metrics = Arc::new(Metrics::default());
    tokio::spawn(metrics::serve(args.metrics_addr, metrics.clone()));
    let checks: Arc<dyn CheckSource> = match args.fixed_verdict.as_deref() {
        None => Arc::new(NoMetrics),
        Some("Pass") => Arc::new(FixedVerdict(Verdict::Pass)),
        Some("Fail") => Arc::new(FixedVerdict(Verdict::Fail)),
        Some(other) => anyhow::bail!("--fixed-verdict {other:?}: use Pass or Fail"),
    };
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("weir-operator-{}", std::process::id()));
    let config = Config {
        gateway: !args.no_gateway,
        gateway_image: args.gateway_image.clone(),
        resync: Duration::from_secs(args.resync_seconds),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics,
        checks,
        config,
        Some(identity.clone()),
    ));
    let lease = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_seconds)
        .with_grace(args.lease_seconds.div_ceil(3).max(1))
        .build()
        .await
        .context("cannot set up the leader-election Lease")?;
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(%identity, "waiting for leadership");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            changed = leader.changed() => changed.context("the lease manager stopped")?,
        }
        if *leader.borrow_and_update() {
            break;
        }
    }
    tracing::info!(%identity, "leading: starting the controller");
    let mut lost = leader.clone();
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { while lost.changed().await.is_ok() { if !*lost.borrow() { break; } } } => {
                tracing::warn!("lost leadership: stopping");
            }
        }
    };
    controller::run(ctx, shutdown).await;
    drop(leader);
    let _ = lease_task.await;
    Ok(())
}
