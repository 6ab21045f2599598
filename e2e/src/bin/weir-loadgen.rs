//! `weir-loadgen`: HTTP/1.1 keep-alive load from a client pod's IP, with a
//! report of status codes, versions and latency percentiles.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use weir_e2e::loadgen::{self, LoadOptions, Mode};

/// Send HTTP load to a Service or pod and report what came back.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// `ip:port` to connect to (a ClusterIP in 127.96.x, or a pod IP).
    #[arg(long)]
    target: SocketAddr,
    /// The Host header.
    #[arg(long, default_value = "foobar")]
    host: String,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Source IP to bind (a client pod's IP); default: any.
    #[arg(long)]
    source: Option<IpAddr>,
    /// Requests per second; omit for closed-loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Longest run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Most requests to send.
    #[arg(long)]
    requests: Option<u64>,
    /// Per-request timeout, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.duration_secs > 0.0 && args.duration_secs <= 86_400.0,
        "duration out of range"
    );
    let opts = LoadOptions {
        target: args.target,
        host: args.host,
        path: args.path,
        source: args.source,
        mode: args.rate.map_or(Mode::ClosedLoop, Mode::FixedRate),
        connections: args.connections,
        duration: Duration::from_secs_f64(args.duration_secs),
        max_requests: args.requests,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let summary = loadgen::run(opts).await.summary();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}
