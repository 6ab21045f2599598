//! The proxy's settings (the `weir-proxy` command line) and how the parts are started.

use crate::admin::Admin;
use crate::balance::Strategy;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::server::{self, ServerConfig};
use crate::snapshot::Snapshot;
use crate::source::{Publisher, Source};
use crate::stack::{self, Forward, StackConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What happens to a request that no TrafficTarget governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DefaultPolicy {
    /// Deny, as SMI says: only what a TrafficTarget allows goes through.
    #[default]
    Deny,
    /// Allow requests to destinations that no TrafficTarget names, from any client (for
    /// migration); destinations a TrafficTarget names are enforced as under `deny`.
    Allow,
}

/// The `weir-proxy` command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "weir-proxy",
    version,
    about = "Weir's gateway: routes by Host, enforces SMI TrafficSplits and access control, and applies TrafficPolicies"
)]
pub struct Args {
    /// The data listener. Defaults to $POD_IP:8080, or 0.0.0.0:8080 without POD_IP.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The admin listener (/metrics, /ready, /live, /config).
    #[arg(long, default_value = "0.0.0.0:9990")]
    pub admin: SocketAddr,
    /// The gateway's namespace: the namespace of bare `svc` hosts.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Read objects from this YAML file (reloaded on change) instead of the Kubernetes API.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// How often the config file is checked for changes, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub config_poll_ms: u64,
    /// In Kubernetes mode, watch every namespace instead of only --namespace.
    #[arg(long)]
    pub all_namespaces: bool,
    /// deny: only what a TrafficTarget allows goes through; allow: destinations that no
    /// TrafficTarget names take any client (for migration).
    #[arg(long, value_enum, default_value_t = DefaultPolicy::Deny)]
    pub default_policy: DefaultPolicy,
    /// How endpoints are chosen where no TrafficPolicy says.
    #[arg(long, value_enum, default_value_t = Strategy::P2cEwma)]
    pub load_balancer: Strategy,
    /// Milliseconds to wait for response headers where no TrafficPolicy sets a timeout (504 after).
    #[arg(long, default_value_t = 15_000)]
    pub default_timeout_ms: u64,
    /// Requests in flight at once; beyond it, each new request gets a 503.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Connections served at once; beyond it each gets a 503 and is closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay idle.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Milliseconds allowed to connect to an endpoint.
    #[arg(long, default_value_t = 1000)]
    pub connect_timeout_ms: u64,
    /// Seconds in-flight requests get to finish on SIGTERM.
    #[arg(long, default_value_t = 20)]
    pub drain_timeout_secs: u64,
    /// Largest request head in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Most request headers.
    #[arg(long, default_value_t = 100)]
    pub max_headers: usize,
    /// Tokio worker threads (1 for benchmarks); 0 means one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

// === impl Args ===

impl Args {
    /// The data listener address, honouring `POD_IP`.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            let ip = std::env::var("POD_IP")
                .ok()
                .and_then(|ip| ip.parse().ok())
                .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            SocketAddr::new(ip, 8080)
        })
    }

    /// The data path's settings.
    pub fn stack_config(&self) -> StackConfig {
        StackConfig {
            namespace: self.namespace.clone(),
            default_policy: self.default_policy,
            default_timeout: Duration::from_millis(self.default_timeout_ms.max(1)),
            load_balancer: self.load_balancer,
            max_in_flight: self.max_in_flight.max(1),
        }
    }

    /// The listener limits and timeouts.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            max_connections: self.max_connections.max(1),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
        }
    }

    /// The config source: the file when given, else the Kubernetes API.
    pub async fn source(&self) -> Result<Source, Error> {
        match &self.config_file {
            Some(path) => Ok(Source::File {
                path: path.clone(),
                poll: Duration::from_millis(self.config_poll_ms.max(1)),
            }),
            None => {
                let client = kube::Client::try_default()
                    .await
                    .map_err(|source| Error::KubeClient { source })?;
                let namespace = (!self.all_namespaces).then(|| self.namespace.clone());
                Ok(Source::Kube { client, namespace })
            }
        }
    }
}

/// A running proxy: its bound addresses, shared state, and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// The data listener's address.
    pub data_addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The current snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

/// Binds both listeners and starts the source, the data server and the admin server.
pub async fn start(args: &Args, source: Source) -> Result<Running, Error> {
    let data_addr = args.listen_addr();
    let data = TcpListener::bind(data_addr)
        .await
        .map_err(|source| Error::Bind {
            what: "data",
            addr: data_addr,
            source,
        })?;
    let admin = TcpListener::bind(args.admin)
        .await
        .map_err(|source| Error::Bind {
            what: "admin",
            addr: args.admin,
            source,
        })?;
    let local = |l: &TcpListener, addr| l.local_addr().unwrap_or(addr);
    let (data_addr, admin_addr) = (local(&data, data_addr), local(&admin, args.admin));

    let metrics = Arc::new(Metrics::default());
    let (publisher, snapshots) = Publisher::new(&args.namespace, metrics.clone());
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let token = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = source.run(publisher, token).await {
            tracing::error!(error = %crate::index::error_chain(&e), "config source stopped");
        }
    });
    let svc = stack::new_stack(
        &args.stack_config(),
        snapshots.clone(),
        metrics.clone(),
        Forward::new(Duration::from_millis(args.connect_timeout_ms.max(1))),
    );
    tasks.spawn(server::serve(
        data,
        move |peer| svc.clone().with_peer(peer),
        args.server_config(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let admin_srv = Admin {
        snapshots: snapshots.clone(),
        metrics: metrics.clone(),
    };
    tasks.spawn(admin_srv.serve(admin, shutdown.clone()));
    tracing::info!(%data_addr, %admin_addr, namespace = %args.namespace, "weir-proxy started");
    Ok(Running {
        data_addr,
        admin_addr,
        metrics,
        snapshots,
        shutdown,
        tasks,
    })
}

// === impl Running ===

impl Running {
    /// Stops accepting connections and begins draining.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every part has stopped (after [`Running::shutdown`]).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| Error::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| Error::Signal {
        signal: "SIGINT",
        source,
    })?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
    Ok(())
}
