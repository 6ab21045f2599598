//! Shared by the analysis tests: the TrafficMetrics API behind the local aggregator, a real
//! Prometheus, loopback addresses, and reading figures back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anyhow::Result;
use kube::Client;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

#[allow(unused_imports)]
pub use weir_e2e::install::{
    METRICS_NS, METRICS_SERVICE, get_raw, metric, metrics_service, register_apiservice,
};

/// A directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `what`.
    pub fn new(what: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weir-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback address in a random 127.x.y.0/24 that no fixed test range uses, for listeners
/// on fixed ports and client source addresses (a collision needs the same random /24).
pub fn random_block() -> [u8; 3] {
    use rand::Rng;
    let mut rng = rand::rng();
    [rng.random_range(150..=250), rng.random_range(0..=255), 0]
}

/// The `n`th host of a block from [`random_block`].
pub fn host(block: [u8; 3], n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, block[0], block[1], n)
}

/// `target/debug/<name>`, next to this test's `deps/` directory; fails naming the build step.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

/// The serving certificate of the metrics API, in a temp dir removed on drop.
pub struct ServingCert {
    /// The CA in PEM.
    pub ca_pem: String,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    _dir: TempDir,
}

/// Issues a serving certificate for `weir-metrics.weir-system.svc` into a temp dir.
pub fn serving_cert() -> ServingCert {
    let dir = TempDir::new("serving-cert");
    let c = weir_e2e::install::write_serving_cert(&dir.0).unwrap();
    ServingCert {
        ca_pem: c.ca_pem,
        cert: c.cert,
        key: c.key,
        _dir: dir,
    }
}

/// A client of `server` that does not retry 503s (as the operator's TrafficMetrics source).
pub async fn no_retry_client(kubeconfig: &Path) -> Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    cfg.default_retry = false;
    Ok(Client::try_from(cfg)?)
}

/// The TrafficMetrics source the operator builds, for `kubeconfig`.
pub async fn traffic_metrics_source(
    kubeconfig: &Path,
) -> Result<weir_operator::analysis::TrafficMetricsSource> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(weir_operator::analysis::TrafficMetricsSource::from_config(
        cfg,
    )?)
}

/// Sums the proxy's own `weir_requests_total` for a Deployment by classification, from its
/// admin `/metrics`: (successes, failures).
pub async fn proxy_counters(admin: SocketAddr, deployment: &str) -> Result<(f64, f64)> {
    let text = http_get(admin, "/metrics").await?;
    let samples =
        weir_operator::metrics_api::exposition::parse(&text, |n| n == "weir_requests_total")?;
    let mut out = (0.0, 0.0);
    for s in samples
        .iter()
        .filter(|s| s.labels.get("dst_deployment").map(String::as_str) == Some(deployment))
    {
        if s.labels.get("classification").map(String::as_str) == Some("success") {
            out.0 += s.value;
        } else {
            out.1 += s.value;
        }
    }
    Ok(out)
}

pub use weir_e2e::prometheus::http_get;

/// A Prometheus server started by the test, its config and data in a temp dir; killed on
/// drop.
pub struct Prometheus {
    inner: weir_e2e::prometheus::Prometheus,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `addr`, scraping `targets` every `interval`, and waits (30 s at
    /// most) until it is ready. Fails, never skips, when prometheus is not installed.
    pub async fn start(addr: SocketAddr, targets: &[SocketAddr], interval: &str) -> Result<Self> {
        let dir = TempDir::new("prometheus");
        let inner =
            weir_e2e::prometheus::Prometheus::start(addr, &dir.0, targets, interval).await?;
        Ok(Self { inner, _dir: dir })
    }
}

impl std::ops::Deref for Prometheus {
    type Target = weir_e2e::prometheus::Prometheus;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Prometheus {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}
