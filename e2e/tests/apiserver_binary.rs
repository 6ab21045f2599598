//! The `weir-local-cluster` binary: serves a kubeconfig'd API server and stops on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use std::process::{Command, Stdio};
use std::time::Duration;

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
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if kc.exists() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "kubeconfig written");
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

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "exits cleanly on SIGTERM: {status:?}"
    );
}
