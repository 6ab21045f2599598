//! The whole data path: the operator runs the `weir-proxy` gateway, the root Service
//! selects it, and clients calling `Host: foobar` get the split's weights.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/operator.rs"]
mod operator_support;

use anyhow::{Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_support::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::{Phase, Verdict};
use weir_e2e::loadgen::{self, LoadOptions};
use weir_operator::checks::FixedVerdict;

/// Versions seen over `requests` requests through `target`; None unless every answer was a 200.
async fn versions(target: SocketAddr, requests: u64) -> Option<BTreeMap<String, u64>> {
    let mut opts = LoadOptions::new(target, "foobar");
    opts.source = Some(IpAddr::V4(Ipv4Addr::new(127, 71, 250, 1)));
    opts.max_requests = Some(requests);
    opts.duration = Duration::from_secs(30);
    opts.connections = 4;
    let result = loadgen::run(opts).await;
    let statuses = &result.report.by_status;
    let clean = statuses.keys().eq([200].iter()) && result.report.errors.is_empty();
    if !clean {
        println!("not all 200: {statuses:?} {:?}", result.report.errors);
    }
    (clean && result.report.responses() == requests).then(|| result.report.by_version.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_the_root_service_get_the_split_weights_through_the_gateway() -> Result<()> {
    let mut cluster = start_with(71, Some(Arc::new(FixedVerdict(Verdict::Pass))), true).await?;
    let client = cluster.client.clone();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    let mut ro = rollout_yaml("weir-demo:v1");
    ro.spec.strategy.as_mut().unwrap().steps =
        Some(serde_yaml::from_str("[{setWeight: 50}, {pause: {}}]")?);
    rollouts.create(&PostParams::default(), &ro).await?;
    eventually(30, "v1 Healthy", || async {
        (phase(&rollouts).await == Some(Phase::Healthy)).then_some(())
    })
    .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually(30, "the gateway available", || async {
        let d = deployments.get("weir-gateway").await.ok()?;
        (d.status?.available_replicas? >= 1).then_some(())
    })
    .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let ip: Ipv4Addr = services
        .get("foobar")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("root ClusterIP")?
        .parse()?;
    let target = SocketAddr::new(IpAddr::V4(ip), 80);

    // Give the gateway a moment to see the split, then every request is v1's.
    let v1_only = eventually(20, "v1 traffic through the gateway", || async {
        let seen = versions(target, 50).await?;
        (seen.get("v1") == Some(&50)).then_some(seen)
    })
    .await?;
    assert_eq!(v1_only.len(), 1);

    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "the pause at 50%").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Retried only when some answer was not a 200 (a loaded machine); the share is never retried.
    let seen = eventually(60, "400 clean answers", || versions(target, 400)).await?;
    let v2 = *seen.get("v2").unwrap_or(&0) as f64 / 400.0;
    println!("at 50/50: {seen:?}");
    assert!(
        (0.40..=0.60).contains(&v2),
        "v2 got {v2:.3} of traffic at weight 50: {seen:?}"
    );

    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"promoteStep": 1}})),
        )
        .await?;
    eventually(30, "v2 promoted", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        (s.phase == Some(Phase::Healthy) && s.stable_revision == Some(2)).then_some(())
    })
    .await?;
    let v2_only = eventually(20, "v2 alone", || async {
        let seen = versions(target, 100).await?;
        (seen.get("v2") == Some(&100)).then_some(seen)
    })
    .await?;
    assert_eq!(v2_only.len(), 1);
    cluster.stop_controller();
    Ok(())
}
