//! Weir's TrafficMetrics API server (`metrics.smi-spec.io/v1alpha1`), run by the operator.
//!
//! ```text
//!  gateway pods' admin /metrics ──scrape every interval──► store: a ring per series
//!                                                              │ increase / histogram_quantile
//!  aggregation layer ──TLS + front-proxy client cert──► server ┴─► TrafficMetrics JSON
//!       (X-Remote-User)            checked against kube-system/extension-apiserver-authentication
//! ```
//!
//! - [`exposition`]: the Prometheus text format, parsed generically;
//! - [`promql`]: `increase` and `histogram_quantile` as PromQL computes them;
//! - [`store`]: the bounded rings and windowed aggregates;
//! - [`paths`] and [`resources`]: what a request asks for, and the SMI documents;
//! - [`auth`] and [`tls`]: request-header authentication and certificates;
//! - [`rotation`] and [`serving_cert`]: when the serving certificate is renewed, and the
//!   Secret and APIService caBundle that hold it;
//! - [`scrape`] and [`server`]: the I/O around them.

pub mod auth;
pub mod exposition;
pub mod paths;
pub mod promql;
pub mod resources;
pub mod rotation;
pub mod scrape;
pub mod server;
pub mod serving_cert;
pub mod store;
pub mod tls;

use crate::controller::chain;
use crate::metrics::Metrics;
use auth::{CONFIG_MAP, RequestHeaderAuth};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use parking_lot::{Mutex, RwLock};
use rotation::Decision;
use scrape::ScrapeConfig;
use server::ServerState;
use serving_cert::{ManagedCert, Reloadable};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{Limits, Store};
use tls::Identity;

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum Certificate {
    /// PEM files (for example a mounted Secret).
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A certificate generated at start for these names, signed by a throwaway CA: the
    /// APIService then needs `insecureSkipTLSVerify: true`.
    SelfSigned(Vec<String>),
    /// A certificate kept in a Secret, rotated, and trusted by the APIService's caBundle.
    Managed(ManagedCert),
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HTTPS listener.
    pub addr: SocketAddr,
    /// The serving certificate.
    pub certificate: Certificate,
    /// Scraping.
    pub scrape: ScrapeConfig,
    /// What the store keeps.
    pub limits: Limits,
    /// How often the request-header ConfigMap is read again.
    pub auth_refresh: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS setup failed.
    #[error("TLS for the TrafficMetrics API")]
    Tls(#[from] tls::TlsError),
    /// The managed serving certificate could not be read or issued.
    #[error("the TrafficMetrics API's serving certificate")]
    Cert(#[from] serving_cert::CertError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A running server; dropping it stops it.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The CA of a self-signed certificate, in PEM.
    pub self_signed_ca: Option<String>,
    /// The scraped series (for tests and the operator's metrics).
    pub store: Arc<Mutex<Store>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts scraping, reading the request-header settings, and serving.
pub async fn start(
    client: kube::Client,
    config: Config,
    metrics: Arc<Metrics>,
) -> Result<Running, StartError> {
    let mut tasks = Vec::new();
    let (tls, self_signed_ca) = match &config.certificate {
        Certificate::Files { cert, key } => {
            (Identity::from_files(cert, key)?.server_config()?, None)
        }
        Certificate::SelfSigned(names) => {
            let (identity, ca) = Identity::self_signed(names)?;
            (identity.server_config()?, Some(ca))
        }
        Certificate::Managed(managed) => {
            let (material, decision) = managed.sync(&client, chrono::Utc::now()).await?;
            // The APIService may not exist yet (applied after the Deployment): the loop
            // writes the caBundle again within seconds.
            let published = managed.publish(&client, &material).await;
            if let Err(e) = &published {
                tracing::warn!(error = %chain(e), "cannot write the caBundle yet");
            }
            let serving = Arc::new(Reloadable::new(&material)?);
            let recheck_at = match (decision, published) {
                (Decision::Keep { recheck_at }, Ok(())) => recheck_at,
                _ => chrono::Utc::now(),
            };
            tasks.push(tokio::spawn(managed.clone().run(
                client.clone(),
                serving.clone(),
                material,
                recheck_at,
            )));
            (Identity::resolver_config(serving)?, None)
        }
    };
    let tls = Arc::new(tls);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    let store = Arc::new(Mutex::new(Store::new(config.limits)));
    let auth = Arc::new(RwLock::new(Err("not read yet".to_string())));
    let state = Arc::new(ServerState {
        store: store.clone(),
        auth: auth.clone(),
        client: client.clone(),
        metrics: metrics.clone(),
    });
    tasks.extend([
        tokio::spawn(scrape::run(
            client.clone(),
            store.clone(),
            config.scrape.clone(),
            metrics,
        )),
        tokio::spawn(load_auth(client, auth, config.auth_refresh)),
        tokio::spawn(server::serve(listener, tls, state)),
    ]);
    tracing::info!(%addr, "TrafficMetrics API listening");
    Ok(Running {
        addr,
        self_signed_ca,
        store,
        tasks,
    })
}

/// Reads the request-header settings now and every `refresh`; a failed read keeps the last good ones.
async fn load_auth(
    client: kube::Client,
    auth: Arc<RwLock<Result<Arc<RequestHeaderAuth>, String>>>,
    refresh: Duration,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, CONFIG_MAP.0);
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let loaded = match api.get_opt(CONFIG_MAP.1).await {
            Ok(Some(cm)) => RequestHeaderAuth::from_config_map(&cm.data.unwrap_or_default())
                .map_err(|e| chain(&e)),
            Ok(None) => Err(format!("{}/{} does not exist", CONFIG_MAP.0, CONFIG_MAP.1)),
            Err(e) => Err(format!(
                "cannot read {}/{}: {}",
                CONFIG_MAP.0,
                CONFIG_MAP.1,
                chain(&e)
            )),
        };
        let mut current = auth.write();
        match loaded {
            Ok(a) => *current = Ok(Arc::new(a)),
            Err(e) => {
                tracing::warn!(error = %e, "request-header authentication settings");
                if current.is_err() {
                    *current = Err(e);
                }
            }
        }
    }
}
