//! Pods whose images name Weir's own binaries run them as real processes,
//! with the pod's env and a kubeconfig; a missing binary is reported.
//!
//! The stand-in for `weir-proxy` is a shell script that records its env and
//! then execs `weir-demo-app`, so the test needs nothing else built.

#[path = "support/lib.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::cluster::LocalCluster;
use support::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn scratch_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("weir-sim-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `dir/name`: records env to `dir/env.txt`, then execs the demo app.
fn stand_in(dir: &Path, name: &str) -> Result<()> {
    let demo = env!("CARGO_BIN_EXE_weir-demo-app");
    let script = format!(
        "#!/bin/sh\necho \"KUBECONFIG=$KUBECONFIG POD_IP=$POD_IP POD_NAME=$POD_NAME POD_NAMESPACE=$POD_NAMESPACE ARGS=$*\" > {}\necho $$ > {}\nexec {demo} \"$@\"\n",
        dir.join("env.txt").display(),
        dir.join("pid.txt").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A cluster whose simulator finds Weir's binaries in `bin_dir` only.
async fn start(bin_dir: PathBuf) -> Result<LocalCluster> {
    LocalCluster::start(|opts| opts.binaries = vec![bin_dir]).await
}

/// Whether nothing listens on `ip:8080` any more.
async fn refused(ip: Ipv4Addr) -> bool {
    tokio::net::TcpStream::connect((ip, 8080)).await.is_err()
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

/// The IP of Pod `name` once it is Ready; otherwise an error showing its status.
async fn ready_pod_ip(pods: &Api<Pod>, name: &str) -> Result<Ipv4Addr> {
    let pod = pods.get(name).await?;
    ready_ip(&pod).with_context(|| format!("{name} not ready: {:?}", pod.status))
}

/// A cluster running one Ready pod `gw` whose image is `weir-proxy` (the stand-in in `dir`)
/// with `args`; returns the cluster, the pods' API and the pod's IP.
async fn ready_proxy_pod(dir: &Path, args: &[&str]) -> Result<(LocalCluster, Api<Pod>, Ipv4Addr)> {
    stand_in(dir, "weir-proxy")?;
    let cluster = start(dir.to_path_buf()).await?;
    let pods: Api<Pod> = cluster.api();
    pods.create(&PostParams::default(), &pod("gw", "weir-proxy:dev", args)?)
        .await?;
    let ip = eventually(30, "the proxy pod to be ready", || {
        ready_pod_ip(&pods, "gw")
    })
    .await?;
    Ok((cluster, pods, ip))
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
    let args = ["--listen=$(POD_IP):8080", "--image=weir-demo:from-binary"];
    let (cluster, pods, ip) = ready_proxy_pod(&dir, &args).await?;
    let body = http_get(SocketAddr::from((ip, 8080))).await?;
    assert_eq!(body["version"], "from-binary");
    let env = std::fs::read_to_string(dir.join("env.txt"))?;
    // The kubeconfig is the pod's own: its ServiceAccount's token, as kubelet mounts one.
    let kubeconfig = env
        .split_whitespace()
        .find_map(|w| w.strip_prefix("KUBECONFIG="))
        .context("no KUBECONFIG")?;
    assert_ne!(
        Path::new(kubeconfig),
        cluster.server.kubeconfig_path(),
        "the pod got the admin kubeconfig"
    );
    let kc: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    assert_eq!(
        kc["users"][0]["name"], "system:serviceaccount:default:default",
        "{kc}"
    );
    let token = kc["users"][0]["user"]["token"]
        .as_str()
        .context("no token")?;
    let review = support::apiserver::raw(
        &cluster.server,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}})
        .to_string(),
    )
    .await;
    assert_eq!(review.status, 201, "{:?}", review.json());
    assert_eq!(
        review.json()["status"]["allowed"],
        false,
        "the default ServiceAccount holds no role"
    );
    assert!(
        env.contains(&format!("POD_IP={ip} POD_NAME=gw POD_NAMESPACE=default")),
        "{env}"
    );
    assert!(env.contains(&format!("ARGS=--listen={ip}:8080")), "{env}");
    pods.delete("gw", &DeleteParams::default()).await?;
    eventually(15, "the process to stop serving", || refused(ip)).await?;
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn simulator_shutdown_kills_pod_processes() -> Result<()> {
    let dir = scratch_dir("kill")?;
    stand_in(&dir, "weir-operator")?;
    let mut cluster = start(dir.clone()).await?;
    let pods: Api<Pod> = cluster.api();
    let args = ["--listen=$(POD_IP):8080"];
    pods.create(
        &PostParams::default(),
        &pod("op", "weir-operator:dev", &args)?,
    )
    .await?;
    let ip = eventually(30, "the operator pod to be ready", || {
        ready_pod_ip(&pods, "op")
    })
    .await?;
    let sim = cluster.sim.take().context("simulator")?;
    sim.shutdown().await;
    eventually(10, "the process to be gone", || refused(ip)).await?;
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn missing_binary_leaves_the_pod_not_ready_with_an_event() -> Result<()> {
    let dir = scratch_dir("empty")?;
    let cluster = start(dir.clone()).await?;
    let pods: Api<Pod> = cluster.api();
    pods.create(
        &PostParams::default(),
        &pod("op", "weir-operator:dev", &[])?,
    )
    .await?;
    let events: Api<Event> = cluster.api();
    let event = eventually(15, "a BinaryNotFound event", || async {
        let lp = ListParams::default().fields("involvedObject.name=op");
        let list = events.list(&lp).await?.items;
        let reasons: Vec<Option<String>> = list.iter().map(|e| e.reason.clone()).collect();
        list.into_iter()
            .find(|e| e.reason.as_deref() == Some("BinaryNotFound"))
            .with_context(|| format!("events with reasons {reasons:?}"))
    })
    .await?;
    assert!(event.message.unwrap_or_default().contains("weir-operator"));
    assert!(ready_ip(&pods.get("op").await?).is_none());
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn dropping_the_simulator_kills_pod_processes() -> Result<()> {
    let dir = scratch_dir("drop")?;
    let (mut cluster, _pods, ip) = ready_proxy_pod(&dir, &["--listen=$(POD_IP):8080"]).await?;
    drop(cluster.sim.take());
    eventually(10, "the process to be gone", || refused(ip)).await?;
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn a_killed_container_is_restarted_and_its_exit_reported_as_a_runtime_does() -> Result<()> {
    let dir = scratch_dir("restart")?;
    let (cluster, pods, ip) = ready_proxy_pod(&dir, &["--listen=$(POD_IP):8080"]).await?;
    http_get(SocketAddr::from((ip, 8080))).await?;
    // Killing the process changes only the container's state, not the pod object: the
    // kubelet must still see it, restart the container and say so in the status.
    let pid = std::fs::read_to_string(dir.join("pid.txt"))?;
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()?;
    assert!(killed.success(), "kill -9 {pid}");
    let restarted = eventually(30, "the restart in the pod's status", || async {
        let pod = pods.get("gw").await.ok()?;
        let c = pod.status?.container_statuses?.into_iter().next()?;
        let terminated = c.last_state?.terminated?;
        (c.restart_count >= 1).then_some((c.restart_count, terminated.exit_code))
    })
    .await?;
    assert_eq!(restarted.1, 137, "SIGKILL's exit code: {restarted:?}");
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
