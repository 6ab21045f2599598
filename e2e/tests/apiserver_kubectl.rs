//! The real `kubectl` against the local API server: apply, get (Tables), describe, patch,
//! delete, wait, raw gets, api-resources and server-side apply.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::start;
use weir_e2e::apiserver::Handle;

/// `path` inside this repository.
fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The `.yaml` files of `dir`, sorted, except those named in `skip`; panics when `dir`
/// cannot be read.
fn yaml_files(dir: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.file_name().is_some_and(|n| skip.iter().any(|s| n == *s)))
        .collect();
    files.sort();
    files
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs kubectl with the server's kubeconfig and a private cache dir, bounded to 60 s.
async fn kubectl(h: &Handle, args: &[&str]) -> Output {
    let kc = h.kubeconfig_path().to_path_buf();
    let cache = kc.with_file_name("kubectl-cache");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--cache-dir")
            .arg(&cache)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run kubectl ({e}): these tests need kubectl on PATH (scripts/install-deps.sh checks for it)")
            })
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
}

async fn ok(h: &Handle, args: &[&str]) -> String {
    let o = kubectl(h, args).await;
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "kubectl {args:?} failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

async fn fails(h: &Handle, args: &[&str]) -> String {
    let o = kubectl(h, args).await;
    assert!(!o.status.success(), "kubectl {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).to_string()
}

async fn install_widgets(h: &Handle) {
    let crd = fixture("widgets-crd.yaml");
    ok(h, &["apply", "-f", crd.to_str().unwrap()]).await;
    ok(
        h,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.test.weir.dev",
            "--timeout=10s",
        ],
    )
    .await;
    ok(
        h,
        &["apply", "-f", fixture("widget.yaml").to_str().unwrap()],
    )
    .await;
}

#[tokio::test]
async fn kubectl_raw_version_and_api_resources() {
    let (h, _c) = start().await;
    let v = ok(&h, &["get", "--raw", "/version"]).await;
    assert!(v.contains("\"gitVersion\""), "{v}");
    install_widgets(&h).await;
    let res = ok(&h, &["api-resources"]).await;
    for needle in [
        "deployments",
        "endpointslices",
        "leases",
        "customresourcedefinitions",
        "apiservices",
        "widgets",
    ] {
        assert!(res.contains(needle), "{needle} missing from:\n{res}");
    }
    let unknown = h.kubeconfig_path().with_file_name("unknown-kind.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: nope.dev/v1\nkind: Thing\nmetadata: {name: x}\n",
    )
    .unwrap();
    let err = fails(&h, &["apply", "-f", unknown.to_str().unwrap()]).await;
    assert!(
        err.contains("no matches for kind \"Thing\""),
        "validation skips unknown kinds as with a real server: {err}"
    );
    let grouped = ok(
        &h,
        &["api-resources", "--api-group=test.weir.dev", "-o", "name"],
    )
    .await;
    assert_eq!(grouped.trim(), "widgets.test.weir.dev");
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_get_patch_wait_and_delete_a_custom_resource() {
    let (h, _c) = start().await;
    install_widgets(&h).await;
    let again = ok(
        &h,
        &["apply", "-f", fixture("widget.yaml").to_str().unwrap()],
    )
    .await;
    assert!(again.contains("unchanged"), "{again}");
    let table = ok(&h, &["get", "widgets"]).await;
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "PHASE", "WEIGHT", "READY", "AGE"]),
        "{table}"
    );
    assert!(table.contains("gear"), "{table}");
    ok(
        &h,
        &[
            "patch",
            "widget",
            "gear",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"weight":42}}"#,
        ],
    )
    .await;
    assert_eq!(
        ok(
            &h,
            &["get", "widget", "gear", "-o", "jsonpath={.spec.weight}"]
        )
        .await,
        "42"
    );
    let status =
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#;
    ok(
        &h,
        &[
            "patch",
            "widget",
            "gear",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            status,
        ],
    )
    .await;
    ok(
        &h,
        &[
            "wait",
            "--for=condition=Ready",
            "widget/gear",
            "--timeout=10s",
        ],
    )
    .await;
    let table = ok(&h, &["get", "wg"]).await;
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .take(4)
            .eq(["gear", "Running", "42", "True"]),
        "{table}"
    );
    ok(&h, &["delete", "widget", "gear", "--timeout=10s"]).await;
    let gone = fails(&h, &["get", "widget", "gear"]).await;
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_rejects_an_invalid_resource_with_the_field_path() {
    let (h, _c) = start().await;
    install_widgets(&h).await;
    let bad = std::fs::read_to_string(fixture("widget.yaml"))
        .unwrap()
        .replace("weight: 10", "weight: 150");
    let path = h.kubeconfig_path().with_file_name("bad-widget.yaml");
    std::fs::write(&path, bad).unwrap();
    let err = fails(&h, &["apply", "-f", path.to_str().unwrap()]).await;
    assert!(
        err.contains("spec.weight: Invalid value: 150: spec.weight in body should be less than or equal to 100"),
        "{err}"
    );
    let unknown = std::fs::read_to_string(fixture("widget.yaml"))
        .unwrap()
        .replace("weight: 10", "weight: 10\n  bogus: 1");
    std::fs::write(&path, unknown).unwrap();
    let err = fails(&h, &["apply", "-f", path.to_str().unwrap()]).await;
    assert!(
        err.contains("unknown field \"spec.bogus\""),
        "kubectl's strict validation is server-side: {err}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_describe_shows_events_for_the_object() {
    let (h, c) = start().await;
    install_widgets(&h).await;
    let uid = ok(
        &h,
        &["get", "widget", "gear", "-o", "jsonpath={.metadata.uid}"],
    )
    .await;
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": "gear.1"}, "reason": "WeightChanged", "message": "canary weight 10 -> 25",
        "type": "Normal", "source": {"component": "weir-operator"}, "count": 1,
        "firstTimestamp": "2026-11-25T10:00:00Z", "lastTimestamp": "2026-11-25T10:00:00Z",
        "involvedObject": {"apiVersion": "test.weir.dev/v1", "kind": "Widget", "name": "gear", "namespace": "default", "uid": uid}
    }))
    .unwrap();
    Api::<Event>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &ev)
        .await
        .unwrap();
    let other: Event = serde_json::from_value(json!({
        "metadata": {"name": "other.1"}, "reason": "Unrelated", "message": "not for gear", "type": "Normal",
        "involvedObject": {"kind": "Widget", "name": "other", "namespace": "default"}
    }))
    .unwrap();
    Api::<Event>::namespaced(c, "default")
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    let out = ok(&h, &["describe", "widget", "gear"]).await;
    assert!(out.contains("Events:"), "{out}");
    assert!(
        out.contains("WeightChanged") && out.contains("canary weight 10 -> 25"),
        "{out}"
    );
    assert!(out.contains("weir-operator"), "{out}");
    assert!(!out.contains("Unrelated"), "{out}");
    let events = ok(&h, &["get", "events"]).await;
    assert!(events.contains("widget/gear"), "{events}");
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_server_side_apply_detects_conflicts_between_managers() {
    let (h, _c) = start().await;
    let crd = fixture("widgets-crd.yaml");
    ok(&h, &["apply", "--server-side", "-f", crd.to_str().unwrap()]).await;
    let w = fixture("widget.yaml");
    ok(
        &h,
        &[
            "apply",
            "--server-side",
            "--field-manager=alpha",
            "-f",
            w.to_str().unwrap(),
        ],
    )
    .await;
    let changed = std::fs::read_to_string(&w)
        .unwrap()
        .replace("weight: 10", "weight: 20");
    let path = h.kubeconfig_path().with_file_name("changed-widget.yaml");
    std::fs::write(&path, changed).unwrap();
    let err = fails(
        &h,
        &[
            "apply",
            "--server-side",
            "--field-manager=beta",
            "-f",
            path.to_str().unwrap(),
        ],
    )
    .await;
    assert!(err.contains("conflict with \"alpha\""), "{err}");
    ok(
        &h,
        &[
            "apply",
            "--server-side",
            "--field-manager=beta",
            "--force-conflicts",
            "-f",
            path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        ok(
            &h,
            &["get", "widget", "gear", "-o", "jsonpath={.spec.weight}"]
        )
        .await,
        "20"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_client_side_apply_of_a_deployment_merges_strategically() {
    let (h, _c) = start().await;
    let dir = h.kubeconfig_path().with_file_name("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    let doc = |image: &str, sidecar: bool| {
        let side = if sidecar {
            ", {name: side, image: busybox}"
        } else {
            ""
        };
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: app, image: \"{image}\"}}{side}]}}\n"
        )
    };
    let f = dir.join("web.yaml");
    std::fs::write(&f, doc("weir-demo:v1", true)).unwrap();
    ok(&h, &["apply", "-f", f.to_str().unwrap()]).await;
    std::fs::write(&f, doc("weir-demo:v2", false)).unwrap();
    ok(&h, &["apply", "-f", f.to_str().unwrap()]).await;
    let images = ok(
        &h,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}",
        ],
    )
    .await;
    assert_eq!(images, "weir-demo:v2");
    ok(&h, &["scale", "deploy", "web", "--replicas=5"]).await;
    assert_eq!(
        ok(
            &h,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        )
        .await,
        "5"
    );
    let table = ok(&h, &["get", "deploy"]).await;
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq(["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        "{table}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_the_weir_crd_manifests_and_a_rollout() {
    let files = yaml_files(&repo_path("crds/manifests"), &[]);
    assert!(
        files.iter().any(|f| f.ends_with("rollouts.weir.dev.yaml")),
        "crds/manifests has no rollouts.weir.dev.yaml: {files:?}"
    );
    let (h, _c) = start().await;
    // The folder as a person applies it: every file in it is a CRD.
    let dir = repo_path("crds/manifests/");
    let out = ok(&h, &["apply", "-f", dir.to_str().unwrap()]).await;
    assert_eq!(out.lines().count(), files.len(), "{out}");
    ok(
        &h,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=10s",
        ],
    )
    .await;
    let bad = std::fs::read_to_string(fixture("rollout.yaml"))
        .unwrap()
        .replace(
            "- setWeight: 10",
            "- setWeight: 10\n        pause: {duration: 1m}",
        );
    let bad_path = h.kubeconfig_path().with_file_name("bad-rollout.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let err = fails(&h, &["apply", "-f", bad_path.to_str().unwrap()]).await;
    assert!(
        err.contains("is invalid") && err.contains("spec.strategy.steps[0]"),
        "CEL rules apply: {err}"
    );
    ok(
        &h,
        &["apply", "-f", fixture("rollout.yaml").to_str().unwrap()],
    )
    .await;
    let table = ok(&h, &["get", "rollouts"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header.first(), Some(&"NAME"), "{table}");
    assert!(
        header.contains(&"PHASE") && header.contains(&"AGE"),
        "{table}"
    );
    assert!(table.contains("foobar"), "{table}");
    ok(
        &h,
        &[
            "patch",
            "ro",
            "foobar",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":4}}"#,
        ],
    )
    .await;
    assert_eq!(
        ok(
            &h,
            &[
                "get",
                "ro",
                "foobar",
                "-o",
                "jsonpath={.metadata.generation}"
            ]
        )
        .await,
        "2"
    );
    ok(&h, &["delete", "rollout", "foobar", "--timeout=10s"]).await;
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_the_briefs_smi_examples_unchanged() {
    let crds = repo_path("crds");
    // TrafficMetrics is served by the operator's aggregated API, not by a CRD.
    let files = yaml_files(
        &repo_path("crds/tests/fixtures/smi"),
        &["trafficmetrics-v1alpha1.yaml"],
    );
    assert!(
        files.len() >= 5,
        "expected the brief's SMI documents in crds/tests/fixtures/smi: {files:?}"
    );
    let (h, _c) = start().await;
    ok(&h, &["apply", "-k", crds.to_str().unwrap()]).await;
    ok(
        &h,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=10s",
        ],
    )
    .await;
    for f in &files {
        ok(&h, &["apply", "-f", f.to_str().unwrap()]).await;
    }
    h.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_rbac_objects() {
    let (h, _c) = start().await;
    let f = h.kubeconfig_path().with_file_name("rbac.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: weir-operator, namespace: default}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: weir-operator}\n\
         rules: [{apiGroups: [weir.dev], resources: [rollouts], verbs: [get, list, watch]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: weir-operator}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: weir-operator}\n\
         subjects: [{kind: ServiceAccount, name: weir-operator, namespace: default}]\n",
    )
    .unwrap();
    let out = ok(&h, &["apply", "-f", f.to_str().unwrap()]).await;
    assert!(
        out.contains("clusterrole.rbac.authorization.k8s.io/weir-operator created"),
        "{out}"
    );
    assert!(
        out.contains("clusterrolebinding.rbac.authorization.k8s.io/weir-operator created"),
        "{out}"
    );
    h.shutdown().await;
}
