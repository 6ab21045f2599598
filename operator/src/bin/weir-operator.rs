//! `weir-operator`: the Rollout controller and the TrafficMetrics API server. Every replica
//! serves the metrics API; only the holder of the Lease runs the controller.

use anyhow::Context as _;
use clap::Parser;
use kube_lease_manager::LeaseManagerBuilder;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use weir_operator::analysis::{Analyst, TrafficMetricsSource};
use weir_operator::controller::{self, Config, Context};
use weir_operator::metrics::{self, Metrics};
use weir_operator::metrics_api::rotation::Policy;
use weir_operator::metrics_api::serving_cert::ManagedCert;
use weir_operator::metrics_api::{self, Certificate, scrape::ScrapeConfig, store::Limits};

/// jemalloc: at 1,000 Rollouts it took 10-20% less CPU and 3-7 MB less peak RSS than
/// glibc's malloc (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn duration(text: &str) -> Result<Duration, String> {
    weir_crds::duration::parse_duration("the value", text).map_err(|e| e.to_string())
}

/// Weir's Rollout controller.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of /metrics, /ready and /live.
    #[arg(long, default_value = "0.0.0.0:8081")]
    metrics_addr: SocketAddr,
    /// Do not run a weir-proxy gateway in namespaces with Rollouts.
    #[arg(long)]
    no_gateway: bool,
    /// The gateway's image.
    #[arg(long, default_value = concat!("weir-proxy:", env!("CARGO_PKG_VERSION")))]
    gateway_image: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "weir-operator")]
    lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// Seconds a metrics source may take to answer before the check is an Error.
    #[arg(long, default_value_t = 10)]
    source_timeout_seconds: u64,
    /// The TrafficMetrics API's HTTPS address.
    #[arg(long, default_value = "0.0.0.0:8443")]
    metrics_api_addr: SocketAddr,
    /// Do not serve the TrafficMetrics API (and do not scrape the gateways).
    #[arg(long)]
    no_metrics_api: bool,
    /// The TrafficMetrics API's certificate chain (PEM); without it a self-signed one is made
    /// and the APIService needs `insecureSkipTLSVerify: true`.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Keep the TrafficMetrics API's serving certificate in this Secret of the operator's
    /// namespace (--lease-namespace): created, rotated and shared by every replica.
    #[arg(long, conflicts_with = "tls_cert_file")]
    serving_cert_secret: Option<String>,
    /// The APIService whose caBundle the operator keeps in step with --serving-cert-secret.
    #[arg(long, requires = "serving_cert_secret")]
    api_service: Option<String>,
    /// The metrics API's Service: the managed certificate holds its DNS names.
    #[arg(long, default_value = "weir-metrics")]
    metrics_service: String,
    /// Lifetime of a managed CA (such as 8760h).
    #[arg(long, value_parser = duration, default_value = "8760h")]
    ca_lifetime: Duration,
    /// Lifetime of a managed serving certificate; each is renewed after two thirds of it.
    #[arg(long, value_parser = duration, default_value = "2160h")]
    serving_cert_lifetime: Duration,
    /// How often the Secret and the caBundle are checked, even when no renewal is due.
    #[arg(long, value_parser = duration, default_value = "1m")]
    cert_check_interval: Duration,
    /// Names in the self-signed certificate (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "weir-metrics,localhost")]
    self_signed_names: Vec<String>,
    /// How often every gateway pod's /metrics is scraped (such as 2s or 500ms).
    #[arg(long, value_parser = duration, default_value = "2s")]
    scrape_interval: Duration,
    /// How long one scrape may take.
    #[arg(long, value_parser = duration, default_value = "1s")]
    scrape_timeout: Duration,
    /// How long scraped points are kept; also the longest window the API serves.
    #[arg(long, value_parser = duration, default_value = "15m")]
    metrics_retention: Duration,
    /// Most series kept; beyond it new series are dropped (and counted).
    #[arg(long, default_value_t = 200_000)]
    max_series: usize,
    /// How often the request-header settings (kube-system/extension-apiserver-authentication) are read.
    #[arg(long, value_parser = duration, default_value = "30s")]
    auth_refresh: Duration,
    /// Reconcile every Rollout at least this often (seconds).
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// How many Rollouts are reconciled at once (0: no limit); the others wait for a slot in
    /// the order they were queued. Fewer gives shorter reconciles; more lets 1,000
    /// simultaneous aborts reach their split writes sooner (docs/benchmarks.md).
    #[arg(long, default_value_t = 6)]
    max_concurrent_reconciles: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let args = Args::parse();
    let kube_config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration")?;
    let client = kube::Client::try_from(kube_config.clone()).context("a Kubernetes client")?;
    report_missing_access(&client, &args).await;
    let metrics = Arc::new(Metrics::default());
    let admin = metrics::bind(args.metrics_addr).await.with_context(|| {
        format!(
            "cannot bind the admin port (--metrics-addr {}): /metrics, /ready and /live would be missing",
            args.metrics_addr
        )
    })?;
    let admin_metrics = metrics.clone();
    tokio::spawn(async move {
        if let Err(e) = metrics::serve(admin, admin_metrics).await {
            tracing::error!(error = %e, "the admin port stopped serving");
        }
    });
    let _metrics_api = if args.no_metrics_api {
        None
    } else {
        let certificate = match (
            &args.tls_cert_file,
            &args.tls_private_key_file,
            &args.serving_cert_secret,
        ) {
            (Some(cert), Some(key), _) => Certificate::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, Some(secret)) => Certificate::Managed(ManagedCert {
                namespace: args.lease_namespace.clone(),
                secret: secret.clone(),
                api_service: args.api_service.clone(),
                names: ManagedCert::service_names(&args.metrics_service, &args.lease_namespace),
                policy: Policy {
                    ca_lifetime: chrono::Duration::from_std(args.ca_lifetime)
                        .context("--ca-lifetime")?,
                    leaf_lifetime: chrono::Duration::from_std(args.serving_cert_lifetime)
                        .context("--serving-cert-lifetime")?,
                },
                check_every: args.cert_check_interval,
            }),
            _ => Certificate::SelfSigned(args.self_signed_names.clone()),
        };
        let max_points = (args.metrics_retention.as_millis()
            / args.scrape_interval.as_millis().max(1)) as usize
            + 2;
        let config = metrics_api::Config {
            addr: args.metrics_api_addr,
            certificate,
            scrape: ScrapeConfig {
                interval: args.scrape_interval,
                timeout: args.scrape_timeout,
            },
            limits: Limits {
                retention: args.metrics_retention,
                max_points,
                max_series: args.max_series,
            },
            auth_refresh: args.auth_refresh,
        };
        let running = metrics_api::start(client.clone(), config, metrics.clone())
            .await
            .context("cannot start the TrafficMetrics API")?;
        println!("TrafficMetrics API listening on {}", running.addr);
        // A standby replica serves the metrics API too, so it is ready once that listens.
        metrics
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(running)
    };
    let analyst = Arc::new(Analyst::new(
        Arc::new(
            TrafficMetricsSource::from_config(kube_config)
                .context("a Kubernetes client for TrafficMetrics")?,
        ),
        Duration::from_secs(args.source_timeout_seconds),
    ));
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("weir-operator-{}", std::process::id()));
    let config = Config {
        gateway: !args.no_gateway,
        gateway_image: args.gateway_image.clone(),
        resync: Duration::from_secs(args.resync_seconds),
        concurrency: args.max_concurrent_reconciles,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics,
        analyst,
        config,
        Some(identity.clone()),
    ));
    let lease = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_seconds)
        .with_grace(args.lease_seconds.div_ceil(3).max(1))
        .build()
        .await
        .context("cannot set up the leader-election Lease")?;
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(%identity, "waiting for leadership");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            changed = leader.changed() => changed.context("the lease manager stopped")?,
        }
        if *leader.borrow_and_update() {
            break;
        }
    }
    tracing::info!(%identity, "leading: starting the controller");
    let mut lost = leader.clone();
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { while lost.changed().await.is_ok() { if !*lost.borrow() { break; } } } => {
                tracing::warn!("lost leadership: stopping");
            }
        }
    };
    controller::run(ctx, shutdown).await;
    drop(leader);
    let _ = lease_task.await;
    Ok(())
}

/// Asks the API server what this identity may not do of what the operator needs
/// (`weir_operator::access`) and logs each gap: the install's RBAC is then missing a rule.
async fn report_missing_access(client: &kube::Client, args: &Args) {
    use weir_operator::access;
    let mut wanted = vec![
        ("", access::OPERATOR),
        (args.lease_namespace.as_str(), access::LEADER_ELECTION),
    ];
    if !args.no_metrics_api {
        wanted.push(("kube-system", access::METRICS_API_AUTH));
    }
    if args.serving_cert_secret.is_some() {
        wanted.push((args.lease_namespace.as_str(), access::SERVING_CERT_SECRET));
    }
    if args.api_service.is_some() {
        wanted.push(("", access::API_SERVICE));
    }
    for (namespace, list) in wanted {
        match access::preflight(client, namespace, list).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => tracing::error!(
                namespace,
                missing = %missing.join(", "),
                "this ServiceAccount may not make calls the operator needs; check config/rbac"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check the operator's permissions"),
        }
    }
}
