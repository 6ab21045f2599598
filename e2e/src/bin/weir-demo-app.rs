//! `weir-demo-app`: the demo app as a process. Behaviour comes from the
//! image-style version and env (`VERSION`, `ERROR_RATE`, `LATENCY_MS`,
//! `LATENCY_JITTER_MS`, `POD_NAME`), exactly as in a simulated pod.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use weir_e2e::demo_app::{self, DemoConfig};

/// Serve the Weir demo app.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Image reference whose tag is the version (as a pod's image would be).
    #[arg(long, default_value = "weir-demo:latest")]
    image: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cfg = DemoConfig::from_image_env(&args.image, &env)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, version = %cfg.version, "demo app serving");
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    demo_app::serve(listener, cfg, stop).await;
    Ok(())
}
