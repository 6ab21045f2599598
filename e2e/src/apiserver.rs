//! An in-memory Kubernetes API server for local runs and tests.
//!
//! ```text
//!  kube-rs / kubectl ──HTTP──► server (routing, body limits)
//!                                 │
//!             discovery/openapi ◄─┼─► handlers (verbs) ──► admission (metadata, schema,
//!                                 │        │                 status isolation, generation)
//!           aggregator (APIService)        ▼
//!                                 store (objects + global resourceVersion + history)
//!                                          │ broadcast
//!                                          ▼
//!                                     watch streams
//! ```
//!
//! Everything the server holds lives behind one lock; watchers share a broadcast channel and
//! filter it themselves, so a watcher costs a receiver and a task, not a copy of the store.

pub mod admission;
pub mod aggregator;
pub mod apply;
pub mod auth;
pub mod cel;
pub mod codec;
pub mod defaulting;
pub mod discovery;
pub mod error;
pub mod events;
pub mod field_labels;
pub mod gc;
pub mod handlers;
pub mod jsonpath;
pub mod kubeconfig;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod pod_log;
pub mod protobuf;
pub mod resources;
pub mod router;
pub mod schema;
pub mod seed;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;
pub mod watch;

pub use error::{ApiError, Error};

use parking_lot::Mutex;
use resources::Registry;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::watch as signal;

/// Options for [`LocalApiServer::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Port to bind on 127.0.0.1 (0 = ephemeral).
    pub port: u16,
    /// Where to write the kubeconfig (default: a file in the temp dir named after the port).
    pub kubeconfig_path: Option<PathBuf>,
    /// How many changes are kept for watch resumption; older versions get 410 Gone.
    pub history: usize,
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Default watch duration when the client sets no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// The range Service ClusterIPs are allocated from (base, prefix length), as
    /// kube-apiserver's `--service-cluster-ip-range`.
    pub service_cidr: (Ipv4Addr, u8),
    /// Told of every request once its response's headers are ready, as an audit backend is
    /// (benchmarks count a client's requests with it).
    pub observer: Option<server::RequestObserver>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            kubeconfig_path: None,
            history: 10_000,
            max_body: 3 * 1024 * 1024,
            bookmark_interval: Duration::from_secs(5),
            default_watch_timeout: Duration::from_secs(1800),
            service_cidr: (Ipv4Addr::new(127, 96, 0, 0), 16),
            observer: None,
        }
    }
}

/// The mutable state: what is served and what is stored.
#[derive(Debug)]
pub struct State {
    /// Served resources.
    pub registry: Registry,
    /// Stored objects.
    pub store: Store,
    /// Next service ClusterIP offset inside `service_cidr`.
    pub next_cluster_ip: u32,
    /// The ClusterIP range, from [`Options::service_cidr`].
    pub service_cidr: (Ipv4Addr, u8),
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// The locked state.
    pub state: Mutex<State>,
    /// Options the server was started with.
    pub opts: Options,
    /// The bound address.
    pub addr: SocketAddr,
    /// Flips to `true` on shutdown.
    pub shutdown: signal::Receiver<bool>,
    /// The aggregation layer's front-proxy CA and client certificate.
    pub front_proxy: aggregator::FrontProxy,
    /// ServiceAccount tokens issued by `TokenRequest`.
    pub tokens: auth::Tokens,
    /// The RBAC policy, compiled once per change of the RBAC objects.
    pub policy: auth::PolicyCache,
    /// The simulated pods' output, once [`Handle::serve_pod_logs`] hands it over.
    pub pod_logs: std::sync::OnceLock<Arc<crate::pod_logs::PodLogs>>,
}

/// Entry point: starts servers.
#[derive(Debug)]
pub struct LocalApiServer;

/// A running server; dropping it does not stop it, call [`Handle::shutdown`].
#[derive(Debug)]
pub struct Handle {
    shared: Arc<Shared>,
    kubeconfig: PathBuf,
    stop: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

// === impl LocalApiServer ===

impl LocalApiServer {
    /// Binds 127.0.0.1, seeds the default namespaces, writes the kubeconfig and starts serving.
    pub async fn start(opts: Options) -> Result<Handle, Error> {
        let bind = format!("127.0.0.1:{}", opts.port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| Error::Bind {
                addr: bind.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr: bind, source })?;
        let kubeconfig = opts.kubeconfig_path.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("weir-local-{}.kubeconfig", addr.port()))
        });
        write_kubeconfig(&kubeconfig, &format!("http://{addr}"))?;
        let (stop, shutdown) = signal::channel(false);
        let mut state = State {
            registry: Registry::default(),
            store: Store::new(opts.history, 65_536),
            next_cluster_ip: 1,
            service_cidr: opts.service_cidr,
        };
        seed::cluster(&mut state, addr.port());
        let front_proxy =
            aggregator::FrontProxy::generate().map_err(|source| Error::FrontProxy { source })?;
        front_proxy.publish(&mut state);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            opts,
            addr,
            shutdown,
            front_proxy,
            tokens: auth::Tokens::default(),
            policy: auth::PolicyCache::default(),
            pod_logs: std::sync::OnceLock::new(),
        });
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "local API server listening");
        Ok(Handle {
            shared,
            kubeconfig,
            stop,
            task,
        })
    }
}

fn write_kubeconfig(path: &Path, server: &str) -> Result<(), Error> {
    write_yaml(path, &kubeconfig::build(server))
}

/// Writes `v` as YAML to `path`, creating its directory.
pub fn write_yaml(path: &Path, v: &serde_json::Value) -> Result<(), Error> {
    let yaml = serde_yaml::to_string(v).map_err(|source| Error::Serialize { source })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Kubeconfig {
            path: path.into(),
            source,
        })?;
    }
    std::fs::write(path, yaml).map_err(|source| Error::Kubeconfig {
        path: path.into(),
        source,
    })
}

// === impl Handle ===

impl Handle {
    /// Serves `pods/{name}/log` from `logs`, the store a simulator in this process writes
    /// ([`crate::simulator::SimulatorOptions::pod_logs`]). Only the first store is kept.
    pub fn serve_pod_logs(&self, logs: Arc<crate::pod_logs::PodLogs>) {
        if self.shared.pod_logs.set(logs).is_err() {
            tracing::warn!("pod logs are already served from another store; keeping it");
        }
    }

    /// The kubeconfig file clients can use.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The base URL, e.g. `http://127.0.0.1:34567`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A kube client for this server.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|source| Error::ReadKubeconfig { source })?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| Error::ReadKubeconfig { source })?;
        kube::Client::try_from(cfg).map_err(|source| Error::Client { source })
    }

    /// Issues a token for the existing ServiceAccount `ns/name` (as `TokenRequest` does) and
    /// writes a kubeconfig that presents it to `path`.
    pub fn service_account_kubeconfig(
        &self,
        ns: &str,
        name: &str,
        path: &Path,
    ) -> Result<PathBuf, Error> {
        let sa = self.shared.state.lock().store.get(
            &(String::new(), "serviceaccounts".into()),
            ns,
            name,
        );
        let uid = sa
            .as_ref()
            .and_then(|sa| sa["metadata"]["uid"].as_str())
            .ok_or_else(|| Error::NoServiceAccount {
                namespace: ns.into(),
                name: name.into(),
            })?;
        let token = self
            .shared
            .tokens
            .issue(ns, name, uid, Duration::from_secs(24 * 3600));
        let user = format!("system:serviceaccount:{ns}:{name}");
        write_yaml(path, &kubeconfig::for_user(&self.url(), &user, &token, ns))?;
        Ok(path.to_path_buf())
    }

    /// Drops the watch history so that every older resourceVersion gets 410 Gone.
    pub fn compact_history(&self) {
        self.shared.state.lock().store.compact();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().store.rv()
    }

    /// Stops accepting connections, ends watches and waits (bounded) for connections to close.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
