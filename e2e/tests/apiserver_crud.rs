//! Conformance of the local API server for built-in kinds, driven through kube-rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{code, raw, start};

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

#[tokio::test]
async fn crud_round_trip_sets_metadata_and_detects_conflicts() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let gen_cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = api.create(&PostParams::default(), &gen_cm).await.unwrap();
    let name = made.metadata.name.clone().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert_eq!(made.metadata.uid.as_ref().map(String::len), Some(36));
    assert!(made.metadata.creation_timestamp.is_some());
    let rv1: u64 = made
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();

    let a = api
        .create(&PostParams::default(), &cm("a", json!({"k": "1"})))
        .await
        .unwrap();
    let rv2: u64 = a
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "one global counter");
    let dup = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(code(&dup), 409);
    assert!(matches!(&dup, kube::Error::Api(s) if s.reason == "AlreadyExists"));

    let mut fresh = a.clone();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    let updated = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["k"], "2");
    assert_eq!(updated.metadata.uid, a.metadata.uid);
    let stale = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap_err();
    assert_eq!(code(&stale), 409);
    assert!(matches!(&stale, kube::Error::Api(s) if s.reason == "Conflict"));

    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3, "two made here, and kube-root-ca.crt");
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list_rv >= rv2);

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api.get("a").await.unwrap_err();
    assert_eq!(code(&gone), 404);
    assert!(api.get_opt("a").await.unwrap().is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found_and_new_namespaces_get_a_service_account() {
    let (h, c) = start().await;
    let missing: Api<ConfigMap> = Api::namespaced(c.clone(), "nope");
    assert_eq!(
        code(
            &missing
                .create(&PostParams::default(), &cm("x", json!({})))
                .await
                .unwrap_err()
        ),
        404
    );
    let nss: Api<Namespace> = Api::all(c.clone());
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(
            nss.get_opt(ns).await.unwrap().is_some(),
            "{ns} exists at start"
        );
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "team");
    assert!(sas.get_opt("default").await.unwrap().is_some());
    let in_team: Api<ConfigMap> = Api::namespaced(c.clone(), "team");
    in_team
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    assert!(nss.get_opt("team").await.unwrap().is_none());
    assert!(
        in_team.get_opt("x").await.unwrap().is_none(),
        "namespace contents go with it"
    );
    assert_eq!(
        code(
            &nss.delete("default", &DeleteParams::default())
                .await
                .unwrap_err()
        ),
        403
    );
    h.shutdown().await;
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "weir-demo:v1"}]}}},
        "status": {"replicas": 42}
    }))
    .unwrap()
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let d = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes keep generation"
    );
    let d = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "status changes keep generation"
    );
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "a no-op patch changes nothing"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_from_the_main_resource() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let d = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(
        d.status.as_ref().and_then(|s| s.replicas),
        None,
        "status is dropped on create"
    );
    let pp = PatchParams::default();
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(
        d.status.as_ref().and_then(|s| s.replicas),
        None,
        "main writes ignore status"
    );
    let d = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 7}, "status": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(2), "status writes ignore spec");
    assert_eq!(d.status.as_ref().and_then(|s| s.replicas), Some(2));
    let mut whole = d.clone();
    whole.status.as_mut().unwrap().replicas = Some(5);
    let d = api
        .replace_status("web", &PostParams::default(), &whole)
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().replicas, Some(5));
    h.shutdown().await;
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let s = api.get_scale("web").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(1));
    assert_eq!(s.status.unwrap().selector.as_deref(), Some("app=web"));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let d = api.get("web").await.unwrap();
    assert_eq!(d.spec.replicas, Some(4));
    assert_eq!(d.metadata.generation, Some(2));
    h.shutdown().await;
}

#[tokio::test]
async fn finalizer_blocks_deletion_until_removed() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let mut obj = cm("held", json!({}));
    obj.metadata.finalizers = Some(vec!["weir.dev/cleanup".into()]);
    api.create(&PostParams::default(), &obj).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(
        api.get_opt("held").await.unwrap().is_some(),
        "a second delete changes nothing"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        api.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer deletes"
    );
    h.shutdown().await;
}

fn owned<T: serde::de::DeserializeOwned>(
    name: &str,
    owner_kind: &str,
    owner: &str,
    uid: &str,
    extra: serde_json::Value,
) -> T {
    let mut v = json!({"metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "uid": uid, "controller": true}]}});
    json_patch::merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn garbage_collection_cascades_through_owner_references() {
    let (h, c) = start().await;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let d = deploys
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let duid = d.metadata.uid.unwrap();
    let rs_spec = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "weir-demo:v1"}]}}}});
    let rs: ReplicaSet = owned("web-abc", "Deployment", "web", &duid, rs_spec.clone());
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    let pod_spec = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
    let pod: Pod = owned(
        "web-abc-1",
        "ReplicaSet",
        "web-abc",
        rs.metadata.uid.as_ref().unwrap(),
        pod_spec.clone(),
    );
    pods.create(&PostParams::default(), &pod).await.unwrap();
    deploys
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    assert!(rss.get_opt("web-abc").await.unwrap().is_none());
    assert!(
        pods.get_opt("web-abc-1").await.unwrap().is_none(),
        "cascade is transitive"
    );

    let d = deploys
        .create(&PostParams::default(), &deployment("keep"))
        .await
        .unwrap();
    let rs: ReplicaSet = owned(
        "keep-abc",
        "Deployment",
        "keep",
        d.metadata.uid.as_ref().unwrap(),
        rs_spec,
    );
    rss.create(&PostParams::default(), &rs).await.unwrap();
    deploys
        .delete("keep", &DeleteParams::orphan())
        .await
        .unwrap();
    let orphan = rss.get("keep-abc").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "orphaning drops the reference"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (h, c) = start().await;
    let api: Api<Pod> = Api::namespaced(c.clone(), "default");
    for (name, app, tier) in [
        ("a", "web", "front"),
        ("b", "web", "back"),
        ("c", "db", "back"),
    ] {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"app": app, "tier": tier}},
            "spec": {"containers": [{"name": "x", "image": "y"}], "nodeName": "n1"}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &p).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(api.list(&q("app=web")).await.unwrap()), ["a", "b"]);
    assert_eq!(
        names(api.list(&q("app==web,tier!=front")).await.unwrap()),
        ["b"]
    );
    assert_eq!(
        names(
            api.list(&q("tier in (back),app notin (web)"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(api.list(&q("tier,!missing")).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        names(api.list(&q("!tier")).await.unwrap()),
        Vec::<String>::new()
    );
    let f = |s: &str| ListParams::default().fields(s);
    assert_eq!(names(api.list(&f("metadata.name=b")).await.unwrap()), ["b"]);
    assert_eq!(
        names(
            api.list(&f("metadata.namespace=default,metadata.name!=a"))
                .await
                .unwrap()
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(
            api.list(&f("spec.nodeName=n1,status.phase=Pending"))
                .await
                .unwrap()
        )
        .len(),
        3
    );
    let bad = api.list(&q("a in b")).await.unwrap_err();
    assert_eq!(code(&bad), 400);
    let deleted = api
        .delete_collection(&DeleteParams::default(), &q("app=web"))
        .await
        .unwrap();
    assert_eq!(
        deleted.left().map(|l| l.items.len()),
        Some(2),
        "deletecollection honours selectors"
    );
    assert_eq!(
        names(api.list(&ListParams::default()).await.unwrap()),
        ["c"]
    );
    let all: Api<Pod> = Api::all(c);
    assert_eq!(all.list(&q("app=db")).await.unwrap().items.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn patches_merge_json_and_strategic() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let mut d = deployment("web");
    let tpl = d.spec.template.spec.as_mut().unwrap();
    tpl.containers
        .push(serde_json::from_value(json!({"name": "side", "image": "s:1"})).unwrap());
    api.create(&PostParams::default(), &d).await.unwrap();
    let pp = PatchParams::default();
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "weir-demo:v2"}]}}}});
    let d = api.patch("web", &pp, &Patch::Strategic(smp)).await.unwrap();
    let cs = d.spec.template.spec.unwrap().containers;
    assert_eq!(cs.len(), 2, "containers merge by name");
    assert_eq!(cs[0].image.as_deref(), Some("weir-demo:v2"));
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]))
            .unwrap();
    let d = api.patch("web", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(d.spec.replicas, Some(5));
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 1}]))
            .unwrap();
    assert_eq!(
        code(
            &api.patch("web", &pp, &Patch::<()>::Json(bad))
                .await
                .unwrap_err()
        ),
        422
    );
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(5));
    h.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_tracks_managers_and_conflicts() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let cfg = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"k": v}});
    api.patch(
        "shared",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cfg("1")),
    )
    .await
    .unwrap();
    let err = api
        .patch(
            "shared",
            &PatchParams::apply("beta"),
            &Patch::Apply(cfg("2")),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    let kube::Error::Api(s) = &err else {
        panic!("{err}")
    };
    assert!(
        s.message.contains("conflict with \"alpha\": .data.k"),
        "{}",
        s.message
    );
    api.patch(
        "shared",
        &PatchParams::apply("beta"),
        &Patch::Apply(cfg("1")),
    )
    .await
    .unwrap();
    let o = api
        .patch(
            "shared",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(cfg("2")),
        )
        .await
        .unwrap();
    assert_eq!(o.data.unwrap()["k"], "2");
    let managers: Vec<String> = o
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["beta"], "alpha lost its only field");
    let o = api
        .patch(
            "shared",
            &PatchParams::apply("beta"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        o.data.unwrap_or_default().is_empty(),
        "fields dropped from the applied config are removed"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_status_errors_and_leave_the_store_intact() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.create(&PostParams::default(), &cm("keep", json!({"k": "v"})))
        .await
        .unwrap();
    let before = api.get("keep").await.unwrap();
    let json_ct = [("content-type", "application/json")];
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json_ct,
        "{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["kind"], "Status");
    assert_eq!(r.json()["reason"], "BadRequest");
    let r = raw(
        &h,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/keep",
        &[("content-type", "application/apply-patch+yaml")],
        "a: [b",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = raw(
        &h,
        "PUT",
        "/api/v1/namespaces/default/configmaps/keep",
        &json_ct,
        "[1, 2]",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = raw(&h, "GET", "/apis/nope.dev/v1/things", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["kind"], "Status");
    let r = raw(&h, "GET", "/api/v1/namespaces/default/widgets", &[], "").await;
    assert_eq!(r.status, 404);
    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}\"}}}}",
        "x".repeat(4 * 1024 * 1024)
    );
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json_ct,
        big,
    )
    .await;
    assert_eq!(r.status, 413);
    let r = raw(
        &h,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/keep",
        &[("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 415);
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("content-type", "application/vnd.kubernetes.protobuf")],
        "k8s\0",
    )
    .await;
    assert_eq!(r.status, 400, "an envelope without a kind is malformed");
    // A well-formed envelope of a kind the server does not decode from protobuf: 415.
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("content-type", "application/vnd.kubernetes.protobuf")],
        "k8s\0\x0a\x0f\x0a\x08batch/v1\x12\x03Job\x12\x00",
    )
    .await;
    assert_eq!(r.status, 415);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("Job (batch/v1) is not decoded from protobuf by this server"),
        "{text}"
    );
    let apply_ct = [("content-type", "application/apply-patch+yaml")];
    let path = "/api/v1/namespaces/default/configmaps/keep?fieldManager=x";
    let r = raw(
        &h,
        "PATCH",
        path,
        &apply_ct,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: 5\n",
    )
    .await;
    assert_eq!(r.status, 400);
    let jp_ct = [("content-type", "application/json-patch+json")];
    let r = raw(
        &h,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/keep",
        &jp_ct,
        r#"[{"op":"replace","path":"/metadata","value":"x"}]"#,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = raw(
        &h,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/keep",
        &[("content-type", "application/merge-patch+json")],
        "[]",
    )
    .await;
    assert_eq!(r.status, 400);
    let mut bad_label = cm("labelled", json!({}));
    bad_label.metadata.labels = Some([("app".to_string(), "not valid!".to_string())].into());
    let e = api
        .create(&PostParams::default(), &bad_label)
        .await
        .unwrap_err();
    assert_eq!(code(&e), 422, "labels are validated");
    let after = api.get("keep").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "keep, and kube-root-ca.crt"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn tables_have_default_columns_for_built_ins() {
    let (h, c) = start().await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let t = raw(
        &h,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        &accept,
        "",
    )
    .await
    .json();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Ready", "Up-to-date", "Available", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "web");
    assert_eq!(t["rows"][0]["cells"][1], "0/1");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let t = raw(&h, "GET", "/api/v1/namespaces", &accept, "")
        .await
        .json();
    assert_eq!(t["columnDefinitions"][1]["name"], "Status");
    h.shutdown().await;
}

#[tokio::test]
async fn events_are_one_store_seen_through_both_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    let (h, c) = start().await;
    let new_api: Api<NewEvent> = Api::namespaced(c.clone(), "default");
    let core_api: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let ev: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "foo.1"}, "eventTime": "2026-11-25T10:00:00.000000Z",
        "reason": "Promoted", "note": "weight 10 -> 25", "type": "Normal", "action": "SetWeight",
        "reportingController": "weir.dev/operator", "reportingInstance": "weir-0",
        "regarding": {"apiVersion": "weir.dev/v1alpha1", "kind": "Rollout", "name": "foo", "namespace": "default", "uid": "u-1"}
    })).unwrap();
    new_api.create(&PostParams::default(), &ev).await.unwrap();
    let sel = "involvedObject.name=foo,involvedObject.namespace=default,involvedObject.kind=Rollout,involvedObject.uid=u-1";
    let core = core_api
        .list(&ListParams::default().fields(sel))
        .await
        .unwrap();
    assert_eq!(core.items.len(), 1);
    let e = &core.items[0];
    assert_eq!(e.message.as_deref(), Some("weight 10 -> 25"));
    assert_eq!(e.reporting_component.as_deref(), Some("weir.dev/operator"));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("weir.dev/operator")
    );
    assert_eq!(
        core_api
            .list(&ListParams::default().fields("involvedObject.name=bar"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );

    let old: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "bar.1"}, "reason": "Started", "message": "hello", "type": "Warning",
        "involvedObject": {"kind": "Pod", "name": "bar", "namespace": "default"},
        "source": {"component": "kubelet"}, "count": 3,
        "firstTimestamp": "2026-11-25T10:00:00Z", "lastTimestamp": "2026-11-25T10:01:00Z"
    }))
    .unwrap();
    core_api.create(&PostParams::default(), &old).await.unwrap();
    let seen = new_api.get("bar.1").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("hello"));
    assert_eq!(seen.regarding.unwrap().name.as_deref(), Some("bar"));
    assert_eq!(seen.deprecated_count, Some(3));
    assert_eq!(seen.reporting_controller.as_deref(), Some("kubelet"));
    assert_eq!(
        new_api
            .list(&ListParams::default().fields("regarding.name=bar"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    h.shutdown().await;
}

#[tokio::test]
async fn odd_payloads_never_crash_the_server_or_change_the_store() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.create(&PostParams::default(), &cm("keep", json!({"k": "v"})))
        .await
        .unwrap();
    let rv_before = h.resource_version();
    let payloads = [
        "",
        "null",
        "5",
        "\"s\"",
        "[]",
        "[{}]",
        "{\"metadata\": 5}",
        "{\"metadata\": {\"name\": 5}}",
        "{\"metadata\": {\"labels\": [1]}}",
        "{\"apiVersion\": 5}",
        "{\"data\": {\"k\": null}, \"metadata\": null}",
        "{\"metadata\": {\"finalizers\": \"x\", \"ownerReferences\": 3}}",
        "\u{0}\u{1}",
        "{\"a\":",
    ];
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/keep",
        "/api/v1/namespaces/default/configmaps/keep/status",
        "/apis/apps/v1/namespaces/default/deployments/none/scale",
        "/api/v1/namespaces/nope/configmaps/x",
        "/apis/events.k8s.io/v1/namespaces/default/events/keep",
    ];
    let types = [
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];
    for p in paths {
        for body in payloads {
            for (method, ct) in [("POST", types[0]), ("PUT", types[0]), ("DELETE", types[0])]
                .into_iter()
                .chain(types.iter().map(|t| ("PATCH", *t)))
            {
                let path = format!("{p}?fieldManager=fuzz");
                let r = raw(&h, method, &path, &[("content-type", ct)], body.to_string()).await;
                assert!(
                    r.status < 500,
                    "{method} {p} {ct} {body:?} -> {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
                if r.status >= 400 {
                    assert_eq!(r.json()["kind"], "Status", "{method} {p} {body:?}");
                }
            }
        }
    }
    let keep = api.get_opt("keep").await.unwrap();
    assert!(
        keep.is_none() || keep.unwrap().data.is_some(),
        "the object is intact or deleted by a DELETE"
    );
    assert!(h.resource_version() >= rv_before);
    assert_eq!(raw(&h, "GET", "/version", &[], "").await.status, 200);
    h.shutdown().await;
}
