//! Scenario 1 of issue 15: the brief's workflow applied by hand with the real `kubectl`, no
//! Rollout and no operator. Deployments and Services for v1 and v2, the namespace gateway
//! (`weir-proxy`, as the operator would run it), and the brief's TrafficSplit
//! `foobar-rollout` at its stages (`crds/tests/fixtures/smi/rollout-stage*.yaml`, the
//! brief's files verbatim). At each stage a client Pod sends 400 requests
//! through the gateway with `Host: foobar`; every answer must be a 2xx (none retried) and
//! the versions must follow the stage's weights: v1 alone, v1 alone with v2 running (the
//! root Service selects both, so a gateway ignoring the split fails), v2 at 50/150 within
//! 4.5 binomial standard deviations, v2 alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use std::net::SocketAddr;
use std::path::Path;
use support::binaries::binaries_dir;
use support::client_pod::ClientPod;
use support::eventually;
use support::gateway::Gateway;
use weir_e2e::loadgen::Report;
use weir_operator::children::{GATEWAY_PORT, gateway_deployment, gateway_service_account};

/// Requests per measured stage.
const REQUESTS: u64 = 400;

/// Version `v`'s Deployment and Service: pods labelled `app: foobar, version: v`.
fn app_yaml(v: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: foobar-{v}, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: foobar, version: {v}}}}}
  template:
    metadata: {{labels: {{app: foobar, version: {v}}}}}
    spec: {{containers: [{{name: app, image: "weir-demo:{v}", ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: foobar-{v}, namespace: default}}
spec:
  selector: {{app: foobar, version: {v}}}
  ports: [{{port: 8080, targetPort: 8080}}]
"#
    )
}

/// The root Service `foobar`: every pod of the app, whatever its version.
const ROOT: &str = r#"apiVersion: v1
kind: Service
metadata: {name: foobar, namespace: default}
spec:
  selector: {app: foobar}
  ports: [{port: 8080, targetPort: 8080}]
"#;

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .context("kubectl is not on PATH (scripts/install-deps.sh checks for it)")?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `kubectl apply -f` of `yaml`, written to a file under `dir` named `name`.
async fn apply(kubeconfig: &Path, dir: &Path, name: &str, yaml: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, yaml)?;
    kubectl(kubeconfig, &["apply", "-f", &path.display().to_string()]).await
}

/// `kubectl apply -f` of one of the brief's stages, as written.
async fn apply_stage(kubeconfig: &Path, file: &str) -> Result<String> {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/tests/fixtures/smi/").to_string() + file;
    kubectl(kubeconfig, &["apply", "-n", "default", "-f", &path]).await
}

/// Sends [`REQUESTS`] from `client`; fails on any answer that is not a 2xx and on any error.
async fn measure(client: &ClientPod, gateway: SocketAddr, stage: &str) -> Result<Report> {
    let report = client.send(gateway, "foobar", REQUESTS).await?;
    println!("{stage}: {:?} {:?}", report.by_status, report.by_version);
    let ok: u64 = report
        .by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    ensure!(
        ok == REQUESTS && report.errors.is_empty(),
        "{stage}: {ok} of {REQUESTS} answers were 2xx: {:?} {:?}",
        report.by_status,
        report.errors
    );
    Ok(report)
}

fn count(report: &Report, v: &str) -> u64 {
    report.by_version.get(v).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_briefs_four_stages_applied_with_kubectl_get_their_weights_at_the_gateway() -> Result<()>
{
    let proxy_dir = binaries_dir(&["weir-proxy"])?;
    let cluster =
        support::operator::start_with(None, false, |o| o.binaries = vec![proxy_dir]).await?;
    let kube = cluster.client.clone();
    let kc = cluster.server.kubeconfig_path().to_path_buf();
    let dir = std::env::temp_dir().join(format!("weir-brief-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The namespace gateway, as the operator would run it.
    Api::<ServiceAccount>::namespaced(kube.clone(), "default")
        .create(&PostParams::default(), &gateway_service_account("default"))
        .await?;
    // Its read-only role (config/rbac, installed by `start_with`), bound as the operator binds it.
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(kube.clone(), "default")
        .create(
            &PostParams::default(),
            &weir_operator::access::gateway_role_binding("default"),
        )
        .await?;
    Api::<Deployment>::namespaced(kube.clone(), "default")
        .create(
            &PostParams::default(),
            &gateway_deployment("default", "weir-proxy:test"),
        )
        .await?;
    let gateway = Gateway::find(&kube, "default", 60).await?;
    let target = SocketAddr::new(gateway.admin.ip(), u16::try_from(GATEWAY_PORT)?);
    let client = ClientPod::start(&kube, "default", "curl").await?;
    client.allow(&kube, "default").await?;

    // Stage 1: v1 alone behind Service foobar, no split.
    apply(
        &kc,
        &dir,
        "v1.yaml",
        &format!("{}---\n{ROOT}", app_yaml("v1")),
    )
    .await?;
    eventually(60, "v1 answering through the gateway", || async {
        let r = client.send(target, "foobar", 1).await?;
        ensure!(r.by_version.get("v1") == Some(&1), "{:?}", r.by_status);
        Ok(())
    })
    .await?;
    let r = measure(&client, target, "stage 1 (v1 only)").await?;
    ensure!(count(&r, "v1") == REQUESTS, "stage 1: {:?}", r.by_version);

    // Stage 2: v2 deployed (Service foobar now selects its pods too), the split gives it 0.
    apply(&kc, &dir, "v2.yaml", &app_yaml("v2")).await?;
    println!("{}", apply_stage(&kc, "rollout-stage1.yaml").await?);
    gateway
        .wait_for_split(
            "default",
            "foobar",
            &[("foobar-v1", 100), ("foobar-v2", 0)],
            &[&client],
            60,
        )
        .await?;
    eventually(60, "v2 pods ready", || async {
        let d = Api::<Deployment>::namespaced(kube.clone(), "default")
            .get("foobar-v2")
            .await?;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        ensure!(ready == 2, "{ready} ready");
        Ok(())
    })
    .await?;
    let r = measure(&client, target, "stage 2 (v1 100, v2 0)").await?;
    ensure!(count(&r, "v1") == REQUESTS, "stage 2: {:?}", r.by_version);

    // Stage 3: v2 at 50 against v1's 100: a third of the traffic.
    println!("{}", apply_stage(&kc, "rollout-stage2.yaml").await?);
    gateway
        .wait_for_split(
            "default",
            "foobar",
            &[("foobar-v1", 100), ("foobar-v2", 50)],
            &[&client],
            60,
        )
        .await?;
    let r = measure(&client, target, "stage 3 (v1 100, v2 50)").await?;
    let (n, p) = (REQUESTS as f64, 1.0 / 3.0);
    let spread = 4.5 * (n * p * (1.0 - p)).sqrt();
    let (lo, hi) = (
        (n * p - spread).ceil() as u64,
        (n * p + spread).floor() as u64,
    );
    let v2 = count(&r, "v2");
    println!("stage 3: v2 {v2}, expected in {lo}..={hi}");
    ensure!(
        (lo..=hi).contains(&v2) && count(&r, "v1") + v2 == REQUESTS,
        "stage 3: v2 answered {v2} of {REQUESTS}, outside {lo}..={hi}: {:?}",
        r.by_version
    );

    // Stage 4: v1 removed from the split (v2 keeps its relative 50): v2 alone.
    println!("{}", apply_stage(&kc, "rollout-stage3.yaml").await?);
    gateway
        .wait_for_split("default", "foobar", &[("foobar-v2", 50)], &[&client], 60)
        .await?;
    let r = measure(&client, target, "stage 4 (v2 only)").await?;
    ensure!(count(&r, "v2") == REQUESTS, "stage 4: {:?}", r.by_version);

    cluster.local.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
