//! How long the simulator takes to bring up many Deployments and Services
//! against the local API server. A benchmark, so it is ignored by default:
//! `cargo nextest run -p weir-e2e --test simulator_scale --run-ignored all --no-capture`.
//! With `WEIR_SCALE_KUBECONFIG` set it drives that server (for example a
//! `weir-local-cluster --no-simulator` process) instead of an in-process one,
//! which separates the simulator's CPU from the API server's.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use tokio::time::Instant;
use weir_e2e::apiserver::{LocalApiServer, Options};
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
    let ip = Ipv4Addr::new(127, 98, (i / 250) as u8, (i % 250 + 1) as u8);
    let s = serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default" },
        "spec": { "clusterIP": ip.to_string(), "selector": { "app": name },
                  "ports": [{ "port": 80, "targetPort": 8080 }] },
    }))?;
    Ok((d, s))
}

#[tokio::test]
#[ignore = "benchmark: 200 Deployments x 2 pods; run with --run-ignored"]
async fn many_deployments_become_available() -> Result<()> {
    let (server, client) = match std::env::var("WEIR_SCALE_KUBECONFIG") {
        Ok(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            let opts = kube::config::KubeConfigOptions::default();
            let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await?;
            (None, kube::Client::try_from(cfg)?)
        }
        Err(_) => {
            let server = LocalApiServer::start(Options::default()).await?;
            let client = server.client().await?;
            (Some(server), client)
        }
    };
    let opts = SimulatorOptions {
        pod_cidr: (Ipv4Addr::new(127, 51, 0, 0), 16),
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
    let deadline = start + Duration::from_secs(300);
    loop {
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
        if available == APPS && full == APPS {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {available}/{APPS} available, {full}/{APPS} full slices after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settled = start.elapsed();
    println!(
        "{APPS} Deployments x {REPLICAS} pods + {APPS} Services: created in {created:?}, all available with full slices in {settled:?}"
    );
    if let Some(server) = &server {
        let rv = server.resource_version();
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
