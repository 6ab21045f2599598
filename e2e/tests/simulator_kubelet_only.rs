//! `weir-local-cluster --kubelet-only --kubeconfig FILE` against the local API server
//! (which plays no controllers and serves no Nodes): it binds an unscheduled pod to
//! itself and runs it, and stops its pods on SIGTERM. The same mode
//! against a real cluster is `external_kubelet_only.rs`, run by `scripts/test-external.sh`.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::json;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;
use support::cluster::Net;
use support::eventually;
use tokio::process::Command;
use weir_e2e::apiserver::LocalApiServer;

#[tokio::test]
async fn kubelet_only_binary_binds_and_runs_pods_of_an_api_server() -> Result<()> {
    let net = Net::claim()?;
    let server = LocalApiServer::start(net.server_options()).await?;
    let client = server.client().await?;
    let (base, len) = net.pods.cidr();
    let mut kubelet = Command::new(env!("CARGO_BIN_EXE_weir-local-cluster"))
        .arg("--kubelet-only")
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .args([
            "--node-name",
            "sim-node",
            "--pod-cidr",
            &format!("{base}/{len}"),
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "solo", "namespace": "default" },
        "spec": { "containers": [{ "name": "app", "image": "weir-demo:v5" }] },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let (node, ip) = eventually(20, "the pod bound and ready", || async {
        let p = pods.get("solo").await?;
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let status = p.status.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let ip: Option<Ipv4Addr> = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
        match (ready, node, ip) {
            (true, Some(node), Some(ip)) => Ok((node, ip)),
            seen => anyhow::bail!("(ready, node, IP) = {seen:?}"),
        }
    })
    .await?;
    assert_eq!(node, "sim-node");
    let (first, last) = (net.pods.nth(1), net.pods.nth(254));
    ensure!(
        Some(ip) >= first && Some(ip) <= last,
        "pod IP {ip} outside {base}/{len}"
    );
    tokio::net::TcpStream::connect((ip, 8080))
        .await
        .with_context(|| format!("the pod's demo app on {ip}:8080"))?;

    let pid = Pid::from_raw(i32::try_from(kubelet.id().context("no pid")?)?).context("pid")?;
    kill_process(pid, Signal::TERM)?;
    let status = tokio::time::timeout(Duration::from_secs(15), kubelet.wait())
        .await
        .context("no exit within 15 s of SIGTERM")??;
    assert!(status.success(), "exits cleanly on SIGTERM: {status:?}");
    eventually(10, "the pod's process stopped", || async {
        tokio::net::TcpStream::connect((ip, 8080)).await.is_err()
    })
    .await?;
    server.shutdown().await;
    Ok(())
}
