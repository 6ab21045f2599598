//! Validation of built-in kinds: what a real kube-apiserver (1.32) refuses, with its status
//! code, field paths and messages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use serde_json::{Value, json};
use support::{Raw, raw, start};
use weir_e2e::apiserver::Handle;

async fn post(h: &Handle, path: &str, body: Value) -> Raw {
    raw(
        h,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

async fn merge(h: &Handle, path: &str, body: Value) -> Raw {
    raw(
        h,
        "PATCH",
        path,
        &[("content-type", "application/merge-patch+json")],
        body.to_string(),
    )
    .await
}

/// The `details.causes[].field` of a 422, after checking the code.
fn fields(r: &Raw) -> Vec<String> {
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    r.json()["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect()
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const SVCS: &str = "/api/v1/namespaces/default/services";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn config_map_keys_are_validated_on_the_data_key_path() {
    let (h, _c) = start().await;
    let r = post(
        &h,
        CMS,
        json!({"metadata": {"name": "c"}, "data": {"bad key": "v"}}),
    )
    .await;
    assert_eq!(fields(&r), ["data[bad key]"]);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("a valid config key must consist of alphanumeric characters")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn secret_data_that_is_not_base64_cannot_be_decoded() {
    let (h, _c) = start().await;
    let r = post(
        &h,
        SECRETS,
        json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}}),
    )
    .await;
    assert_eq!(r.status, 400, "a create is a decode error");
    assert_eq!(
        r.json()["message"],
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
    let ok = post(
        &h,
        SECRETS,
        json!({"metadata": {"name": "s"}, "data": {"k": "aGk="}}),
    )
    .await;
    assert_eq!(ok.status, 201);
    let r = merge(&h, &format!("{SECRETS}/s"), json!({"data": {"k": "%%%"}})).await;
    assert_eq!(
        fields(&r),
        ["patch"],
        "a patch reports it on the patch field"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn tls_secrets_need_tls_crt_and_tls_key() {
    let (h, _c) = start().await;
    let r = post(
        &h,
        SECRETS,
        json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {}}),
    )
    .await;
    assert_eq!(fields(&r), ["data[tls.crt]", "data[tls.key]"]);
    assert_eq!(
        r.json()["message"],
        "Secret \"t\" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_service_cluster_ip_may_not_change_once_set() {
    let (h, _c) = start().await;
    let made = post(
        &h,
        SVCS,
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(made.status, 201);
    let r = merge(
        &h,
        &format!("{SVCS}/s"),
        json!({"spec": {"clusterIP": "127.96.9.9"}}),
    )
    .await;
    assert_eq!(fields(&r), ["spec.clusterIPs[0]"]);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .ends_with("Invalid value: []string{\"127.96.9.9\"}: may not change once set"),
        "{}",
        r.json()["message"]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn services_need_ports_named_ports_when_several_and_ports_in_range() {
    let (h, _c) = start().await;
    let none = post(&h, SVCS, json!({"metadata": {"name": "a"}, "spec": {}})).await;
    assert_eq!(fields(&none), ["spec.ports"]);
    let unnamed = post(
        &h,
        SVCS,
        json!({"metadata": {"name": "b"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}}),
    )
    .await;
    assert_eq!(
        fields(&unnamed),
        ["spec.ports[0].name", "spec.ports[1].name"]
    );
    let range = post(
        &h,
        SVCS,
        json!({"metadata": {"name": "c"}, "spec": {"ports": [{"port": 70000, "targetPort": 80}]}}),
    )
    .await;
    assert_eq!(fields(&range), ["spec.ports[0].port"]);
    assert!(
        range.json()["message"]
            .as_str()
            .unwrap()
            .contains("Invalid value: 70000: must be between 1 and 65535, inclusive")
    );
    h.shutdown().await;
}

fn deployment(name: &str, selector: Value, template_labels: Value, containers: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"selector": selector,
        "template": {"metadata": {"labels": template_labels}, "spec": {"containers": containers}}}})
}

fn app() -> Value {
    json!([{"name": "app", "image": "weir-demo:v1"}])
}

#[tokio::test]
async fn a_deployment_selector_must_exist_and_match_the_template() {
    let (h, _c) = start().await;
    let r = post(
        &h,
        DEPLOYS,
        deployment(
            "a",
            json!({"matchLabels": {"app": "a"}}),
            json!({"app": "b"}),
            app(),
        ),
    )
    .await;
    assert_eq!(fields(&r), ["spec.template.metadata.labels"]);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .ends_with("Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`")
    );
    let mut missing = deployment("b", json!({}), json!({"app": "b"}), app());
    missing["spec"].as_object_mut().unwrap().remove("selector");
    let r = post(&h, DEPLOYS, missing).await;
    assert_eq!(
        fields(&r),
        ["spec.selector", "spec.template.metadata.labels"]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_deployment_needs_containers_and_non_negative_replicas() {
    let (h, _c) = start().await;
    let mut d = deployment(
        "d",
        json!({"matchLabels": {"app": "d"}}),
        json!({"app": "d"}),
        json!([]),
    );
    d["spec"]["replicas"] = json!(-1);
    let r = post(&h, DEPLOYS, d).await;
    assert_eq!(
        fields(&r),
        ["spec.replicas", "spec.template.spec.containers"]
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_deployment_selector_may_not_change() {
    let (h, _c) = start().await;
    let made = post(
        &h,
        DEPLOYS,
        deployment(
            "s",
            json!({"matchLabels": {"app": "s"}}),
            json!({"app": "s", "t": "1"}),
            app(),
        ),
    )
    .await;
    assert_eq!(made.status, 201);
    let r = merge(
        &h,
        &format!("{DEPLOYS}/s"),
        json!({"spec": {"selector": {"matchLabels": {"app": "s", "t": "1"}}}}),
    )
    .await;
    assert_eq!(fields(&r), ["spec.selector"]);
    assert!(
        r.json()["message"].as_str().unwrap().ends_with(
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"s\", \"t\":\"1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        ),
        "{}",
        r.json()["message"]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn lease_times_must_be_micro_times_with_six_fractional_digits() {
    let (h, _c) = start().await;
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let lease = |t: &str| json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "renewTime": t}});
    let r = post(&h, path, lease("2026-01-01T00:00:00Z")).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot parse \"Z\" as \".000000\""),
        "{}",
        r.json()["message"]
    );
    let ok = post(&h, path, lease("2026-01-01T00:00:00.000000Z")).await;
    assert_eq!(ok.status, 201);
    let r = merge(
        &h,
        &format!("{path}/l"),
        json!({"spec": {"renewTime": "2026-01-01T00:00:01.5Z"}}),
    )
    .await;
    assert_eq!(fields(&r), ["patch"]);
    h.shutdown().await;
}
