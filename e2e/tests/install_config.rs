//! `kubectl apply -k config/` with the real kubectl against the local control plane: every
//! object is accepted, the CRDs are the generated ones, the operator Deployment's replicas
//! run (the simulator runs the real `weir-operator` for its image), create the metrics API's
//! serving certificate in their Secret, write its CA into the APIService, and the aggregator
//! reaches them with it. Then the samples apply.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::binaries::binaries_dir;
use support::cluster::LocalCluster;
use support::{eventually, seen};

const API_SERVICE: &str = "v1alpha1.metrics.smi-spec.io";

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs the real kubectl; fails with its stderr unless it exits 0.
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("kubectl took over 60 s")?
    .context("run kubectl")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// `kind/name` of every object `kubectl kustomize dir` renders.
async fn rendered(kubeconfig: &Path, dir: &Path) -> Result<Vec<String>> {
    let yaml = kubectl(kubeconfig, &["kustomize", &dir.display().to_string()]).await?;
    let mut names = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let v = serde_yaml::Value::deserialize(doc)?;
        let kind = v["kind"].as_str().context("an object without kind")?;
        let name = v["metadata"]["name"]
            .as_str()
            .context("an object without name")?;
        names.push(format!("{}/{name}", kind.to_lowercase()));
    }
    Ok(names)
}

use serde::Deserialize as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_config_installs_the_operator_which_serves_the_metrics_api_with_its_own_certificate()
-> Result<()> {
    let bins = binaries_dir(&["weir-operator", "weir-proxy"])?;
    let cluster = LocalCluster::start(|opts| opts.binaries = vec![bins]).await?;
    let kc = cluster.server.kubeconfig_path().to_path_buf();
    let config = repo().join("config");

    // Every object kustomize renders is accepted, and each is there afterwards.
    let objects = rendered(&kc, &config).await?;
    for expected in [
        "namespace/weir-system",
        "deployment/weir-operator",
        "serviceaccount/weir-operator",
        "service/weir-metrics",
        "apiservice/v1alpha1.metrics.smi-spec.io",
        "customresourcedefinition/rollouts.weir.dev",
    ] {
        ensure!(
            objects.iter().any(|o| o == expected),
            "config/ renders no {expected}: {objects:?}"
        );
    }
    let applied = kubectl(&kc, &["apply", "-k", &config.display().to_string()]).await?;
    println!("{applied}");
    ensure!(
        applied.lines().count() == objects.len(),
        "kubectl printed {} lines for {} objects",
        applied.lines().count(),
        objects.len()
    );
    let listed = kubectl(
        &kc,
        &["get", "-k", &config.display().to_string(), "-o", "name"],
    )
    .await?;
    ensure!(
        listed.lines().count() == objects.len(),
        "kubectl get -k lists {listed}"
    );

    // The CRDs the server holds are the generated ones.
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    for generated in weir_crds::crdgen::crds()? {
        let name = generated.metadata.name.clone().context("a CRD name")?;
        let served = crds.get(&name).await?;
        ensure!(
            serde_json::to_value(&served.spec.versions)?
                == serde_json::to_value(&generated.spec.versions)?
                && served.spec.names.kind == generated.spec.names.kind
                && served.spec.group == generated.spec.group,
            "the installed {name} differs from what crdgen generates"
        );
    }

    // Both replicas run and are ready.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "weir-system");
    eventually(60, "two ready weir-operator replicas", || async {
        let d = deployments.get("weir-operator").await?;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        seen(ready == 2, "ready replicas", ready)
    })
    .await?;

    // The Secret holds a CA and a leaf, and the APIService trusts that CA.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "weir-system");
    let services: Api<APIService> = Api::all(cluster.client.clone());
    let bundle = eventually(30, "the caBundle to hold the Secret's CA", || async {
        let secret = secrets.get("weir-metrics-tls").await?;
        let data = secret.data.unwrap_or_default();
        let ca = data.get("ca.crt").context("no ca.crt")?.0.clone();
        ensure!(data.contains_key("tls.crt") && data.contains_key("tls.key"));
        let svc = services.get(API_SERVICE).await?;
        let bundle = svc.spec.and_then(|s| s.ca_bundle).map(|b| b.0);
        seen(
            bundle.as_ref() == Some(&ca),
            "caBundle",
            bundle.map(|b| b.len()),
        )?;
        Ok(ca)
    })
    .await?;
    ensure!(String::from_utf8(bundle)?.contains("BEGIN CERTIFICATE"));

    // The aggregator reaches the operator, verifying its certificate against the caBundle.
    let discovery = eventually(30, "metrics.smi-spec.io discovery", || async {
        kubectl(&kc, &["get", "--raw", "/apis/metrics.smi-spec.io/v1alpha1"]).await
    })
    .await?;
    ensure!(
        discovery.contains("TrafficMetrics"),
        "discovery: {discovery}"
    );

    // A caBundle that does not vouch for the certificate is refused, and the operator's next
    // check does not undo a correct one: re-applying config/ leaves caBundle alone.
    kubectl(&kc, &["apply", "-k", &config.display().to_string()]).await?;
    let svc = services.get(API_SERVICE).await?;
    let kept = svc.spec.and_then(|s| s.ca_bundle).map(|b| b.0);
    ensure!(
        kept.as_deref()
            .is_some_and(|b| b.starts_with(b"-----BEGIN CERTIFICATE-----")),
        "re-applying config/ changed the caBundle to {:?}",
        kept.map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    );

    // The samples apply once the CRDs are in.
    let samples = repo().join("config/samples");
    let sample_objects = rendered(&kc, &samples).await?;
    for kind in ["rollout/", "traffictarget/", "trafficpolicy/"] {
        ensure!(
            sample_objects.iter().any(|o| o.starts_with(kind)),
            "config/samples renders no {kind}: {sample_objects:?}"
        );
    }
    let applied = kubectl(&kc, &["apply", "-k", &samples.display().to_string()]).await?;
    println!("{applied}");
    ensure!(applied.lines().count() == sample_objects.len());
    cluster.stop().await;
    Ok(())
}
