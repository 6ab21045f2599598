//! Shared by the analysis tests: the TrafficMetrics API behind the local aggregator, a real
//! Prometheus, loopback addresses, and reading figures back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context as _, Result, bail};
use kube::Client;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

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

/// A plain HTTP/1.0 GET, returning the body of a 200.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .context("read timed out")??;
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// A Prometheus server started by the test; killed on drop.
pub struct Prometheus {
    /// Its HTTP address.
    pub addr: SocketAddr,
    child: Child,
    config: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `addr`, scraping `targets` every `interval`, and waits (30 s at
    /// most) until it is ready. Fails, never skips, when prometheus is not installed.
    pub async fn start(addr: SocketAddr, targets: &[SocketAddr], interval: &str) -> Result<Self> {
        let which = std::process::Command::new("sh")
            .args(["-c", "command -v prometheus"])
            .output()?;
        anyhow::ensure!(
            which.status.success(),
            "prometheus is not installed: scripts/install-deps.sh test installs Debian's package"
        );
        let dir = TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: {interval}, scrape_timeout: {interval}}}\nscrape_configs:\n- job_name: weir-gateway\n  static_configs:\n  - targets: [{}]\n",
                list.join(", ")
            ),
        )?;
        let child = Self::spawn(addr, &config, &dir.0)?;
        let mut p = Self {
            addr,
            child,
            config,
            _dir: dir,
        };
        p.wait_ready().await?;
        Ok(p)
    }

    fn spawn(addr: SocketAddr, config: &Path, dir: &Path) -> Result<Child> {
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start prometheus")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited with {status} before it was ready ({last})");
            }
            match http_get(self.addr, "/-/ready").await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() > deadline {
                bail!("prometheus on {} not ready within 30 s: {last}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (30 s at most) until Prometheus has scraped every target once: its service
    /// discovery hands targets to the scraper only every 5 s.
    pub async fn wait_scraping(&self, targets: usize) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let body = http_get(self.addr, "/api/v1/query?query=up").await;
            let up = body
                .as_ref()
                .ok()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|v| v["data"]["result"].as_array().cloned())
                .unwrap_or_default();
            let scraped = up.iter().filter(|r| r["value"][1] == "1").count();
            if scraped >= targets {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Prometheus scraped {scraped} of {targets} targets within 30 s: {body:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The URL the Prometheus source reads.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub async fn stop(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Starts it again on the same address, config and data.
    pub async fn restart(&mut self) -> Result<()> {
        let dir = self._dir.0.clone();
        self.child = Self::spawn(self.addr, &self.config, &dir)?;
        self.wait_ready().await
    }
}
