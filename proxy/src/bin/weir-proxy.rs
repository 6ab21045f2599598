//! `weir-proxy`: parses the command line and runs the gateway until SIGTERM.

use clap::Parser;
use weir_proxy::app::{self, Args};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut rt = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if args.threads > 1 {
        rt.worker_threads(args.threads);
    }
    rt.enable_all().build()?.block_on(async {
        let running = app::start(&args, args.source().await?).await?;
        app::shutdown_signal().await?;
        running.shutdown();
        running.wait().await;
        Ok(())
    })
}
