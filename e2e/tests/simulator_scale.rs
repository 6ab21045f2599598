//! How long the simulator takes to bring up many Deployments and Services
//! against the local API server. A benchmark, so it is ignored by default:
//! `cargo nextest run -p weir-e2e --test simulator_scale --run-ignored all --no-capture`.
//! With `WEIR_SCALE_KUBECONFIG` set it drives that server (for example a
//! `weir-local-cluster --no-simulator` process) instead of an in-process one,
//! which separates the simulator's CPU from the API server's.

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::eventually;
use tokio::time::Instant;
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::ipam::ClaimedBlock;
use weir_e2e::simulator::{Simulator, SimulatorOptions};

const APPS: usize = 200;
const REPLICAS: usize = 2;

fn objects(i: usize) -> Result<(Deployment, Service)> {
    let name = format!("app{i}");
    let d = serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": REPLICAS,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "weir-demo:v1",
                                           "ports": [{ "containerPort": 8080 }] }] },
            },
        },
    }))?;
    let s = serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default" },
        "spec": { "selector": { "app": name }, "ports": [{ "port": 80, "targetPort": 8080 }] },
    }))?;
    Ok((d, s))
}

#[tokio::test]
#[ignore = "benchmark: 200 Deployments x 2 pods; run with --run-ignored"]
async fn many_deployments_become_available() -> Result<()> {
    // Blocks of this process only: 400 pods, and 200 ClusterIPs from the in-process server.
    let (pods_block, services_block) = (ClaimedBlock::claim(22)?, ClaimedBlock::claim(24)?);
    let (server, client) = match std::env::var("WEIR_SCALE_KUBECONFIG") {
        Ok(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            let opts = kube::config::KubeConfigOptions::default();
            let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await?;
            (None, kube::Client::try_from(cfg)?)
        }
        Err(_) => {
            let opts = Options {
                service_cidr: services_block.cidr(),
                ..Options::default()
            };
            let server = LocalApiServer::start(opts).await?;
            let client = server.client().await?;
            (Some(server), client)
        }
    };
    let opts = SimulatorOptions {
        pod_cidr: pods_block.cidr(),
        service_cidr: services_block.cidr(),
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(client.clone(), opts).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    for i in 0..APPS {
        let (d, s) = objects(i)?;
        deploys.create(&PostParams::default(), &d).await?;
        svcs.create(&PostParams::default(), &s).await?;
    }
    let created = start.elapsed();
    eventually(
        300,
        "every Deployment available with a full slice",
        || async {
            let ds = deploys.list(&ListParams::default()).await?.items;
            let available = ds
                .iter()
                .filter(|d| {
                    d.status.as_ref().and_then(|s| s.available_replicas) == Some(REPLICAS as i32)
                })
                .count();
            let sl = slices.list(&ListParams::default()).await?.items;
            let full = sl
                .iter()
                .filter(|s| s.endpoints.as_ref().map_or(0, Vec::len) == REPLICAS)
                .count();
            ensure!(
                available == APPS && full == APPS,
                "{available}/{APPS} available, {full}/{APPS} full slices"
            );
            Ok(())
        },
    )
    .await?;
    let settled = start.elapsed();
    println!(
        "{APPS} Deployments x {REPLICAS} pods + {APPS} Services: created in {created:?}, all available with full slices in {settled:?}"
    );
    if let Some(server) = &server {
        let rv = server.resource_version();
        // A measurement window (writes counted over 3 s), not a wait for a state.
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!(
            "writes during 3 s of steady state: {}",
            server.resource_version() - rv
        );
    }
    sim.shutdown().await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
