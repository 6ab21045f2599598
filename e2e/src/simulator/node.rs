//! Kubelet-only mode's Node: registered once, then kept alive with a Lease
//! in `kube-node-lease` and a Ready condition heartbeat, so a real node
//! lifecycle controller never marks it unreachable.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Error, Result, SimulatorOptions};

/// How often the Lease and the Node's Ready condition are renewed.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// The Lease namespace kubelets use.
const LEASE_NS: &str = "kube-node-lease";

fn node_object(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "weir.dev/simulated": "true",
            },
        },
        "spec": {},
    })
}

fn node_status(now: &str) -> serde_json::Value {
    let capacity = json!({ "cpu": "64", "memory": "256Gi", "pods": "1000" });
    json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                { "type": "InternalIP", "address": "127.0.0.1" },
                { "type": "Hostname", "address": "localhost" },
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "weir simulator kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": "v1.34.0-weir", "kubeProxyVersion": "v1.34.0-weir",
                "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "weir-simulator://0.1", "osImage": "weir simulator",
                "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
            },
        }
    })
}

/// Creates the Node (if missing) and marks it Ready; false when the server
/// does not serve Nodes (the local API server), which kubelet-only mode
/// tolerates.
pub(crate) async fn register(client: &Client, opts: &SimulatorOptions) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    let name = &opts.node_name;
    let err = |action| {
        move |source| Error::Kube {
            action,
            object: format!("Node {name}"),
            source,
        }
    };
    let node: Node = serde_json::from_value(node_object(name)).unwrap_or_default();
    match api.create(&PostParams::default(), &node).await {
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::warn!(node = %name, "the API server does not serve Nodes; running without one");
            return Ok(false);
        }
        other => drop(other.map_err(err("register"))?),
    }
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(node_status(&now)),
    )
    .await
    .map_err(err("mark ready"))?;
    Ok(true)
}

async fn beat(client: &Client, node: &str) -> Result<(), kube::Error> {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NS);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": node, "namespace": LEASE_NS },
        "spec": { "holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now },
    });
    let pp = PatchParams::apply("weir-kubelet").force();
    leases.patch(node, &pp, &Patch::Apply(lease)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let secs = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({ "status": { "conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "weir simulator kubelet is posting ready status",
        "lastHeartbeatTime": secs,
    }]}});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Strategic(status))
        .await?;
    Ok(())
}

/// Renews the node's Lease and Ready condition until shutdown.
pub(crate) async fn heartbeat(client: Client, opts: SimulatorOptions, shutdown: CancellationToken) {
    loop {
        if let Err(error) = beat(&client, &opts.node_name).await {
            tracing::warn!(%error, node = %opts.node_name, "node heartbeat failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}
