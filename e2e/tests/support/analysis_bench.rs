//! The component bench of the analysis tests: the local API server, demo-app backends, a
//! `weir-proxy` process with a static config, and the TrafficMetrics API in this process
//! behind the local aggregator.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::analysis_support::*;
use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};
use weir_e2e::demo_app::{self, DemoConfig};
use weir_e2e::loadgen::{self, LoadOptions, Mode, Report};
use weir_operator::analysis::{SampleQuery, Target};
use weir_operator::metrics::Metrics;
use weir_operator::metrics_api::{self, Certificate, scrape::ScrapeConfig, store::Limits};

/// The proxy's data and admin ports on its own loopback address.
const DATA_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9990;

/// Everything one test runs: API server, backends, proxy, metrics API.
pub struct Bench {
    pub server: Handle,
    pub client: kube::Client,
    pub block: [u8; 3],
    pub proxy: Child,
    pub proxy_args: Vec<String>,
    pub metrics_api: metrics_api::Running,
    stop_backends: CancellationToken,
    _config: TempDir,
    _cert: ServingCert,
}

fn proxy_ip(block: [u8; 3]) -> Ipv4Addr {
    host(block, 10)
}

fn client_ip(block: [u8; 3]) -> Ipv4Addr {
    host(block, 20)
}

/// The proxy's objects: the root Service foobar split 50/50 over foobar-v1 and foobar-v2,
/// their pods, and a client Pod whose ServiceAccount a TrafficTarget allows.
fn proxy_config(v1: SocketAddr, v2: SocketAddr, client: Ipv4Addr) -> String {
    let mut out = String::new();
    for name in ["foobar", "foobar-v1", "foobar-v2"] {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n"
        ));
    }
    for (name, addr) in [("foobar-v1", v1), ("foobar-v2", v2)] {
        out.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-x\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nports: [{{name: http, port: {port}}}]\nendpoints:\n- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, name: {name}-abc12-0, namespace: default}}\n",
            port = addr.port(),
            ip = addr.ip()
        ));
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-abc12-0\n  namespace: default\n  labels: {{pod-template-hash: abc12}}\n  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: {name}-abc12, uid: u}}]\nspec: {{serviceAccountName: default, containers: [{{name: app}}]}}\nstatus: {{podIP: \"{ip}\"}}\n",
            ip = addr.ip()
        ));
    }
    out.push_str(&format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: client, namespace: default}}\nspec: {{serviceAccountName: client, containers: [{{name: c}}]}}\nstatus: {{podIP: \"{client}\"}}\n"
    ));
    out.push_str(
        "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: foobar-rollout, namespace: default}\nspec:\n  service: foobar\n  backends: [{service: foobar-v1, weight: 50}, {service: foobar-v2, weight: 50}]\n",
    );
    out.push_str(
        "---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: everything, namespace: default}\nspec:\n  matches: [{name: all, pathRegex: '.*', methods: ['*']}]\n---\napiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: client-to-default, namespace: default}\nspec:\n  destination: {kind: ServiceAccount, name: default, namespace: default}\n  rules: [{kind: HTTPRouteGroup, name: everything, matches: [all]}]\n  sources: [{kind: ServiceAccount, name: client, namespace: default}]\n",
    );
    out
}

async fn backend(ip: Ipv4Addr, cfg: DemoConfig, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(demo_app::serve(listener, cfg, stop));
    addr
}

pub fn spawn_proxy(args: &[String]) -> Result<Child> {
    Command::new(binary("weir-proxy"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start weir-proxy")
}

// === impl Bench ===

impl Bench {
    /// Starts everything; v2 answers 500 with probability `error_rate` after `latency_ms`.
    pub async fn start(error_rate: f64, latency_ms: u64) -> Result<Self> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let block = random_block();
        let server = LocalApiServer::start(Options::default()).await?;
        let client = server.client().await?;
        let stop_backends = CancellationToken::new();
        let v1 = backend(
            host(block, 31),
            DemoConfig {
                version: "v1".into(),
                ..DemoConfig::default()
            },
            stop_backends.clone(),
        )
        .await;
        let v2 = backend(
            host(block, 32),
            DemoConfig {
                version: "v2".into(),
                error_rate,
                latency: Duration::from_millis(latency_ms),
                ..DemoConfig::default()
            },
            stop_backends.clone(),
        )
        .await;
        let config = TempDir::new("proxy-config");
        let file = config.0.join("weir.yaml");
        std::fs::write(&file, proxy_config(v1, v2, client_ip(block)))?;
        let ip = proxy_ip(block);
        let proxy_args: Vec<String> = [
            "--listen".to_string(),
            format!("{ip}:{DATA_PORT}"),
            "--admin".into(),
            format!("{ip}:{ADMIN_PORT}"),
            "--namespace".into(),
            "default".into(),
            "--config-file".into(),
            file.display().to_string(),
        ]
        .into();
        let proxy = spawn_proxy(&proxy_args)?;
        // The gateway Pod the metrics API discovers and scrapes.
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "weir-gateway-test", "labels": {"app.kubernetes.io/name": "weir-gateway"}},
            "spec": {"containers": [{"name": "proxy", "image": "weir-proxy:test", "ports": [
                {"name": "http", "containerPort": DATA_PORT}, {"name": "admin", "containerPort": ADMIN_PORT}]}]}}))?;
        pods.create(&PostParams::default(), &pod).await?;
        pods.patch_status(
            "weir-gateway-test",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"status": {"phase": "Running", "podIP": ip.to_string(),
                "conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        )
        .await?;
        let cert = serving_cert();
        let running = metrics_api::start(
            client.clone(),
            metrics_api::Config {
                addr: SocketAddr::new(IpAddr::V4(host(block, 40)), 0),
                certificate: Certificate::Files {
                    cert: cert.cert.clone(),
                    key: cert.key.clone(),
                },
                scrape: ScrapeConfig {
                    interval: Duration::from_millis(250),
                    timeout: Duration::from_secs(1),
                },
                limits: Limits {
                    retention: Duration::from_secs(300),
                    max_points: 2000,
                    max_series: 100_000,
                },
                auth_refresh: Duration::from_millis(500),
            },
            Arc::new(Metrics::default()),
        )
        .await?;
        metrics_service(&client, Some(running.addr)).await?;
        register_apiservice(&client, &cert.ca_pem).await?;
        let bench = Self {
            server,
            client,
            block,
            proxy,
            proxy_args,
            metrics_api: running,
            stop_backends,
            _config: config,
            _cert: cert,
        };
        bench.wait_scraped().await?;
        Ok(bench)
    }

    pub fn admin(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(proxy_ip(self.block)), ADMIN_PORT)
    }

    /// Waits until the metrics API answers through the aggregator and has scraped the proxy.
    pub async fn wait_scraped(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http_get(self.admin(), "/ready").await;
            let api = get_raw(
                &self.client,
                "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments",
            )
            .await;
            let scraped = self.metrics_api.store.lock().failing(None).is_empty();
            match (&ready, &api) {
                (Ok(_), Ok(_)) if scraped => return Ok(()),
                _ if tokio::time::Instant::now() > deadline => {
                    bail!(
                        "the proxy or the metrics API is not up after 30 s: proxy {ready:?}, API {api:?}"
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Sends `rate` requests/s for `secs` seconds from the client Pod through the proxy.
    pub async fn load(&self, rate: f64, secs: u64) -> Report {
        let target = SocketAddr::new(IpAddr::V4(proxy_ip(self.block)), DATA_PORT);
        let mut opts = LoadOptions::new(target, "foobar");
        opts.source = Some(IpAddr::V4(client_ip(self.block)));
        opts.mode = Mode::FixedRate(rate);
        opts.connections = 16;
        opts.duration = Duration::from_secs(secs);
        loadgen::run(opts).await.report
    }

    pub fn query(&self, deployment: &str, window: Duration) -> SampleQuery {
        SampleQuery {
            target: Target::deployment("default", deployment),
            window,
            at: Timestamp::now(),
        }
    }

    pub async fn shutdown(mut self) {
        let _ = self.proxy.start_kill();
        self.stop_backends.cancel();
        self.server.shutdown().await;
    }
}

/// One HTTPS GET with this TLS config, claiming to be user `mallory` in system:masters (as
/// only the aggregation layer may); returns status and body.
pub async fn https_get(
    addr: SocketAddr,
    path: &str,
    cfg: rustls::ClientConfig,
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("weir-metrics.weir-system.svc")?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Remote-User: mallory\r\nX-Remote-Group: system:masters\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut text = Vec::new();
    let _ = tls.read_to_end(&mut text).await;
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[derive(Debug)]
pub struct AnyServer(pub Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
