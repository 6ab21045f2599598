//! Adoption (issue 14) on the local control plane: a Rollout with `spec.workloadRef` takes
//! over a running Deployment and Service with steady client traffic, no request failing and
//! no adopted pod replaced; the next revision then walks the brief's four split stages; and
//! deleting the Rollout before a new revision hands the Deployment and Service back.
//! The controller runs as ServiceAccount weir-system/weir-operator under config/rbac.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::binaries::binaries_dir;
use support::client_pod::ClientPod;
use support::eventually;
use support::gateway::cluster_ip;
use support::operator::{Cluster, b, record_splits, start_with, wait_gone};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::loadgen::Report;
use weir_operator::analysis::FixedSource;

/// A Deployment `deployment` (2 pods labelled `app: foobar, version: v1`) and a Service
/// `service` selecting them, as a team runs them before Weir.
fn workload_yaml(deployment: &str, service: &str) -> (Deployment, Service) {
    let d = serde_yaml::from_str(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {deployment}, namespace: default, labels: {{team: a}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: foobar, version: v1}}}}
  template:
    metadata: {{labels: {{app: foobar, version: v1}}}}
    spec: {{containers: [{{name: app, image: "weir-demo:v1", ports: [{{containerPort: 8080}}]}}]}}
"#
    ))
    .unwrap();
    let s = serde_yaml::from_str(&format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: {service}, namespace: default, labels: {{team: a}}}}
spec:
  selector: {{app: foobar, version: v1}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"#
    ))
    .unwrap();
    (d, s)
}

/// A Rollout `name` adopting `deployment` and `service`: steps 50, pause 2s, then promotion.
fn adopting_rollout(name: &str, deployment: &str, service: &str) -> Rollout {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: foobar}}}}
  workloadRef: {{name: {deployment}, serviceName: {service}}}
  scaleDownDelay: 30s
  strategy:
    steps:
    - setWeight: 50
    - pause: {{duration: 2s}}
"#
    ))
    .unwrap()
}

/// The merge patch that replaces `workloadRef` with a v2 template: the next revision.
fn v2_patch() -> serde_json::Value {
    serde_json::json!({"spec": {"workloadRef": null, "template": {
        "metadata": {"labels": {"app": "foobar", "version": "v2"}},
        "spec": {"containers": [{"name": "app", "image": "weir-demo:v2", "ports": [{"containerPort": 8080}]}]}
    }}})
}

/// Requests sent in a loop from a client Pod until stopped, every answer kept.
struct Traffic {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Report>>,
}

// === impl Traffic ===

impl Traffic {
    /// Starts sending batches of 20 requests to `target` with `Host: host` (10 minutes at most).
    fn start(client: &ClientPod, target: SocketAddr, host: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, host, flag) = (client.clone(), host.to_string(), stop.clone());
        let task = tokio::spawn(async move {
            let mut total = Report::default();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                total.merge(client.send(target, &host, 20).await?);
            }
            Ok(total)
        });
        Self { stop, task }
    }

    /// Stops, and fails unless every request got a 2xx answer.
    async fn finish(self, what: &str) -> Result<Report> {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.task.await??;
        let failed: u64 = report
            .by_status
            .iter()
            .filter(|(code, _)| !(200..300).contains(*code))
            .map(|(_, n)| n)
            .sum::<u64>()
            + report.errors.values().sum::<u64>();
        println!(
            "{what}: {} answers {:?}, versions {:?}, errors {:?}",
            report.responses(),
            report.by_status,
            report.by_version,
            report.errors
        );
        ensure!(report.responses() > 0, "{what}: no request was answered");
        ensure!(
            failed == 0,
            "{what}: {failed} requests failed: {:?} {:?} {:?}",
            report.by_status,
            report.errors,
            report.failure_bodies
        );
        Ok(report)
    }
}

/// The cluster with the gateway-running controller, the workload, and a client Pod the
/// gateway allows; returns the v1 pods' UIDs.
async fn setup(deployment: &str, service: &str) -> Result<(Cluster, ClientPod, BTreeSet<String>)> {
    let proxy_dir = binaries_dir(&["weir-proxy"])?;
    let cluster = start_with(Some(Arc::new(FixedSource::healthy())), true, |o| {
        o.binaries = vec![proxy_dir]
    })
    .await?;
    let kube = cluster.client.clone();
    let (d, s) = workload_yaml(deployment, service);
    Api::<Deployment>::namespaced(kube.clone(), "default")
        .create(&PostParams::default(), &d)
        .await?;
    Api::<Service>::namespaced(kube.clone(), "default")
        .create(&PostParams::default(), &s)
        .await?;
    let uids = eventually(60, "the v1 pods ready", || v1_pods(&kube)).await?;
    let client = ClientPod::start(&kube, "default", "load-client").await?;
    client.allow(&kube, "default").await?;
    Ok((cluster, client, uids))
}

/// The UIDs of the two ready v1 pods.
async fn v1_pods(kube: &Client) -> Result<BTreeSet<String>> {
    let pods = Api::<Pod>::namespaced(kube.clone(), "default")
        .list(&ListParams::default().labels("app=foobar,version=v1"))
        .await?;
    let ready = pods
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    ensure!(ready == 2, "{ready} of 2 v1 pods ready");
    Ok(pods
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect())
}

/// Waits until Rollout `name` is Healthy at stable revision `revision`.
async fn wait_healthy(rollouts: &Api<Rollout>, name: &str, revision: i64, secs: u64) -> Result<()> {
    eventually(
        secs,
        &format!("{name} Healthy at revision {revision}"),
        || async {
            let s = rollouts.get(name).await?.status.unwrap_or_default();
            ensure!(
                s.phase == Some(Phase::Healthy) && s.stable_revision == Some(revision),
                "{:?} at {:?}: {:?}",
                s.phase,
                s.stable_revision,
                s.message
            );
            Ok(())
        },
    )
    .await
}

/// Updates Rollout `name` to v2 and waits until it is Healthy at revision 2; fails if an
/// adopted pod (`uids`) was replaced before then, if a request of `traffic` (sent through
/// the root Service `name`) failed, or if v2 never answered one.
async fn deliver_v2(
    rollouts: &Api<Rollout>,
    name: &str,
    kube: &Client,
    uids: &BTreeSet<String>,
    traffic: Traffic,
) -> Result<()> {
    rollouts
        .patch(name, &PatchParams::default(), &Patch::Merge(&v2_patch()))
        .await?;
    wait_healthy(rollouts, name, 2, 120).await?;
    ensure!(
        v1_pods(kube).await? == *uids,
        "an adopted pod was replaced before retirement"
    );
    let report = traffic.finish(&format!("through {name}")).await?;
    ensure!(
        report.by_version.contains_key("v2"),
        "v2 never answered: {:?}",
        report.by_version
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_form_adopts_foobar_with_no_failed_request_and_no_restart() -> Result<()> {
    let (cluster, client, uids) = setup("foobar", "foobar").await?;
    let kube = cluster.client.clone();
    let target = cluster_ip(&kube, "default", "foobar").await?;
    let splits = record_splits(&kube);
    let traffic = Traffic::start(&client, target, "foobar");
    let rollouts: Api<Rollout> = Api::namespaced(kube.clone(), "default");
    rollouts
        .create(
            &PostParams::default(),
            &adopting_rollout("foobar", "foobar", "foobar"),
        )
        .await?;
    wait_healthy(&rollouts, "foobar", 1, 90).await?;
    let root = Api::<Service>::namespaced(kube.clone(), "default")
        .get("foobar")
        .await?;
    let selector = root.spec.and_then(|s| s.selector).unwrap_or_default();
    ensure!(
        selector.get("app.kubernetes.io/name").map(String::as_str) == Some("weir-gateway"),
        "Service foobar was not re-pointed to the gateway: {selector:?}"
    );
    ensure!(
        v1_pods(&kube).await? == uids,
        "an adopted pod was replaced during adoption"
    );

    deliver_v2(&rollouts, "foobar", &kube, &uids, traffic).await?;
    let seen = splits.lock().await.clone();
    let want = vec![
        b(&[("foobar-v1", 100)]),
        b(&[("foobar-v1", 100), ("foobar-v2", 0)]),
        b(&[("foobar-v1", 50), ("foobar-v2", 50)]),
        b(&[("foobar-v2", 100)]),
    ];
    assert_eq!(seen, want, "the split's stages");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brief_form_adopts_deploy_v1_and_svc_v1_then_delivers_deploy_v2() -> Result<()> {
    let (cluster, client, uids) = setup("deploy-v1", "svc-v1").await?;
    let kube = cluster.client.clone();
    let splits = record_splits(&kube);
    // Clients call svc-v1 while Weir adopts; the root Service svc does not exist yet.
    let before = Traffic::start(
        &client,
        cluster_ip(&kube, "default", "svc-v1").await?,
        "svc-v1",
    );
    let rollouts: Api<Rollout> = Api::namespaced(kube.clone(), "default");
    rollouts
        .create(
            &PostParams::default(),
            &adopting_rollout("svc", "deploy-v1", "svc-v1"),
        )
        .await?;
    wait_healthy(&rollouts, "svc", 1, 90).await?;
    before.finish("through svc-v1 during adoption").await?;
    ensure!(
        v1_pods(&kube).await? == uids,
        "an adopted pod was replaced during adoption"
    );
    let root = eventually(30, "the root Service svc", || async {
        cluster_ip(&kube, "default", "svc").await
    })
    .await?;
    eventually(30, "svc answering through the gateway", || async {
        let r = client.send(root, "svc", 1).await?;
        ensure!(r.by_version.get("v1") == Some(&1), "{:?}", r.by_status);
        Ok(())
    })
    .await?;
    let traffic = Traffic::start(&client, root, "svc");
    deliver_v2(&rollouts, "svc", &kube, &uids, traffic).await?;
    let deployments = Api::<Deployment>::namespaced(kube.clone(), "default");
    let names: Vec<String> = deployments
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    ensure!(
        names.contains(&"deploy-v2".to_string()),
        "no Deployment deploy-v2 among {names:?}"
    );
    let seen = splits.lock().await.clone();
    let want = vec![
        b(&[("svc-v1", 100)]),
        b(&[("svc-v1", 100), ("svc-v2", 0)]),
        b(&[("svc-v1", 50), ("svc-v2", 50)]),
        b(&[("svc-v2", 100)]),
    ];
    assert_eq!(seen, want, "the split's stages");
    // Promotion retires the adopted Deployment like any stable, after scaleDownDelay.
    wait_gone(&deployments, "deploy-v1", 60).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_rollout_after_adoption_hands_foobar_back_as_it_was() -> Result<()> {
    let (cluster, client, uids) = setup("foobar", "foobar").await?;
    let kube = cluster.client.clone();
    let deployments = Api::<Deployment>::namespaced(kube.clone(), "default");
    let services = Api::<Service>::namespaced(kube.clone(), "default");
    let (d0, s0) = (
        deployments.get("foobar").await?,
        services.get("foobar").await?,
    );
    let rollouts: Api<Rollout> = Api::namespaced(kube.clone(), "default");
    rollouts
        .create(
            &PostParams::default(),
            &adopting_rollout("foobar", "foobar", "foobar"),
        )
        .await?;
    wait_healthy(&rollouts, "foobar", 1, 90).await?;
    rollouts.delete("foobar", &DeleteParams::default()).await?;
    wait_gone(&rollouts, "foobar", 60).await?;

    let (d1, s1) = (
        deployments.get("foobar").await?,
        services.get("foobar").await?,
    );
    assert_eq!(
        d1.metadata.labels, d0.metadata.labels,
        "the Deployment's labels"
    );
    assert_eq!(
        d1.metadata.annotations, d0.metadata.annotations,
        "the Deployment's annotations"
    );
    assert_eq!(d1.spec, d0.spec, "the Deployment's spec");
    assert_eq!(
        s1.metadata.labels, s0.metadata.labels,
        "the Service's labels"
    );
    assert_eq!(
        s1.metadata.annotations, s0.metadata.annotations,
        "the Service's annotations"
    );
    assert_eq!(s1.spec, s0.spec, "the Service's spec");
    ensure!(v1_pods(&kube).await? == uids, "an adopted pod was replaced");
    let target = cluster_ip(&kube, "default", "foobar").await?;
    eventually(30, "foobar serving v1 directly again", || async {
        let r = client.send(target, "foobar", 20).await?;
        ensure!(
            r.by_version.get("v1") == Some(&20),
            "{:?} {:?}",
            r.by_status,
            r.errors
        );
        Ok(())
    })
    .await?;
    Ok(())
}
