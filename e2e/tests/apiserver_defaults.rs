//! Defaulting of built-in kinds: the live object a controller reads back is the one a real
//! kube-apiserver (1.32) would return for the same request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::start;

fn pod_spec() -> Value {
    json!({"containers": [
        {"name": "pinned", "image": "weir-demo:v1", "ports": [{"containerPort": 8080}]},
        {"name": "floating", "image": "nginx"}]})
}

/// Checks the pod spec defaults shared by Pods and pod templates.
fn assert_pod_spec_defaults(spec: &Value) {
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["securityContext"], json!({}));
    let pinned = &spec["containers"][0];
    assert_eq!(pinned["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pinned["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(pinned["terminationMessagePolicy"], "File");
    assert_eq!(pinned["ports"][0]["protocol"], "TCP");
    assert_eq!(
        spec["containers"][1]["imagePullPolicy"], "Always",
        "no tag means :latest"
    );
}

#[tokio::test]
async fn deployments_get_a_rolling_update_strategy_a_history_limit_and_a_progress_deadline() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}}}))
    .unwrap();
    let made = serde_json::to_value(api.create(&PostParams::default(), &d).await.unwrap()).unwrap();
    let spec = &made["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_pod_spec_defaults(&spec["template"]["spec"]);
    assert!(
        spec["template"]["spec"].get("enableServiceLinks").is_none(),
        "a Pod default, not a template one"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn pods_get_the_pod_spec_container_and_admission_defaults() {
    let (h, c) = start().await;
    let api: Api<Pod> = Api::namespaced(c, "default");
    let p: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": pod_spec()})).unwrap();
    let made = serde_json::to_value(api.create(&PostParams::default(), &p).await.unwrap()).unwrap();
    let spec = &made["spec"];
    assert_pod_spec_defaults(spec);
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["serviceAccountName"], "default");
    h.shutdown().await;
}

#[tokio::test]
async fn services_get_type_affinity_ip_families_traffic_policy_and_a_node_port() {
    let (h, c) = start().await;
    let api: Api<Service> = Api::namespaced(c, "default");
    let s: Service = serde_json::from_value(json!({
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    .unwrap();
    let made = serde_json::to_value(api.create(&PostParams::default(), &s).await.unwrap()).unwrap();
    let spec = &made["spec"];
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    let port = &spec["ports"][0];
    assert_eq!(
        (port["protocol"].clone(), port["targetPort"].clone()),
        (json!("TCP"), json!(80))
    );
    let node_port = port["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    let plain: Service = serde_json::from_value(
        json!({"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    let plain =
        serde_json::to_value(api.create(&PostParams::default(), &plain).await.unwrap()).unwrap();
    assert_eq!(plain["spec"]["type"], "ClusterIP");
    assert!(plain["spec"]["clusterIP"].is_string());
    assert!(plain["spec"]["ports"][0].get("nodePort").is_none());
    let kept = api
        .patch(
            "np",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let kept_port = kept.spec.unwrap().ports.unwrap()[0].node_port;
    assert_eq!(
        kept_port,
        Some(node_port as i32),
        "allocations are kept on update"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn namespaces_get_the_metadata_name_label() {
    let (h, c) = start().await;
    let api: Api<Namespace> = Api::all(c);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let made = api.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(
        made.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "team"
    );
    let relabelled = api
        .patch(
            "team",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"kubernetes.io/metadata.name": null}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        relabelled.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "team",
        "the label cannot be removed"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_external_name_service_gets_no_ports_and_no_cluster_ip() {
    let (h, _c) = start().await;
    let r = support::raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/services",
        &[("content-type", "application/json")],
        r#"{"metadata":{"name":"ext"},"spec":{"type":"ExternalName","externalName":"db.example.com","ports":[]}}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let spec = r.json()["spec"].clone();
    assert!(spec.get("ports").is_none(), "{spec}");
    assert!(spec.get("clusterIP").is_none(), "{spec}");
    assert!(spec.get("ipFamilies").is_none(), "{spec}");
    h.shutdown().await;
}
