//! `kubectl-weir`: the kubectl plugin (`kubectl weir …`). Parses the command line and runs
//! it; everything else is in `weir_operator::plugin`.

use clap::Parser;
use std::process::ExitCode;
use weir_operator::controller::chain;
use weir_operator::plugin::{self, cli::Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs only when asked for: a watch redraws the terminal, so stray lines would tear it.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBECTL_WEIR_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(plugin::Exit::Failed.code());
        }
    };
    match runtime.block_on(plugin::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(plugin::Exit::Failed.code())
        }
    }
}
