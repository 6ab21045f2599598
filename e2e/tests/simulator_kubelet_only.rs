//! Kubelet-only mode against a real API server with a real
//! kube-controller-manager, named by `WEIR_E2E_KUBECONFIG`: the simulator
//! registers a Node, binds and runs the pods, and the real controllers
//! write the EndpointSlices and the Deployment status. Skipped (with a
//! message) when the variable is unset.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use weir_e2e::simulator::{Simulator, SimulatorOptions};

async fn real_cluster() -> Result<Option<Client>> {
    let Ok(path) = std::env::var("WEIR_E2E_KUBECONFIG") else {
        eprintln!(
            "skipped: WEIR_E2E_KUBECONFIG is not set (kubelet-only mode needs a real API server)"
        );
        return Ok(None);
    };
    let kc = Kubeconfig::read_from(&path)?;
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Some(Client::try_from(cfg)?))
}

#[tokio::test]
async fn kubelet_only_mode_runs_pods_for_a_real_controller_manager() -> Result<()> {
    let Some(client) = real_cluster().await? else {
        return Ok(());
    };
    let suffix = std::process::id();
    let node = format!("weir-sim-{suffix}");
    let ns = format!("weir-e2e-{suffix}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace = serde_json::from_value(json!({ "metadata": { "name": ns } }))?;
    namespaces.create(&PostParams::default(), &nsobj).await?;
    let opts = SimulatorOptions {
        controllers: false,
        kube_proxy: false,
        node_name: node.clone(),
        pod_cidr: (Ipv4Addr::new(127, 41, 0, 0), 16),
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(client.clone(), opts).await?;
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let outcome = loop {
        let st = deploys.get("web").await?.status.unwrap_or_default();
        if st.available_replicas == Some(2) {
            break Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            break Err(anyhow::anyhow!("deployment never became available: {st:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    for p in &list.items {
        let spec_node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        if spec_node.as_deref() != Some(node.as_str()) {
            bail!("pod not bound to the simulated node: {spec_node:?}");
        }
    }
    sim.shutdown().await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    let nodes: Api<Node> = Api::all(client);
    let _ = nodes.delete(&node, &DeleteParams::default()).await;
    outcome
}

/// Kubelet-only mode also works against the local API server (which serves
/// no Nodes): it binds an unscheduled pod to itself and runs it.
#[tokio::test]
async fn kubelet_only_mode_binds_and_runs_pods_on_the_local_server() -> Result<()> {
    use weir_e2e::apiserver::{LocalApiServer, Options};
    let server = LocalApiServer::start(Options::default()).await?;
    let client = server.client().await?;
    let opts = SimulatorOptions {
        controllers: false,
        kube_proxy: false,
        node_name: "sim-node".into(),
        pod_cidr: (Ipv4Addr::new(127, 42, 0, 0), 16),
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(client.clone(), opts).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "solo", "namespace": "default" },
        "spec": { "containers": [{ "name": "app", "image": "weir-demo:v5" }] },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (node, ip) = loop {
        let p = pods.get("solo").await?;
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
        if let (true, Some(node), Some(ip)) = (ready, node, ip) {
            break (node, ip);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("pod never bound and ready: {:?}", p.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(node, "sim-node");
    let ip: Ipv4Addr = ip.parse()?;
    assert_eq!(ip.octets()[..2], [127, 42]);
    tokio::net::TcpStream::connect((ip, 8080)).await?;
    sim.shutdown().await;
    server.shutdown().await;
    Ok(())
}
