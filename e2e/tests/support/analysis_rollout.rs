//! The local control plane of the analysis tests: the real operator as a Pod, its gateway,
//! a client Pod, the Rollout, traffic, and what one rollout run saw.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::analysis_support::*;
use super::operator_support::{self, SplitHistory, install_crds, record_splits};
use anyhow::{Context as _, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};
use weir_e2e::loadgen::{self, LoadOptions, Mode, Report};
use weir_e2e::simulator::{Simulator, SimulatorOptions};

/// How the canary behaves.
#[derive(Debug, Clone, Copy)]
pub enum Canary {
    Healthy,
    Failing,
    Slow,
}

/// A local control plane running the real operator and gateway.
pub struct Cluster {
    pub server: Handle,
    sim: Option<Simulator>,
    pub client: Client,
    _cert: ServingCert,
}

impl Cluster {
    pub async fn start() -> Result<Self> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let server = LocalApiServer::start(Options::default()).await?;
        let client = server.client().await?;
        install_crds(&client).await?;
        let (pods, services) = (random_block(), random_block());
        let pod_logs = weir_e2e::pod_logs::PodLogs::new();
        server.serve_pod_logs(pod_logs.clone());
        let sim = Simulator::start(
            client.clone(),
            SimulatorOptions {
                pod_cidr: (Ipv4Addr::new(127, pods[0], pods[1], 0), 24),
                service_cidr: (Ipv4Addr::new(127, services[0], services[1], 0), 24),
                kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
                resync: Duration::from_secs(1),
                pod_logs,
                ..SimulatorOptions::default()
            },
        )
        .await?;
        let cert = serving_cert();
        metrics_service(&client, None).await?;
        register_apiservice(&client, &cert.ca_pem).await?;
        let operator =
            weir_e2e::install::operator_deployment("weir-operator:test", &cert.cert, &cert.key)?;
        Api::<Deployment>::namespaced(client.clone(), METRICS_NS)
            .create(&PostParams::default(), &operator)
            .await?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), METRICS_NS);
        wait_for(60, "the operator Pod available", || async {
            let d = deployments.get("weir-operator").await.ok()?;
            (d.status?.available_replicas? >= 1).then_some(())
        })
        .await?;
        Ok(Self {
            server,
            sim: Some(sim),
            client,
            _cert: cert,
        })
    }

    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.server.shutdown().await;
    }
}

pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client Pod `loadgen` (its own ServiceAccount) allowed to call pods running as `default`.
pub async fn client_pod(client: &Client) -> Result<Ipv4Addr> {
    let ns = "default";
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "loadgen"}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "loadgen"},
        "spec": {"serviceAccountName": "loadgen", "containers": [{"name": "c", "image": "weir-demo:client",
                 "ports": [{"containerPort": 8080}]}]}}))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod).await?;
    let resource = |group: &str, version: &str, kind: &str, plural: &str| {
        kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, kind),
            plural,
        )
    };
    let groups: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &resource(
            "specs.smi-spec.io",
            "v1alpha4",
            "HTTPRouteGroup",
            "httproutegroups",
        ),
    );
    groups
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
                "metadata": {"name": "everything", "namespace": ns},
                "spec": {"matches": [{"name": "all", "pathRegex": ".*", "methods": ["*"]}]}}),
            )?,
        )
        .await?;
    let targets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &resource(
            "access.smi-spec.io",
            "v1alpha3",
            "TrafficTarget",
            "traffictargets",
        ),
    );
    targets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
                "metadata": {"name": "loadgen-to-default", "namespace": ns},
                "spec": {"destination": {"kind": "ServiceAccount", "name": "default", "namespace": ns},
                         "rules": [{"kind": "HTTPRouteGroup", "name": "everything", "matches": ["all"]}],
                         "sources": [{"kind": "ServiceAccount", "name": "loadgen", "namespace": ns}]}}))?,
        )
        .await?;
    wait_for(30, "the client Pod's IP", || async {
        pods.get("loadgen").await.ok()?.status?.pod_ip?.parse().ok()
    })
    .await
}

/// The Rollout: 2 replicas, 20% → analysis (2 checks) → 50% → analysis (2 checks) → 100%.
pub fn rollout(source: &str) -> Result<Rollout> {
    Ok(serde_yaml::from_str(&format!(
        r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: foobar, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: foobar}}}}
  template:
    metadata: {{labels: {{app: foobar}}}}
    spec: {{containers: [{{name: app, image: "weir-demo:v1", ports: [{{containerPort: 8080}}]}}]}}
  scaleDownDelay: 1s
  strategy:
    steps:
    - setWeight: 20
    - analysis: {{checks: 2}}
    - setWeight: 50
    - analysis: {{checks: 2}}
    analysis:
      interval: 1s
      window: 4s
      minRequests: 20
      failureLimit: 1
      successRate: {{min: 95}}
      latency: {{p99: 300ms}}
      {source}
"#
    ))?)
}

/// v2's template: the demo app with the canary's error rate and latency.
pub fn v2_patch(canary: Canary) -> serde_json::Value {
    let env = match canary {
        Canary::Healthy => json!([]),
        Canary::Failing => json!([{"name": "ERROR_RATE", "value": "0.2"}]),
        Canary::Slow => json!([{"name": "LATENCY_MS", "value": "450"}]),
    };
    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "weir-demo:v2",
        "env": env, "ports": [{"containerPort": 8080}]}]}}}})
}

/// The gateway Pod's data and admin addresses, once it is Ready.
pub async fn gateway(client: &Client) -> Result<(SocketAddr, SocketAddr)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ip: Ipv4Addr = wait_for(60, "the gateway Pod Ready", || async {
        let list = pods
            .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=weir-gateway"))
            .await
            .ok()?;
        let status = list.items.into_iter().next()?.status?;
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())?;
        status.pod_ip?.parse().ok()
    })
    .await?;
    Ok((
        SocketAddr::new(IpAddr::V4(ip), 8080),
        SocketAddr::new(IpAddr::V4(ip), 9990),
    ))
}

/// Load from the client Pod at a fixed rate until stopped, one second at a time.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Report>,
}

impl Traffic {
    pub fn start(target: SocketAddr, source: Ipv4Addr, rate: f64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut total = Report::default();
            for _ in 0..600 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let mut opts = LoadOptions::new(target, "foobar");
                opts.source = Some(IpAddr::V4(source));
                opts.mode = Mode::FixedRate(rate);
                opts.connections = 8;
                opts.duration = Duration::from_secs(1);
                total.merge(loadgen::run(opts).await.report);
            }
            total
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Every change of the split and of the canary Deployment's replicas, with its resourceVersion.
pub type Writes = Arc<Mutex<Vec<(u64, String)>>>;

pub fn record_writes(client: &Client) -> Writes {
    let seen: Writes = Arc::new(Mutex::new(Vec::new()));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(deployments, watcher::Config::default()).boxed();
        let mut last = None;
        while let Some(Ok(event)) = stream.next().await {
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event
                && d.name_any() == "foobar-v2"
            {
                let replicas = d.spec.replicas;
                if replicas != last {
                    last = replicas;
                    let rv = d
                        .resource_version()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    out.lock()
                        .await
                        .push((rv, format!("foobar-v2 replicas {replicas:?}")));
                }
            }
        }
    });
    let splits: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &weir_operator::controller::split_resource(),
    );
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(splits, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = stream.next().await {
            if let watcher::Event::Apply(s) | watcher::Event::InitApply(s) = event {
                let rv = s
                    .resource_version()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                out.lock()
                    .await
                    .push((rv, format!("split {}", s.data["spec"]["backends"])));
            }
        }
    });
    seen
}

/// What one rollout run saw.
pub struct Outcome {
    pub phase: Phase,
    pub traffic: Report,
    pub splits: SplitHistory,
    pub writes: Writes,
    pub describe: String,
}

/// Runs v1 → v2 with `canary` and the analysis `source` line; returns how it ended.
pub async fn run_rollout(
    cluster: &Cluster,
    canary: Canary,
    source: &str,
    before_v2: impl AsyncFnOnce(SocketAddr) -> Result<()>,
) -> Result<Outcome> {
    let client = &cluster.client;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    let splits = record_splits(client);
    let writes = record_writes(client);
    let source_ip = client_pod(client).await?;
    rollouts
        .create(&PostParams::default(), &rollout(source)?)
        .await?;
    wait_for(60, "v1 Healthy", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        (s.phase == Some(Phase::Healthy)).then_some(())
    })
    .await?;
    let (data, admin) = gateway(client).await?;
    // The gateway serves v1 to the client before v2 starts (its snapshot has the split and
    // the client Pod); every answer must be a 200.
    wait_for(30, "v1 answering through the gateway", || async {
        let mut opts = LoadOptions::new(data, "foobar");
        opts.source = Some(IpAddr::V4(source_ip));
        opts.max_requests = Some(20);
        let r = loadgen::run(opts).await.report;
        (r.by_status.get(&200) == Some(&20)).then_some(())
    })
    .await?;
    before_v2(admin).await?;
    let traffic = Traffic::start(data, source_ip, 100.0);
    rollouts
        .patch(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&v2_patch(canary)),
        )
        .await?;
    let phase = wait_for(120, "the rollout to end", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        match s.phase {
            Some(Phase::Aborted) => Some(Phase::Aborted),
            Some(Phase::Healthy) if s.stable_revision == Some(2) => Some(Phase::Healthy),
            _ => None,
        }
    })
    .await;
    let traffic = traffic.stop().await;
    let describe = kubectl(cluster, &["describe", "rollout", "foobar"])
        .await
        .unwrap_or_default();
    let phase = match phase {
        Ok(p) => p,
        Err(e) => {
            println!("{describe}");
            return Err(e);
        }
    };
    Ok(Outcome {
        phase,
        traffic,
        splits,
        writes,
        describe,
    })
}

pub async fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.server.kubeconfig_path())
        .args(args)
        .output()
        .await
        .context("kubectl is not on PATH (scripts/install-deps.sh checks for it)")?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The checks of a rolled-back bad canary.
pub async fn assert_rolled_back(o: &Outcome) -> Result<()> {
    assert_eq!(o.phase, Phase::Aborted, "{}", o.describe);
    let history = o.splits.lock().await.clone();
    println!("splits: {history:?}");
    assert!(
        history
            .iter()
            .flatten()
            .all(|(svc, w)| svc != "foobar-v2" || *w <= 20),
        "the canary got more than its 20% step: {history:?}"
    );
    assert_eq!(
        history.last(),
        Some(&operator_support::b(&[
            ("foobar-v1", 100),
            ("foobar-v2", 0)
        ])),
        "the split ends with all traffic on v1"
    );
    // The rollback's first write is the split's reset; the canary scales down after
    // scaleDownDelay (1s here).
    let scale_down = "foobar-v2 replicas Some(0)";
    wait_for(15, "the canary's scale-down", || async {
        o.writes
            .lock()
            .await
            .iter()
            .any(|(_, w)| w == scale_down)
            .then_some(())
    })
    .await?;
    let mut writes = o.writes.lock().await.clone();
    writes.sort();
    let after_20 = writes
        .iter()
        .position(|(_, w)| w.starts_with("split") && w.contains("\"weight\":20"))
        .context("the canary never got 20%")?;
    let reset = after_20
        + writes[after_20..]
            .iter()
            .position(|(_, w)| w.starts_with("split") && w.contains("\"foobar-v2\",\"weight\":0"))
            .context("no split reset after 20%")?;
    let scaled = writes
        .iter()
        .position(|(_, w)| w == scale_down)
        .context("the canary was not scaled to 0")?;
    println!("writes: {writes:?}");
    assert!(
        after_20 < reset && reset < scaled,
        "rollback order: {writes:?}"
    );
    let reason = o.describe.contains("RolledBack") || o.describe.contains("AnalysisFailed");
    assert!(reason, "describe shows no rollback:\n{}", o.describe);
    // At the clients: the canary's share of all responses stays within its step's 20%.
    let n = o.traffic.responses() as f64;
    let v2 = *o.traffic.by_version.get("v2").unwrap_or(&0) as f64;
    let bound = 0.2 * n + 4.5 * (n * 0.2 * 0.8).sqrt();
    println!(
        "clients: {:?} of {n}; v2 {v2} ≤ {bound:.0}",
        o.traffic.by_version
    );
    assert!(v2 > 0.0, "the canary got no traffic at all");
    assert!(
        v2 <= bound,
        "v2 answered {v2} of {n} requests, above 20% + 4.5σ ({bound:.0})"
    );
    Ok(())
}
