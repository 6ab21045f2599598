//! Shared by the operator tests: a local control plane with the simulator, the CRDs
//! installed, and optionally the controller running in-process.

use super::cluster::LocalCluster;
use super::eventually::eventually;
use anyhow::{Context as _, Result};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::simulator::SimulatorOptions;
use weir_operator::analysis::{Analyst, MetricsSource};
use weir_operator::controller::{self, Config, Context};
use weir_operator::metrics::Metrics;

/// A [`LocalCluster`] with the CRDs installed, and the in-process controller if one was
/// started.
pub struct Cluster {
    /// The API server, simulator and address blocks.
    pub local: LocalCluster,
    /// A client of the API server.
    pub client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Cluster {
    /// Stops the in-process controller.
    pub fn stop_controller(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::ops::Deref for Cluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.local
    }
}

pub use weir_e2e::install::rbac_objects;

/// Creates every CRD of crds/manifests, then the RBAC of config/rbac.
pub async fn install_crds(client: &Client) -> Result<()> {
    weir_e2e::install::install_crds(client).await?;
    weir_e2e::install::install_rbac(client).await
}

/// Starts a cluster with the CRDs; with a metrics `source`, also the controller in-process.
pub async fn start(source: Option<Arc<dyn MetricsSource>>) -> Result<Cluster> {
    start_with(source, false, |_| {}).await
}

/// [`start`], with the namespace gateway on or off and the simulator options adjusted by
/// `configure` (for example to hand it the `weir-proxy` binary the gateway pods run).
pub async fn start_with(
    source: Option<Arc<dyn MetricsSource>>,
    gateway: bool,
    configure: impl FnOnce(&mut SimulatorOptions),
) -> Result<Cluster> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let local = LocalCluster::start(|opts| {
        opts.resync = Duration::from_secs(1);
        configure(opts);
    })
    .await?;
    let client = local.client.clone();
    install_crds(&client).await?;
    let mut cluster = Cluster {
        local,
        client: client.clone(),
        stop: None,
    };
    if let Some(source) = source {
        // The controller runs as the operator does once installed: as ServiceAccount
        // weir-system/weir-operator, under the roles of config/rbac.
        let operator = operator_client(&cluster.local).await?;
        let (_, stop) = spawn_controller(operator, source, gateway, Duration::from_secs(30));
        cluster.stop = Some(stop);
    }
    Ok(cluster)
}

/// A client that presents a token of ServiceAccount `weir-system/weir-operator`.
pub async fn operator_client(local: &LocalCluster) -> Result<Client> {
    let path = local
        .server
        .kubeconfig_path()
        .with_file_name(format!("weir-operator-{}.kubeconfig", std::process::id()));
    let path = local
        .server
        .service_account_kubeconfig("weir-system", "weir-operator", &path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// A tap in front of the cluster's API server with `rule`, and a client that goes through
/// it (with kube's own retry of 429/503/504 when `retry`).
pub async fn client_through_tap(
    cluster: &Cluster,
    rule: super::api_tap::Rule,
    retry: bool,
) -> Result<(super::api_tap::ApiTap, Client)> {
    let kubeconfig = cluster
        .server
        .kubeconfig_path()
        .with_file_name("tapped-kubeconfig");
    let tap = super::api_tap::ApiTap::start(cluster.server.addr(), &kubeconfig, rule).await?;
    let kc = kube::config::Kubeconfig::read_from(tap.kubeconfig_path())?;
    let mut config = kube::config::Config::from_custom_kubeconfig(
        kc,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    config.default_retry = retry;
    let client = Client::try_from(config)?;
    Ok((tap, client))
}

/// The controller settings of these tests: the gateway on or off, resyncing every `resync`,
/// 6 reconciles at once (the binary's default).
pub fn test_config(gateway: bool, resync: Duration) -> Config {
    Config {
        gateway,
        gateway_image: "weir-proxy:test".into(),
        concurrency: 6,
        resync,
    }
}

/// Runs the controller in-process with `client`, the gateway on or off, resyncing every
/// `resync`; returns its metrics and the sender that stops it.
pub fn spawn_controller(
    client: Client,
    source: Arc<dyn MetricsSource>,
    gateway: bool,
    resync: Duration,
) -> (Arc<Metrics>, tokio::sync::oneshot::Sender<()>) {
    let (metrics, stop, _) = spawn_controller_with(client, source, test_config(gateway, resync));
    (metrics, stop)
}

/// [`spawn_controller`] with any `config`; also returns the controller's task, which ends
/// once the controller has stopped.
pub fn spawn_controller_with(
    client: Client,
    source: Arc<dyn MetricsSource>,
    config: Config,
) -> (
    Arc<Metrics>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(
        client,
        metrics.clone(),
        Arc::new(Analyst::only(source)),
        config,
        Some("test".into()),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(controller::run(ctx, async move {
        let _ = rx.await;
    }));
    (metrics, tx, task)
}

/// The test Rollout: 2 replicas, steps 20, pause 1s, 50, pause, analysis, 80.
pub fn rollout_yaml(image: &str) -> Rollout {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: foobar, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: foobar}}}}
  template:
    metadata: {{labels: {{app: foobar}}}}
    spec: {{containers: [{{name: app, image: "{image}", ports: [{{containerPort: 8080}}]}}]}}
  scaleDownDelay: 1s
  strategy:
    steps:
    - setWeight: 20
    - pause: {{duration: 1s}}
    - setWeight: 50
    - pause: {{}}
    - analysis: {{}}
    - setWeight: 80
    analysis: {{interval: 1s, successRate: {{min: 99}}}}
"#
    ))
    .unwrap()
}

/// The Rollout `foobar`'s phase.
pub async fn phase(api: &Api<Rollout>) -> Option<Phase> {
    api.get("foobar").await.ok()?.status?.phase
}

/// Every distinct backend list a TrafficSplit took, in order.
pub type SplitHistory = Arc<Mutex<Vec<Vec<(String, i64)>>>>;

/// Records every distinct backend list the TrafficSplits of `default` take.
pub fn record_splits(client: &Client) -> SplitHistory {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &controller::split_resource());
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = stream.next().await {
            let objs = match event {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => vec![o],
                _ => continue,
            };
            for o in objs {
                let backends: Vec<(String, i64)> = o.data["spec"]["backends"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| {
                        (
                            b["service"].as_str().unwrap_or("").to_string(),
                            b["weight"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect();
                let mut seen = out.lock().await;
                if seen.last() != Some(&backends) {
                    seen.push(backends);
                }
            }
        }
    });
    seen
}

/// Backends from a literal.
pub fn b(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(s, w)| (s.to_string(), *w)).collect()
}

/// The merge patch that changes the template's image to `image`.
pub fn image_patch(image: &str) -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}}}})
}

/// Waits up to `secs` for the Rollout `foobar` to reach `want`.
pub async fn wait_phase(rollouts: &Api<Rollout>, want: Phase, secs: u64, what: &str) -> Result<()> {
    eventually(secs, what, || async {
        let status = rollouts.get("foobar").await?.status.unwrap_or_default();
        anyhow::ensure!(
            status.phase == Some(want),
            "phase {:?} at step {:?}: {:?}",
            status.phase,
            status.current_step,
            status.message
        );
        Ok(())
    })
    .await
}

/// Changes the template's image to `weir-demo:v2`.
pub async fn set_image_v2(rollouts: &Api<Rollout>) -> Result<()> {
    let patch = image_patch("weir-demo:v2");
    rollouts
        .patch(
            "foobar",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Creates the test Rollout at v1 and waits until it is Healthy.
pub async fn create_healthy_v1(rollouts: &Api<Rollout>, secs: u64) -> Result<()> {
    rollouts
        .create(&PostParams::default(), &rollout_yaml("weir-demo:v1"))
        .await?;
    wait_phase(rollouts, Phase::Healthy, secs, "v1 Healthy").await
}

/// Every state of the split through the test Rollout's full walk from v1 to v2.
pub fn full_walk() -> Vec<Vec<(String, i64)>> {
    vec![
        b(&[("foobar-v1", 100)]),
        b(&[("foobar-v1", 100), ("foobar-v2", 0)]),
        b(&[("foobar-v1", 80), ("foobar-v2", 20)]),
        b(&[("foobar-v1", 50), ("foobar-v2", 50)]),
        b(&[("foobar-v1", 20), ("foobar-v2", 80)]),
        b(&[("foobar-v2", 100)]),
    ]
}

/// Waits up to `secs` until the object `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, secs: u64) -> Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(secs, &format!("{name} deleted"), || async {
        let found = api.get_opt(name).await?;
        anyhow::ensure!(found.is_none(), "{name} still exists");
        Ok(())
    })
    .await
}
