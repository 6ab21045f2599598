//! Pods whose images name Weir's own binaries run them as real processes,
//! with the pod's env and a kubeconfig; a missing binary is reported.
//!
//! The stand-in for `weir-proxy` is a shell script that records its env and
//! then execs `weir-demo-app`, so the test needs nothing else built.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};
use weir_e2e::simulator::{Simulator, SimulatorOptions};

fn scratch_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("weir-sim-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `dir/name`: records env to `dir/env.txt`, then execs the demo app.
fn stand_in(dir: &Path, name: &str) -> Result<()> {
    let demo = env!("CARGO_BIN_EXE_weir-demo-app");
    let script = format!(
        "#!/bin/sh\necho \"KUBECONFIG=$KUBECONFIG POD_IP=$POD_IP POD_NAME=$POD_NAME POD_NAMESPACE=$POD_NAMESPACE ARGS=$*\" > {}\nexec {demo} \"$@\"\n",
        dir.join("env.txt").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

async fn start(octet: u8, bin_dir: PathBuf) -> Result<(Handle, Simulator, Client)> {
    let server = LocalApiServer::start(Options::default()).await?;
    let client = server.client().await?;
    let opts = SimulatorOptions {
        pod_cidr: (Ipv4Addr::new(127, octet, 0, 0), 16),
        kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
        binaries: vec![bin_dir],
        resync: Duration::from_secs(2),
        ..SimulatorOptions::default()
    };
    let sim = Simulator::start(client.clone(), opts).await?;
    Ok((server, sim, client))
}

async fn eventually<T, Fut>(secs: u64, what: &str, mut check: impl FnMut() -> Fut) -> Result<T>
where
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(v)) = check().await {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out after {secs}s waiting for {what}")
}

fn pod(name: &str, image: &str, args: &[&str]) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "default" },
        "spec": { "containers": [{
            "name": "main", "image": image, "args": args,
            "ports": [{ "containerPort": 8080 }],
        }]},
    }))?)
}

fn ready_ip(p: &Pod) -> Option<Ipv4Addr> {
    let st = p.status.as_ref()?;
    let ready = st
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready.then(|| st.pod_ip.as_deref()?.parse().ok()).flatten()
}

async fn http_get(addr: SocketAddr) -> Result<serde_json::Value> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await??;
    Ok(serde_json::from_str(
        out.split("\r\n\r\n").nth(1).context("no body")?,
    )?)
}

#[tokio::test]
async fn proxy_image_runs_the_binary_with_pod_env_and_dies_with_the_pod() -> Result<()> {
    let dir = scratch_dir("bin")?;
    stand_in(&dir, "weir-proxy")?;
    let (server, sim, client) = start(31, dir.clone()).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let args = ["--listen=$(POD_IP):8080", "--image=weir-demo:from-binary"];
    pods.create(&PostParams::default(), &pod("gw", "weir-proxy:dev", &args)?)
        .await?;
    let ip = eventually(30, "the binary's pod to be ready", || async {
        Ok(ready_ip(&pods.get("gw").await?))
    })
    .await?;
    let body = http_get(SocketAddr::from((ip, 8080))).await?;
    assert_eq!(body["version"], "from-binary");
    let env = std::fs::read_to_string(dir.join("env.txt"))?;
    let kubeconfig = server.kubeconfig_path().display().to_string();
    assert!(env.contains(&format!("KUBECONFIG={kubeconfig} ")), "{env}");
    assert!(
        env.contains(&format!("POD_IP={ip} POD_NAME=gw POD_NAMESPACE=default")),
        "{env}"
    );
    assert!(env.contains(&format!("ARGS=--listen={ip}:8080")), "{env}");
    pods.delete("gw", &DeleteParams::default()).await?;
    eventually(15, "the process to stop serving", || async {
        Ok(tokio::net::TcpStream::connect((ip, 8080))
            .await
            .is_err()
            .then_some(()))
    })
    .await?;
    sim.shutdown().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn simulator_shutdown_kills_pod_processes() -> Result<()> {
    let dir = scratch_dir("kill")?;
    stand_in(&dir, "weir-operator")?;
    let (server, sim, client) = start(32, dir.clone()).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let args = ["--listen=$(POD_IP):8080"];
    pods.create(
        &PostParams::default(),
        &pod("op", "weir-operator:dev", &args)?,
    )
    .await?;
    let ip = eventually(30, "the operator pod to be ready", || async {
        Ok(ready_ip(&pods.get("op").await?))
    })
    .await?;
    sim.shutdown().await;
    eventually(10, "the process to be gone", || async {
        Ok(tokio::net::TcpStream::connect((ip, 8080))
            .await
            .is_err()
            .then_some(()))
    })
    .await?;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn missing_binary_leaves_the_pod_not_ready_with_an_event() -> Result<()> {
    let dir = scratch_dir("empty")?;
    let (server, sim, client) = start(33, dir.clone()).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("op", "weir-operator:dev", &[])?,
    )
    .await?;
    let events: Api<Event> = Api::namespaced(client, "default");
    let event = eventually(15, "a BinaryNotFound event", || async {
        let lp = ListParams::default().fields("involvedObject.name=op");
        let list = events.list(&lp).await?.items;
        Ok(list
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("BinaryNotFound")))
    })
    .await?;
    assert!(event.message.unwrap_or_default().contains("weir-operator"));
    assert!(ready_ip(&pods.get("op").await?).is_none());
    sim.shutdown().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn dropping_the_simulator_kills_pod_processes() -> Result<()> {
    let dir = scratch_dir("drop")?;
    stand_in(&dir, "weir-proxy")?;
    let (server, sim, client) = start(34, dir.clone()).await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let args = ["--listen=$(POD_IP):8080"];
    pods.create(&PostParams::default(), &pod("gw", "weir-proxy:dev", &args)?)
        .await?;
    let ip = eventually(30, "the proxy pod to be ready", || async {
        Ok(ready_ip(&pods.get("gw").await?))
    })
    .await?;
    drop(sim);
    eventually(10, "the process to be gone", || async {
        Ok(tokio::net::TcpStream::connect((ip, 8080))
            .await
            .is_err()
            .then_some(()))
    })
    .await?;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
