//! Counts the writes the operator makes for a settled Rollout on the local control plane, which
//! defaults built-in kinds as a real server does. Runs the controller in-process with a 1 s
//! resync, waits for a Rollout to be Healthy, then watches every kind the operator writes for
//! a number of resyncs and prints each write that changed an object (a new resourceVersion),
//! with the fields it changed. Prints figures; asserts nothing.
//!
//! `cargo run -p weir-e2e --example operator_steady_state [-- SECONDS [--gateway]]`
//!
//! With `--gateway` the operator also ensures the namespace's gateway ServiceAccount and
//! Deployment (applied only when missing or different in a field Weir sets).

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, PostParams, WatchEvent, WatchParams,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::{Simulator, SimulatorOptions};
use weir_operator::analysis::{Analyst, FixedSource};
use weir_operator::controller::{self, Config, Context};
use weir_operator::metrics::Metrics;

const ROLLOUT: &str = r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: steady, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: steady}}
  template:
    metadata: {labels: {app: steady}}
    spec: {containers: [{name: app, image: "weir-demo:v1", ports: [{containerPort: 8080}]}]}
"#;

/// The kinds the operator writes, as (group, version, kind, plural).
const WATCHED: &[(&str, &str, &str, &str)] = &[
    ("weir.dev", "v1alpha1", "Rollout", "rollouts"),
    ("apps", "v1", "Deployment", "deployments"),
    ("", "v1", "Service", "services"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    (
        "split.smi-spec.io",
        "v1alpha4",
        "TrafficSplit",
        "trafficsplits",
    ),
    ("events.k8s.io", "v1", "Event", "events"),
];

/// The top-level paths (two levels deep) that differ between two versions of an object,
/// ignoring resourceVersion and managedFields timestamps.
fn changed(old: &Value, new: &Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if depth > 0 => {
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if matches!(k.as_str(), "resourceVersion" | "time") {
                    continue;
                }
                let p = format!("{prefix}.{k}");
                changed(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &p,
                    depth - 1,
                    out,
                );
            }
        }
        _ if old != new => out.push(prefix.to_string()),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let gateway = std::env::args().any(|a| a == "--gateway");
    let server = LocalApiServer::start(Options::default()).await?;
    let client = server.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/manifests");
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
        crds.create(&PostParams::default(), &crd)
            .await
            .with_context(|| path.display().to_string())?;
    }
    let _sim = Simulator::start(
        client.clone(),
        SimulatorOptions {
            pod_cidr: (Ipv4Addr::new(127, 201, 0, 0), 16),
            service_cidr: (Ipv4Addr::new(127, 202, 0, 0), 16),
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            resync: Duration::from_secs(1),
            log_dir: Some(std::env::temp_dir().join("weir-steady-state-logs")),
            ..SimulatorOptions::default()
        },
    )
    .await?;
    let config = Config {
        gateway,
        gateway_image: "weir-proxy:local".into(),
        concurrency: 6,
        resync: Duration::from_secs(1),
    };
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        Arc::new(Analyst::only(Arc::new(FixedSource::healthy()))),
        config,
        Some("steady-state".into()),
    ));
    tokio::spawn(controller::run(ctx, std::future::pending()));
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &serde_yaml::from_str(ROLLOUT)?)
        .await?;
    let healthy = async {
        for _ in 0..600 {
            let phase = rollouts.get("steady").await?.status.and_then(|s| s.phase);
            if phase == Some(Phase::Healthy) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the Rollout did not become Healthy in 60 s")
    };
    healthy.await?;
    // Let the first reconciles after Healthy and the simulator's status writes settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = server.resource_version().to_string();
    let reconciles_before = metrics.reconciles.get();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (group, version, kind, plural) in WATCHED {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let mut stream = api.watch(&WatchParams::default(), &from).await?.boxed();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = stream.next().await {
                let (what, obj) = match ev {
                    WatchEvent::Added(o) => ("ADDED", o),
                    WatchEvent::Modified(o) => ("MODIFIED", o),
                    WatchEvent::Deleted(o) => ("DELETED", o),
                    _ => continue,
                };
                let _ = tx.send((*kind, what, obj));
            }
        });
    }
    drop(tx);
    let before: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut last = before;
    let mut writes: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    let deadline = tokio::time::sleep(Duration::from_secs(secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            got = rx.recv() => {
                let Some((kind, what, obj)) = got else { break };
                let name = obj.metadata.name.clone().unwrap_or_default();
                let value = serde_json::to_value(&obj)?;
                let key = (kind.to_string(), name.clone());
                let mut paths = vec![];
                if let Some(prev) = last.get(&key) {
                    changed(prev, &value, "", 3, &mut paths);
                }
                last.insert(key, value);
                let entry = writes.entry(format!("{what} {kind}/{name}")).or_default();
                entry.0 += 1;
                for p in paths {
                    if !entry.1.contains(&p) {
                        entry.1.push(p);
                    }
                }
            }
        }
    }
    let total: usize = writes.values().map(|(n, _)| n).sum();
    println!(
        "steady state: {secs} s with a 1 s resync (gateway {}), from resourceVersion {from}",
        if gateway { "on" } else { "off" }
    );
    println!(
        "reconciles: {}",
        metrics.reconciles.get() - reconciles_before
    );
    println!("writes by the operator's kinds that changed an object: {total}");
    for (what, (n, paths)) in &writes {
        println!("  {n:>3}  {what}  {}", paths.join(" "));
    }
    println!(
        "store resourceVersion advanced by {} (all writers, the simulator included)",
        server.resource_version() - from.parse::<u64>()?
    );
    server.shutdown().await;
    Ok(())
}
