//! Kubelet-only mode against a real API server with a real kube-controller-manager: the
//! `weir-local-cluster --kubelet-only` binary registers a Node, runs the pods scheduled to
//! it, and the real controllers write the Deployment status from their Ready conditions.
//!
//! This needs a cluster outside the repository, so it is ignored by `scripts/test.sh` and
//! run by `scripts/test-external.sh`, which requires `WEIR_E2E_KUBECONFIG`. Run any other
//! way without that variable, it fails and says so.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::{eventually, seen};
use tokio::process::Command;
use weir_e2e::simulator::ipam::ClaimedBlock;

/// The variable naming the external cluster's kubeconfig.
const VAR: &str = "WEIR_E2E_KUBECONFIG";

#[tokio::test]
#[ignore = "external: needs a real cluster named by WEIR_E2E_KUBECONFIG; run scripts/test-external.sh"]
async fn kubelet_only_binary_runs_pods_for_a_real_controller_manager() -> Result<()> {
    let path = std::env::var(VAR).with_context(|| {
        format!("{VAR} is not set: this test needs the kubeconfig of a real cluster with a kube-controller-manager (see scripts/test-external.sh)")
    })?;
    let kc = Kubeconfig::read_from(&path).with_context(|| format!("{VAR}={path}"))?;
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(cfg)?;
    let suffix = std::process::id();
    let node = format!("weir-sim-{suffix}");
    let ns = format!("weir-e2e-{suffix}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace = serde_json::from_value(json!({ "metadata": { "name": ns } }))?;
    namespaces.create(&PostParams::default(), &nsobj).await?;
    let pods_block = ClaimedBlock::claim(24)?;
    let (base, len) = pods_block.cidr();
    let mut kubelet = Command::new(env!("CARGO_BIN_EXE_weir-local-cluster"))
        .args([
            "--kubelet-only",
            "--kubeconfig",
            &path,
            "--node-name",
            &node,
        ])
        .args(["--pod-cidr", &format!("{base}/{len}")])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let outcome = async {
        let deploy: Deployment = serde_json::from_value(json!({
            "metadata": { "name": "web", "namespace": ns },
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": {
                        "nodeSelector": { "kubernetes.io/hostname": node },
                        "containers": [{ "name": "app", "image": "weir-demo:v1",
                                         "ports": [{ "containerPort": 8080 }] }],
                    },
                },
            },
        }))?;
        let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        deploys.create(&PostParams::default(), &deploy).await?;
        eventually(120, "the Deployment available 2", || async {
            let st = deploys.get("web").await?.status.unwrap_or_default();
            seen(st.available_replicas == Some(2), "status", st).map(drop)
        })
        .await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let list = pods.list(&ListParams::default().labels("app=web")).await?;
        for p in &list.items {
            let spec_node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            if spec_node.as_deref() != Some(node.as_str()) {
                bail!("pod not bound to the simulated node: {spec_node:?}");
            }
        }
        Ok(())
    }
    .await;
    if let Some(pid) = kubelet
        .id()
        .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
    {
        let _ = kill_process(pid, Signal::TERM);
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), kubelet.wait()).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    let nodes: Api<Node> = Api::all(client);
    let _ = nodes.delete(&node, &DeleteParams::default()).await;
    outcome
}
