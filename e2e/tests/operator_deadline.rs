//! `progressDeadline` on revisions whose pods never become available, against the local
//! control plane and the workload simulator: the first revision goes Degraded, a canary
//! pauses with stable keeping the traffic, and both say what the pods report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::sync::Arc;
use support::eventually;
use support::operator::*;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_operator::analysis::FixedSource;

/// The test Rollout with `image`, one replica and a 3 s progress deadline.
fn stuck_rollout(image: &str) -> Rollout {
    let mut ro = rollout_yaml(image);
    ro.spec.replicas = 1;
    ro.spec.progress_deadline = Some("3s".into());
    ro
}

/// The Progressing condition's (status, reason, message).
async fn progressing(rollouts: &Api<Rollout>) -> Result<(String, String, String)> {
    let status = rollouts.get("foobar").await?.status.unwrap_or_default();
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .with_context(|| format!("no Progressing condition in {:?}", status.conditions))?;
    Ok((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits for an `events.k8s.io` Event on the Rollout with `reason` whose note contains `text`.
async fn wait_event(client: &kube::Client, reason: &str, text: &str) -> Result<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    eventually(15, &format!("a {reason} Event"), || async {
        let list = events.list(&ListParams::default()).await?.items;
        let reasons: Vec<_> = list.iter().map(|e| e.reason.clone()).collect();
        list.into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.note.as_deref().is_some_and(|n| n.contains(text))
            })
            .with_context(|| format!("Events with reasons {reasons:?}"))
    })
    .await
}

/// Runs the real kubectl against the local control plane.
fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .context("kubectl is not on PATH")?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_revision_whose_image_never_runs_is_degraded_with_the_pods_reason() -> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &stuck_rollout("nope:v1"))
        .await?;
    wait_phase(
        &rollouts,
        Phase::Degraded,
        30,
        "the first revision past its deadline",
    )
    .await?;
    let (status, reason, message) = progressing(&rollouts).await?;
    println!("Progressing {status} {reason}: {message}");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert!(
        message.contains("foobar-v1: 0/1 pods available"),
        "{message}"
    );
    // The simulator reports an image it cannot run as kubelet does an image it cannot pull.
    ensure!(
        message.contains("ErrImagePull") || message.contains("ImagePullBackOff"),
        "the condition names the pods' waiting reason: {message}"
    );
    assert!(message.contains("nope:v1"), "{message}");
    let event = wait_event(&client, "ProgressDeadlineExceeded", "nope:v1").await?;
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    let describe = kubectl(
        cluster.server.kubeconfig_path(),
        &["describe", "rollout", "foobar"],
    )?;
    println!("{describe}");
    for expected in [
        "Degraded",
        "ProgressDeadlineExceeded",
        "nope:v1",
        "ImagePull",
    ] {
        assert!(
            describe.contains(expected),
            "describe lacks {expected:?}:\n{describe}"
        );
    }

    // A template that runs brings it to Healthy.
    rollouts
        .patch(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&image_patch("weir-demo:v1")),
        )
        .await?;
    wait_phase(&rollouts, Phase::Healthy, 30, "a fixed first revision").await?;
    cluster.stop_controller();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_pods_never_run_pauses_with_the_pods_reason_and_stable_keeps_traffic()
-> Result<()> {
    let mut cluster = start(Some(Arc::new(FixedSource::healthy()))).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &stuck_rollout("weir-demo:v1"))
        .await?;
    wait_phase(&rollouts, Phase::Healthy, 30, "v1 Healthy").await?;
    // The demo app refuses an error rate above 1: the container waits with
    // CreateContainerConfigError, as kubelet reports a container it cannot configure.
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app", "image": "weir-demo:v2", "ports": [{"containerPort": 8080}],
        "env": [{"name": "ERROR_RATE", "value": "1.5"}]
    }]}}}});
    rollouts
        .patch("foobar", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the canary past its deadline").await?;
    let (_, reason, message) = progressing(&rollouts).await?;
    println!("Progressing {reason}: {message}");
    assert_eq!(reason, "ProgressDeadlineExceeded");
    assert!(
        message.contains("foobar-v2: 0/1 pods available"),
        "{message}"
    );
    assert!(message.contains("CreateContainerConfigError"), "{message}");
    let split = rollouts
        .get("foobar")
        .await?
        .status
        .unwrap()
        .weights
        .unwrap();
    assert_eq!(
        (split.stable, split.canary),
        (100, 0),
        "stable keeps all traffic"
    );
    wait_event(&client, "Paused", "CreateContainerConfigError").await?;
    cluster.stop_controller();
    Ok(())
}
