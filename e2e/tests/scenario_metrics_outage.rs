//! Scenario 7 of issue 15, the metrics source down mid-rollout, as a user sees it: on the
//! demo's cluster (the real operator as a Pod serving the SMI TrafficMetrics API behind the
//! APIService, its `weir-proxy` gateway, two client Pods sending steady traffic), Rollout
//! `foobar` goes v1 → v2 with the TrafficMetrics API as its analysis source. After the first
//! passed check, the API goes down: the `weir-metrics` Service behind the APIService loses
//! its endpoints (its selector matches no Pod), so the aggregator answers 503, as a real
//! cluster does when the extension server is unreachable; the operator keeps running. The
//! rollout must pause with condition AnalysisError (shown by `kubectl describe rollout`),
//! hold its weights, and resume and promote once the Service selects the operator again.
//! The clients' traffic is counted throughout: the outage of the metrics API must cost them
//! nothing (every answer 2xx, no connection error; nothing is retried).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::binaries::binaries_dir;
use support::eventually;
use weir_crds::Rollout;
use weir_crds::rollout::{Phase, RolloutStatus};
use weir_e2e::demo::cluster::DemoCluster;
use weir_e2e::demo::live::{Traffic, client_second};
use weir_e2e::demo::story;
use weir_e2e::install::{METRICS_NS, METRICS_SERVICE};

/// The label the `weir-metrics` Service selects the operator's Pods by.
const SELECTOR_KEY: &str = "app.kubernetes.io/name";

/// `kubectl --kubeconfig K ARGS`: (exit success, stdout, stderr).
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Points the `weir-metrics` Service at Pods labelled `name`.
async fn select(services: &Api<Service>, name: &str) -> Result<()> {
    services
        .patch(
            METRICS_SERVICE,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"selector": {SELECTOR_KEY: name}}})),
        )
        .await?;
    Ok(())
}

fn analysis_error(s: &RolloutStatus) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == "AnalysisError" && c.status == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_api_down_pauses_the_rollout_and_its_return_resumes_it() -> Result<()> {
    let bins = binaries_dir(&["weir-operator", "weir-proxy", "kubectl-weir"])?;
    let dir = std::env::temp_dir().join(format!("weir-scenario-outage-{}", std::process::id()));
    let kubeconfig = dir.join("kubeconfig");
    let demo = DemoCluster::start(&dir, &kubeconfig, &bins, |l| println!("{l}")).await?;
    let rollouts: Api<Rollout> = Api::namespaced(demo.client.clone(), story::NAMESPACE);
    let services: Api<Service> = Api::namespaced(demo.client.clone(), METRICS_NS);
    let operator_label = services
        .get(METRICS_SERVICE)
        .await?
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get(SELECTOR_KEY).cloned())
        .ok_or_else(|| anyhow::anyhow!("the metrics Service selects no {SELECTOR_KEY}"))?;
    let v1: Rollout = serde_yaml::from_str(&story::rollout_yaml())?;
    rollouts.create(&PostParams::default(), &v1).await?;
    let status = async || -> Result<RolloutStatus> {
        Ok(rollouts
            .get(story::ROLLOUT)
            .await?
            .status
            .unwrap_or_default())
    };
    eventually(60, "v1 Healthy", || async {
        let s = status().await?;
        ensure!(s.phase == Some(Phase::Healthy), "{:?}", s.phase);
        Ok(())
    })
    .await?;
    let gateway = demo.gateway().await?;
    let traffic = Traffic::start(&demo.clients, gateway, Duration::from_secs(240));

    rollouts
        .patch(
            story::ROLLOUT,
            &PatchParams::default(),
            &Patch::Merge(&story::revision_patch("v2", 0.0)),
        )
        .await?;
    let first = eventually(90, "a first passed check of v2", || async {
        let s = status().await?;
        let checks = s.analysis.as_ref().map_or(0, |a| a.checks);
        ensure!(
            checks >= 1 && s.canary_revision == Some(2),
            "{:?} checks {checks}",
            s.phase
        );
        Ok(s)
    })
    .await?;
    let weights_before = first.weights;
    println!(
        "first check passed at step {:?}, weights {weights_before:?}",
        first.current_step
    );

    // The outage: the APIService's Service selects nothing.
    let answered_before = traffic.total().responses();
    select(&services, "weir-metrics-outage").await?;
    let raw = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/foobar-v2";
    let refused = eventually(30, "the TrafficMetrics API refused", || async {
        let (ok, out, err) = kubectl(&kubeconfig, &["get", "--raw", raw]).await?;
        ensure!(!ok, "still answering: {out}");
        Ok(err)
    })
    .await?;
    println!("kubectl get --raw while down: {}", refused.trim());
    ensure!(
        refused.contains("ServiceUnavailable") || refused.contains("503"),
        "not the aggregator's 503: {refused}"
    );
    let paused = eventually(60, "the AnalysisError pause", || async {
        let s = status().await?;
        ensure!(
            s.phase == Some(Phase::Paused) && analysis_error(&s),
            "{:?} {:?}",
            s.phase,
            s.message
        );
        Ok(s)
    })
    .await?;
    println!("paused: {:?}, weights {:?}", paused.message, paused.weights);
    ensure!(
        paused.weights == weights_before,
        "the weights moved during the outage: {weights_before:?} → {:?}",
        paused.weights
    );
    let (_, describe, _) = kubectl(&kubeconfig, &["describe", "rollout", story::ROLLOUT]).await?;
    println!("{describe}");
    for expected in ["Paused", "AnalysisError"] {
        ensure!(
            describe.contains(expected),
            "no {expected:?} in kubectl describe"
        );
    }
    let during = status().await?;
    ensure!(
        during.phase == Some(Phase::Paused) && during.weights == weights_before,
        "while the API is still down: {:?} {:?}",
        during.phase,
        during.weights
    );

    // The API returns: the rollout resumes by itself and promotes v2.
    select(&services, &operator_label).await?;
    let answered_during = traffic.total().responses() - answered_before;
    eventually(120, "v2 promoted after the API returned", || async {
        let s = status().await?;
        ensure!(
            s.phase == Some(Phase::Healthy) && s.stable_revision == Some(2),
            "{:?} stable {:?}: {:?}",
            s.phase,
            s.stable_revision,
            s.message
        );
        Ok(())
    })
    .await?;
    let (_, describe, _) = kubectl(&kubeconfig, &["describe", "rollout", story::ROLLOUT]).await?;
    println!("{describe}");
    for reason in ["AnalysisError", "AnalysisResumed", "Promoted"] {
        ensure!(describe.contains(reason), "no {reason} Event in describe");
    }

    let report = traffic.stop().await;
    let clients = client_second(&report);
    println!(
        "clients: {} 2xx, {} other, {} errors ({answered_during} answers during the outage); statuses {:?}, errors {:?}",
        clients.ok, clients.non_2xx, clients.errors, report.by_status, report.errors
    );
    ensure!(answered_during > 0, "no client traffic during the outage");
    ensure!(
        clients.non_2xx == 0 && clients.errors == 0,
        "the clients were not all served: {:?} {:?}",
        report.by_status,
        report.errors
    );
    demo.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
