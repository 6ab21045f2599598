//! The whole data path: the operator runs the `weir-proxy` gateway, the root Service
//! selects it, and a client Pod calling `Host: foobar` gets the split's weights at every
//! step, including uneven ones, with every answer a success.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Result, ensure};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::net::SocketAddr;
use std::sync::Arc;
use support::binaries::binaries_dir;
use support::client_pod::ClientPod;
use support::gateway::{Gateway, cluster_ip};
use support::operator::{rollout_yaml, set_image_v2, start_with, wait_phase};
use support::{eventually, seen};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::loadgen::Report;
use weir_operator::analysis::FixedSource;

/// Requests per measured step.
const REQUESTS: u64 = 400;

/// How many standard deviations from the expected count a share may stray: a correct
/// gateway fails a step with probability below 1e-5.
const Z: f64 = 4.5;

/// The counts of v2 answers out of `n` that a picker sending each request to v2 with
/// probability `p` produces, but for a 1e-5 chance: `n·p ± Z·√(n·p·(1-p))`.
fn binomial_bounds(n: u64, p: f64) -> (u64, u64) {
    let mean = n as f64 * p;
    let spread = Z * (n as f64 * p * (1.0 - p)).sqrt();
    (
        (mean - spread).max(0.0).ceil() as u64,
        (mean + spread).min(n as f64).floor() as u64,
    )
}

/// Sends [`REQUESTS`] from `client` to `target`; fails on any answer that is not a 2xx
/// or any error, and returns how many answers came from v2.
async fn measure(client: &ClientPod, target: SocketAddr) -> Result<(Report, u64)> {
    let report = client.send(target, "foobar", REQUESTS).await?;
    let failures: u64 = report
        .by_status
        .iter()
        .filter(|(code, _)| !(200..300).contains(*code))
        .map(|(_, n)| n)
        .sum::<u64>()
        + report.errors.values().sum::<u64>();
    ensure!(
        failures == 0,
        "{failures} of {REQUESTS} requests failed: statuses {:?}, errors {:?}, bodies {:?}",
        report.by_status,
        report.errors,
        report.failure_bodies
    );
    let versions: u64 = report.by_version.values().sum();
    ensure!(
        versions == REQUESTS,
        "{versions} of {REQUESTS} answers named a version: {:?}",
        report.by_version
    );
    let v2 = report.by_version.get("v2").copied().unwrap_or(0);
    Ok((report, v2))
}

/// Promotes past the pause at step `step` and waits for the Rollout to move on.
async fn promote(rollouts: &Api<Rollout>, step: i32) -> Result<()> {
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"promoteStep": step}})),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pod_gets_each_steps_weights_through_the_gateway() -> Result<()> {
    let proxy_dir = binaries_dir(&["weir-proxy"])?;
    let mut cluster = start_with(Some(Arc::new(FixedSource::healthy())), true, |opts| {
        opts.binaries = vec![proxy_dir]
    })
    .await?;
    let kube = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(kube.clone(), "default");
    let mut ro = rollout_yaml("weir-demo:v1");
    if let Some(strategy) = ro.spec.strategy.as_mut() {
        strategy.steps = Some(serde_yaml::from_str(
            "[{setWeight: 20}, {pause: {}}, {setWeight: 90}, {pause: {}}]",
        )?);
    }
    rollouts.create(&PostParams::default(), &ro).await?;
    wait_phase(&rollouts, Phase::Healthy, 30, "v1 Healthy").await?;
    // The Rollout's pods run as ServiceAccount `default`.
    let client = ClientPod::start(&kube, "default", "load-client").await?;
    client.allow(&kube, "default").await?;
    let gateway = Gateway::find(&kube, "default", 30).await?;
    let target = cluster_ip(&kube, "default", "foobar").await?;

    gateway
        .wait_for_split("default", "foobar", &[("foobar-v1", 100)], &[&client], 30)
        .await?;
    let (report, v2) = measure(&client, target).await?;
    println!("v1 alone: {:?}", report.by_version);
    assert_eq!(
        v2, 0,
        "v2 answered before the rollout: {:?}",
        report.by_version
    );

    set_image_v2(&rollouts).await?;
    for (step, canary) in [(1, 20u64), (3, 90)] {
        eventually(40, &format!("the pause at step {step}"), || async {
            let s = rollouts.get("foobar").await?.status.unwrap_or_default();
            let at = (s.phase, s.current_step);
            seen(
                at == (Some(Phase::Paused), Some(step)),
                "phase and step",
                at,
            )
        })
        .await?;
        let weights = [("foobar-v1", 100 - canary), ("foobar-v2", canary)];
        gateway
            .wait_for_split("default", "foobar", &weights, &[&client], 20)
            .await?;
        let (report, v2) = measure(&client, target).await?;
        let (lo, hi) = binomial_bounds(REQUESTS, canary as f64 / 100.0);
        println!(
            "at {canary}% (v2 expected in {lo}..={hi}): {:?}",
            report.by_version
        );
        assert!(
            (lo..=hi).contains(&v2),
            "v2 answered {v2} of {REQUESTS} at weight {canary}, outside {lo}..={hi}: {:?}",
            report.by_version
        );
        promote(&rollouts, step).await?;
    }

    eventually(30, "v2 promoted", || async {
        let s = rollouts.get("foobar").await?.status.unwrap_or_default();
        let state = (s.phase, s.stable_revision);
        seen(
            state == (Some(Phase::Healthy), Some(2)),
            "phase and stable",
            state,
        )
    })
    .await?;
    gateway
        .wait_for_split("default", "foobar", &[("foobar-v2", 100)], &[&client], 20)
        .await?;
    let (report, v2) = measure(&client, target).await?;
    println!("v2 alone: {:?}", report.by_version);
    assert_eq!(
        v2, REQUESTS,
        "v1 answered after promotion: {:?}",
        report.by_version
    );
    cluster.stop_controller();
    Ok(())
}

#[test]
fn binomial_bounds_reject_a_gateway_that_ignores_weights() {
    // 400 requests: at 20% the count lies in 44..=116 and at 90% in 333..=387; an even
    // pick (200) fails both, as does a pick with the weights swapped.
    assert_eq!(binomial_bounds(400, 0.2), (44, 116));
    assert_eq!(binomial_bounds(400, 0.9), (333, 387));
}
