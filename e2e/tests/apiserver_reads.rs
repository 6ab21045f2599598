//! Reads and namespaces of the local API server, pinned to what kube-apiserver does where a
//! side-by-side run found a difference: field selectors, namespace deletion, pagination,
//! list items, strategic merge order, seeded objects and selector watches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};
use std::time::Duration;
use support::{code, raw, start};

fn cm(name: &str, extra: Value) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name}});
    json_patch::merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_field_selector_on_an_unsupported_field_is_400_for_list_and_watch() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let err = api
        .list(&ListParams::default().fields("data.k=1"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400);
    let kube::Error::Api(s) = &err else {
        panic!("{err}")
    };
    assert_eq!(s.message, "field label not supported: data.k");
    let watch = raw(
        &h,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=data.k%3D1",
        &[],
        "",
    )
    .await;
    assert_eq!(watch.status, 400);
    assert!(
        api.list(&ListParams::default().fields("metadata.name=kube-root-ca.crt"))
            .await
            .is_ok()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_deleted_namespace_stays_terminating_and_readable_until_its_contents_are_gone() {
    let (h, c) = start().await;
    let nss: Api<Namespace> = Api::all(c.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let inside: Api<ConfigMap> = Api::namespaced(c.clone(), "team");
    inside
        .create(
            &PostParams::default(),
            &cm("held", json!({"metadata": {"finalizers": ["weir.dev/x"]}})),
        )
        .await
        .unwrap();
    let answer = nss.delete("team", &DeleteParams::default()).await.unwrap();
    let marked = answer.left().expect("the Namespace, not a Status");
    assert_eq!(
        marked.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let still = nss.get("team").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    inside
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(
        nss.get_opt("team").await.unwrap().is_none(),
        "gone with its last object"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn creating_in_a_terminating_namespace_is_403_with_the_namespace_terminating_cause() {
    let (h, c) = start().await;
    let nss: Api<Namespace> = Api::all(c.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "ending"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let inside: Api<ConfigMap> = Api::namespaced(c.clone(), "ending");
    inside
        .create(
            &PostParams::default(),
            &cm("held", json!({"metadata": {"finalizers": ["weir.dev/x"]}})),
        )
        .await
        .unwrap();
    nss.delete("ending", &DeleteParams::default())
        .await
        .unwrap();
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/ending/configmaps",
        &[("content-type", "application/json")],
        r#"{"metadata":{"name":"late"}}"#,
    )
    .await;
    assert_eq!(r.status, 403);
    let s = r.json();
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(s["details"]["causes"][0]["reason"], "NamespaceTerminating");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.namespace");
    h.shutdown().await;
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_and_count_what_remains() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "paged");
    let nss: Api<Namespace> = Api::all(api.clone().into_client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "paged"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    for i in 0..4 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut seen = vec![];
    let mut token: Option<String> = None;
    let mut remaining = vec![];
    for _ in 0..10 {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        remaining.push(page.metadata.remaining_item_count);
        seen.extend(page.items.into_iter().map(|o| o.metadata.name.unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "kube-root-ca.crt"]);
    assert_eq!(remaining, [Some(3), Some(1), None]);
    let bad = raw(
        &h,
        "GET",
        "/api/v1/namespaces/paged/configmaps?limit=2&continue=garbage",
        &[],
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    h.shutdown().await;
}

#[tokio::test]
async fn list_items_of_built_in_kinds_carry_no_kind() {
    let (h, _c) = start().await;
    let r = raw(&h, "GET", "/api/v1/namespaces/default/configmaps", &[], "").await;
    let list = r.json();
    assert_eq!(list["kind"], "ConfigMapList");
    let item = &list["items"][0];
    assert!(item["metadata"]["name"].is_string(), "{list}");
    assert!(
        item.get("kind").is_none() && item.get("apiVersion").is_none(),
        "{item}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_strategic_merge_patch_keeps_the_patch_order_for_the_items_it_names() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "app", "image": "a:1", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]},
                {"name": "sidecar", "image": "s:1"}]}}}})).unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "s:2"},
        {"name": "app", "ports": [{"containerPort": 9090}, {"containerPort": 8080}]}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let cs = d.spec.template.spec.unwrap().containers;
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["sidecar", "app"]);
    let ports: Vec<i32> = cs[1]
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [9090, 8080]);
    h.shutdown().await;
}

#[tokio::test]
async fn every_namespace_has_kube_root_ca_and_default_has_the_kubernetes_service() {
    let (h, c) = start().await;
    let nss: Api<Namespace> = Api::all(c.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "fresh"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    for ns in ["default", "kube-system", "fresh"] {
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
        let ca = cms.get("kube-root-ca.crt").await.unwrap();
        assert!(ca.data.unwrap().contains_key("ca.crt"), "{ns}");
    }
    let svcs: Api<Service> = Api::namespaced(c, "default");
    let k = svcs.get("kubernetes").await.unwrap();
    let spec = k.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("https"), 443));
    assert_eq!(
        port.target_port,
        Some(
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                h.addr().port()
            ))
        ),
        "the Service leads to this server"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_label_selector_watch_sends_deleted_with_the_old_object_when_it_stops_matching() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let made = api
        .create(
            &PostParams::default(),
            &cm(
                "w",
                json!({"metadata": {"labels": {"app": "x"}}, "data": {"v": "1"}}),
            ),
        )
        .await
        .unwrap();
    let mut s = api
        .watch(
            &WatchParams::default().labels("app=x"),
            made.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let moved = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}, "data": {"v": "2"}})),
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), s.try_next())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap();
    let WatchEvent::Deleted(old) = ev else {
        panic!("expected DELETED, got {ev:?}")
    };
    assert_eq!(old.metadata.labels.unwrap()["app"], "x", "the old object");
    assert_eq!(old.data.unwrap()["v"], "1");
    assert_eq!(
        old.metadata.resource_version,
        moved.metadata.resource_version
    );
    h.shutdown().await;
}
