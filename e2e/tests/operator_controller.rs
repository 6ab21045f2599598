//! The Rollout controller against the local control plane and the workload simulator:
//! the brief's v1→v2 workflow, step by step, checked through the kube client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use std::sync::Arc;
use support::eventually;
use support::operator::*;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_operator::analysis::FixedSource;
use weir_operator::controller;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_v2_walks_every_step_and_is_promoted() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let splits = record_splits(&client);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;

    set_image_v2(&rollouts).await?;
    let paused = eventually(30, "the pause step", || async {
        let ro = rollouts.get("foobar").await.ok()?;
        let s = ro.status?;
        (s.phase == Some(Phase::Paused) && s.current_step == Some(3)).then_some(s)
    })
    .await?;
    assert_eq!(paused.weights.unwrap().canary, 50);
    assert_eq!(paused.step_progress.as_deref(), Some("4/6"));
    let promote = serde_json::json!({"status": {"promoteStep": 3}});
    rollouts
        .patch_status("foobar", &PatchParams::default(), &Patch::Merge(&promote))
        .await?;
    let done = eventually(30, "v2 promoted", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        (s.phase == Some(Phase::Healthy) && s.stable_revision == Some(2)).then_some(s)
    })
    .await?;
    assert_eq!(done.canary_revision, None);

    let history = splits.lock().await.clone();
    assert_eq!(history, full_walk());
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    wait_gone(&services, "foobar-v1", 10).await?;
    assert!(
        services.get_opt("foobar").await?.is_some(),
        "the root Service exists"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait_gone(&deployments, "foobar-v1", 15).await?;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let notes: Vec<String> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("foobar"))
        .filter_map(|e| e.note)
        .collect();
    for expected in [
        "Canary weight 0 → 20 (step 1/6)",
        "Canary weight 20 → 50 (step 3/6)",
        "Promoted foobar-v2",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(expected)),
            "no event {expected:?} in {notes:#?}"
        );
    }
    cluster.stop_controller();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_puts_all_traffic_back_and_delete_cleans_up() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the pause step").await?;
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"abort": true}})),
        )
        .await?;
    eventually(15, "Aborted", || async {
        (phase(&rollouts).await == Some(Phase::Aborted)).then_some(())
    })
    .await?;
    let splits: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &controller::split_resource());
    let split = splits.get("foobar-rollout").await?;
    assert_eq!(split.data["spec"]["backends"][0]["weight"], 100);
    assert_eq!(split.data["spec"]["backends"][1]["weight"], 0);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually(10, "canary scaled to 0", || async {
        (deployments.get("foobar-v2").await.ok()?.spec.replicas == Some(0)).then_some(())
    })
    .await?;

    rollouts.delete("foobar", &Default::default()).await?;
    wait_gone(&rollouts, "foobar", 15).await?;
    assert!(
        splits.get_opt("foobar-rollout").await?.is_none(),
        "the finalizer removed the split"
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    assert!(
        services.get_opt("foobar").await?.is_none(),
        "the finalizer removed the root Service"
    );
    cluster.stop_controller();
    Ok(())
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl on PATH");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_and_describe_show_phase_step_weights_conditions_and_events() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let kubeconfig = cluster.server.kubeconfig_path().to_path_buf();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the pause step").await?;

    let get = kubectl(&kubeconfig, &["get", "rollouts"]);
    println!("{get}");
    let header: Vec<&str> = get.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PHASE",
            "STEP",
            "CANARY",
            "STABLE",
            "CANARY-REV",
            "AGE"
        ]
    );
    let row: Vec<&str> = get.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..6], ["foobar", "Paused", "4/6", "50", "1", "2"]);

    let describe = kubectl(&kubeconfig, &["describe", "rollout", "foobar"]);
    println!("{describe}");
    for expected in [
        "Phase:",
        "Paused",
        "Waiting at step 4/6 for `kubectl weir promote`",
        "PausedForPromotion",
        "Canary weight 20 → 50 (step 3/6)",
        "WeightChanged",
    ] {
        assert!(
            describe.contains(expected),
            "describe lacks {expected:?}:\n{describe}"
        );
    }
    cluster.stop_controller();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_deleted_by_hand_come_back_and_retry_restarts_an_aborted_canary() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    let splits: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &controller::split_resource());
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    splits.delete("foobar-rollout", &Default::default()).await?;
    services.delete("foobar", &Default::default()).await?;
    eventually(15, "the split and root Service re-created", || async {
        let split = splits.get_opt("foobar-rollout").await.ok()??;
        services.get_opt("foobar").await.ok()??;
        (split.data["spec"]["backends"][0]["service"] == "foobar-v1").then_some(())
    })
    .await?;

    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the pause step").await?;
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"abort": true}})),
        )
        .await?;
    eventually(15, "Aborted", || async {
        (phase(&rollouts).await == Some(Phase::Aborted)).then_some(())
    })
    .await?;
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"abort": false}})),
        )
        .await?;
    let retried = eventually(30, "the retried canary back at its pause", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        (s.phase == Some(Phase::Paused) && s.canary_revision == Some(2)).then_some(s)
    })
    .await?;
    assert_eq!(retried.weights.unwrap().canary, 50);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        deployments.get("foobar-v2").await?.spec.replicas,
        Some(2),
        "the canary is scaled back up"
    );
    cluster.stop_controller();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stable_deployment_deleted_mid_canary_comes_back_from_its_kept_template() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the pause step").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let before = deployments.get("foobar-v1").await?;
    deployments.delete("foobar-v1", &Default::default()).await?;
    let back = eventually(20, "foobar-v1 re-created and available", || async {
        let d = deployments.get("foobar-v1").await?;
        anyhow::ensure!(d.metadata.uid != before.metadata.uid, "not yet deleted");
        let available = d.status.as_ref().and_then(|s| s.available_replicas);
        anyhow::ensure!(available == Some(2), "{available:?} of 2 available");
        Ok(d)
    })
    .await?;
    let image = |d: &Deployment| {
        d.spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers[0].image.clone())
    };
    assert_eq!(image(&back).as_deref(), Some("weir-demo:v1"));
    assert_eq!(
        back.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone()),
        before
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
    );
    let s = rollouts.get("foobar").await?.status.unwrap_or_default();
    assert_eq!(
        (s.phase, s.stable_revision, s.canary_revision),
        (Some(Phase::Paused), Some(1), Some(2)),
        "the canary goes on: {:?}",
        s.message
    );
    cluster.stop_controller();
    Ok(())
}
