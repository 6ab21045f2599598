//! The real `weir-operator` binary against the local control plane: killed with
//! SIGKILL mid-rollout and restarted, and two replicas with one leader.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/operator.rs"]
mod operator_support;

use anyhow::{Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use operator_support::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

/// `target/debug/weir-operator`, next to this test's `deps/` directory.
fn operator_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("weir-operator");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts one operator replica; returns it with its metrics port.
fn spawn_operator(kubeconfig: &Path, identity: &str) -> Result<(Child, u16)> {
    let port = free_port();
    let child = Command::new(operator_binary())
        .args([
            "--no-gateway",
            "--fixed-verdict",
            "Pass",
            "--lease-seconds",
            "3",
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", identity)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start weir-operator")?;
    Ok((child, port))
}

async fn reconciles(port: u16) -> Option<u64> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.lines()
        .find(|l| l.starts_with("weir_operator_reconciles_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get("weir-operator")
        .await
        .ok()?
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_mid_rollout_resumes_without_duplicates_or_weight_jumps() -> Result<()> {
    let cluster = start(65, None).await?;
    let client = cluster.client.clone();
    let kubeconfig = cluster.server.kubeconfig_path().to_path_buf();
    let splits = record_splits(&client);
    let (mut first, _) = spawn_operator(&kubeconfig, "op-a")?;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 40).await?;
    set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 40, "the pause at 50%").await?;

    first.start_kill()?;
    first.wait().await?;
    let (_second, _) = spawn_operator(&kubeconfig, "op-b")?;
    eventually(20, "op-b to take the lease", || async {
        (holder(&client).await.as_deref() == Some("op-b")).then_some(())
    })
    .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let names: Vec<String> = deployments
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    assert_eq!(
        names.len(),
        2,
        "no duplicate Deployments after the restart: {names:?}"
    );

    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"promoteStep": 3}})),
        )
        .await?;
    eventually(40, "v2 promoted", || async {
        let s = rollouts.get("foobar").await.ok()?.status?;
        (s.phase == Some(Phase::Healthy) && s.stable_revision == Some(2)).then_some(())
    })
    .await?;
    let history = splits.lock().await.clone();
    assert_eq!(
        history,
        full_walk(),
        "the restart neither repeated nor skipped a weight"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_the_other_takes_over() -> Result<()> {
    let cluster = start(67, None).await?;
    let client = cluster.client.clone();
    let kubeconfig = cluster.server.kubeconfig_path().to_path_buf();
    let (a, port_a) = spawn_operator(&kubeconfig, "op-a")?;
    let (b, port_b) = spawn_operator(&kubeconfig, "op-b")?;
    let leader = eventually(20, "a leader", || async { holder(&client).await }).await?;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 40).await?;
    let (mut leader_child, leader_port, follower, follower_port) = if leader == "op-a" {
        (a, port_a, "op-b", port_b)
    } else {
        (b, port_b, "op-a", port_a)
    };
    assert!(
        reconciles(leader_port).await.unwrap_or(0) > 0,
        "the leader reconciles"
    );
    assert_eq!(
        reconciles(follower_port).await,
        Some(0),
        "the follower writes nothing"
    );

    leader_child.start_kill()?;
    leader_child.wait().await?;
    eventually(20, "the follower to take the lease", || async {
        (holder(&client).await.as_deref() == Some(follower)).then_some(())
    })
    .await?;
    set_image_v2(&rollouts).await?;
    wait_phase(
        &rollouts,
        Phase::Paused,
        40,
        "the new leader to drive v2 to the pause",
    )
    .await?;
    assert!(reconciles(follower_port).await.unwrap_or(0) > 0);
    Ok(())
}
