//! `weir-demo`: a progressive rollout on this machine with the real programs (see
//! `weir_e2e::demo`). Exits 0 when v2 was promoted and v3 rolled back, 1 otherwise.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use weir_e2e::demo::source::SourceChoice;
use weir_e2e::demo::{self, DemoOptions};

/// Runs Weir's demo: Rollout foobar v1 → healthy v2 (promoted) → v3 failing 20% of
/// requests (rolled back), on a local control plane, with live progress.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Leave the cluster, the operator and the traffic up after the story, until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Where the kubeconfig, certificates and pod output go (default: a new directory in
    /// the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The longest each update may take, in seconds.
    #[arg(long, default_value_t = 60)]
    update_timeout: u64,
    /// Where the analysis reads metrics: `prometheus` starts the `prometheus` on PATH,
    /// scraping the gateway (an error when it is not installed); `traffic-metrics` reads the
    /// SMI TrafficMetrics API weir-operator serves; `auto` takes Prometheus when installed.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    metrics_source: SourceChoice,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("weir-demo-{}", std::process::id())));
    let summary = demo::run(DemoOptions {
        dir,
        bin_dir: demo::cluster::bin_dir()?,
        update_timeout: Duration::from_secs(args.update_timeout),
        keep_running: args.keep_running,
        metrics_source: args.metrics_source,
    })
    .await?;
    let c = &summary.clients;
    println!(
        "\nSummary ({:.0}s, metrics source {:?}): v2 {:?}; v3 {:?}\nclients: {} ok, {} non-2xx, {} without answer; by version {:?}",
        summary.elapsed.as_secs_f64(),
        summary.source,
        summary.v2,
        summary.v3,
        c.ok,
        c.non_2xx,
        c.errors,
        c.by_version
    );
    if summary.problems.is_empty() {
        println!(
            "The story happened: v2 was promoted step by step, v3 was rolled back by analysis."
        );
        Ok(())
    } else {
        for p in &summary.problems {
            eprintln!("weir-demo: {p}");
        }
        std::process::exit(1);
    }
}
