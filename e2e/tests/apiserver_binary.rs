//! The `weir-local-cluster` binary: serves a kubeconfig'd API server and stops on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/lib.rs"]
mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use rustix::process::{Pid, Signal, kill_process};
use std::process::Stdio;
use std::time::Duration;
use support::eventually;
use tokio::process::Command;

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let dir = std::env::temp_dir().join(format!("weir-local-cluster-test-{}", std::process::id()));
    let kc = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kc);
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-local-cluster"))
        .arg("--kubeconfig-out")
        .arg(&kc)
        .arg("--no-simulator")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(10, "the kubeconfig written", || async { kc.exists() })
        .await
        .unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kc).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let nss = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        nss.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
    );

    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status:?}");
}
