//! Shared by the analysis tests: the TrafficMetrics API behind the local aggregator, a real
//! Prometheus, loopback addresses, and reading figures back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use weir_operator::metrics_api::tls::Authority;

/// The namespace and Service of the metrics API, as in config/metrics-api.
pub const METRICS_NS: &str = "weir-system";
/// The metrics API's Service.
pub const METRICS_SERVICE: &str = "weir-metrics";

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

/// The serving certificate of the metrics API, signed by a CA the APIService's caBundle holds.
pub struct ServingCert {
    /// The CA in PEM.
    pub ca_pem: String,
    /// Certificate and key files.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    _dir: TempDir,
}

/// Issues a serving certificate for `weir-metrics.weir-system.svc` into a temp dir.
pub fn serving_cert() -> ServingCert {
    let ca = Authority::new("weir-test-serving-ca").unwrap();
    let pair = ca
        .issue(
            "weir-metrics",
            &[format!("{METRICS_SERVICE}.{METRICS_NS}.svc")],
            false,
        )
        .unwrap();
    let dir = TempDir::new("serving-cert");
    let cert = dir.0.join("tls.crt");
    let key = dir.0.join("tls.key");
    std::fs::write(&cert, &pair.cert).unwrap();
    std::fs::write(&key, &pair.key).unwrap();
    ServingCert {
        ca_pem: ca.pem().to_string(),
        cert,
        key,
        _dir: dir,
    }
}

/// The documents of config/metrics-api/metrics-api.yaml: the Service and the APIService.
fn metrics_api_config() -> Result<(Service, APIService)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/metrics-api/metrics-api.yaml"
    );
    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        docs.push(serde_json::to_value(serde_yaml::Value::deserialize(doc)?)?);
    }
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .with_context(|| format!("no {kind} in {path}"))
    };
    Ok((
        serde_json::from_value(find("Service")?)?,
        serde_json::from_value(find("APIService")?)?,
    ))
}

/// Applies the APIService of config/metrics-api with `ca_pem` as its caBundle.
pub async fn register_apiservice(client: &Client, ca_pem: &str) -> Result<()> {
    let (_, mut apisvc) = metrics_api_config()?;
    // ByteString holds the PEM itself and is base64-encoded on the wire.
    apisvc.spec.as_mut().context("APIService spec")?.ca_bundle =
        Some(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec()));
    Api::<APIService>::all(client.clone())
        .patch(
            "v1alpha1.metrics.smi-spec.io",
            &PatchParams::apply("weir-test").force(),
            &Patch::Apply(&apisvc),
        )
        .await
        .context("apply the APIService")?;
    Ok(())
}

/// Creates namespace weir-system and the Service of config/metrics-api; with `endpoint`,
/// also an EndpointSlice pointing at it (a metrics API running in the test process).
pub async fn metrics_service(client: &Client, endpoint: Option<SocketAddr>) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": METRICS_NS}}))?;
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
    let (svc, _) = metrics_api_config()?;
    Api::<Service>::namespaced(client.clone(), METRICS_NS)
        .create(&PostParams::default(), &svc)
        .await
        .context("create the metrics Service")?;
    if let Some(addr) = endpoint {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "weir-metrics-local", "namespace": METRICS_NS,
                         "labels": {"kubernetes.io/service-name": METRICS_SERVICE}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]}))?;
        Api::<EndpointSlice>::namespaced(client.clone(), METRICS_NS)
            .create(&PostParams::default(), &slice)
            .await
            .context("create the metrics EndpointSlice")?;
    }
    Ok(())
}

/// GET of a path through the Kubernetes API (the aggregator for metrics.smi-spec.io).
pub async fn get_raw(client: &Client, path: &str) -> Result<Value> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(client.request::<Value>(req).await?)
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

/// The value of a metric in a TrafficMetrics document, as a number.
pub fn metric(doc: &Value, name: &str) -> Option<f64> {
    let m = doc["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?;
    weir_crds::smi::metrics::parse_metric_quantity(m["value"].as_str()?).ok()
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
