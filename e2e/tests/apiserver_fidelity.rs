//! Behaviour of the local API server that a side-by-side run against kube-apiserver found
//! different, each pinned to what the real server does: server-side apply ownership, DELETE
//! answers, dry runs, finalizers and propagation policies. `apiserver_reads.rs` has the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;
#[path = "support/eventually.rs"]
#[allow(dead_code)]
mod wait;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{code, raw, start};

fn cm(name: &str, extra: Value) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name}});
    json_patch::merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

fn managers(o: &ConfigMap) -> Vec<String> {
    o.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

#[tokio::test]
async fn a_second_applier_of_the_same_value_co_owns_the_field_so_it_survives_the_first_dropping_it()
{
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let cfg = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": data});
    api.patch(
        "shared",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cfg(json!({"k": "1", "own": "a"}))),
    )
    .await
    .unwrap();
    let co = api
        .patch(
            "shared",
            &PatchParams::apply("beta"),
            &Patch::Apply(cfg(json!({"k": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        managers(&co),
        ["alpha", "beta"],
        "a no-op apply still records the co-owner"
    );
    let after = api
        .patch(
            "shared",
            &PatchParams::apply("alpha"),
            &Patch::Apply(cfg(json!({"own": "a"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        after.data.unwrap().get("k").map(String::as_str),
        Some("1"),
        "beta still owns .data.k, so alpha dropping it keeps it"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn applying_an_empty_map_does_not_conflict_with_a_field_another_manager_owns_inside_it() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let cfg = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": data});
    api.patch(
        "m",
        &PatchParams::apply("alpha"),
        &Patch::Apply(cfg(json!({"k": "1"}))),
    )
    .await
    .unwrap();
    let o = api
        .patch(
            "m",
            &PatchParams::apply("beta"),
            &Patch::Apply(cfg(json!({}))),
        )
        .await
        .expect("200, not a conflict");
    assert_eq!(o.data.unwrap()["k"], "1");
    h.shutdown().await;
}

#[tokio::test]
async fn deleting_an_object_at_once_answers_a_success_status_that_kube_reports_as_gone() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let made = api
        .create(&PostParams::default(), &cm("gone", json!({})))
        .await
        .unwrap();
    let answer = api.delete("gone", &DeleteParams::default()).await.unwrap();
    let status = answer.right().expect("Right(Status): the object is gone");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let details = status.details.unwrap();
    assert_eq!(details.name, "gone");
    assert_eq!(details.kind, "configmaps");
    assert_eq!(Some(details.uid), made.metadata.uid);
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let answer = pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(
        answer.is_left(),
        "the Pod storage returns the deleted object, as upstream's does"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn deleting_an_object_kept_by_finalizers_answers_200_with_the_object_and_its_deletion_timestamp()
 {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.create(
        &PostParams::default(),
        &cm("held", json!({"metadata": {"finalizers": ["weir.dev/x"]}})),
    )
    .await
    .unwrap();
    let r = raw(
        &h,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/held",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["kind"], "ConfigMap");
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
    let again = api.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(again.left().unwrap().metadata.deletion_timestamp.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn an_invalid_dry_run_value_is_422_and_stores_nothing() {
    let (h, _c) = start().await;
    let r = raw(
        &h,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=Bogus",
        &[("content-type", "application/json")],
        r#"{"metadata":{"name":"dry"}}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Bogus\"}: supported values: \"All\""
    );
    let get = raw(
        &h,
        "GET",
        "/api/v1/namespaces/default/configmaps/dry",
        &[],
        "",
    )
    .await;
    assert_eq!(get.status, 404, "nothing was stored");
    h.shutdown().await;
}

#[tokio::test]
async fn an_object_being_deleted_refuses_new_finalizers_with_422() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.create(
        &PostParams::default(),
        &cm("dying", json!({"metadata": {"finalizers": ["a"]}})),
    )
    .await
    .unwrap();
    api.delete("dying", &DeleteParams::default()).await.unwrap();
    let err = api
        .patch(
            "dying",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a", "b"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 422);
    let kube::Error::Api(s) = &err else {
        panic!("{err}")
    };
    assert!(
        s.message.ends_with("metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b\"}"),
        "{}",
        s.message
    );
    h.shutdown().await;
}

async fn owner_and_dependent(c: &kube::Client, name: &str, dependent_extra: Value) -> String {
    let owners: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let owner = owners
        .create(&PostParams::default(), &cm(name, json!({})))
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    let mut extra = json!({"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid, "blockOwnerDeletion": true}]}});
    json_patch::merge(&mut extra, &dependent_extra);
    owners
        .create(&PostParams::default(), &cm(&format!("{name}-dep"), extra))
        .await
        .unwrap();
    uid
}

#[tokio::test]
async fn orphan_and_foreground_deletion_put_their_finalizer_on_the_owner() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    for (name, dp, finalizer) in [
        ("o", DeleteParams::orphan(), "orphan"),
        ("f", DeleteParams::foreground(), "foregroundDeletion"),
    ] {
        owner_and_dependent(&c, name, json!({})).await;
        let marked = api.delete(name, &dp).await.unwrap().left().unwrap();
        assert_eq!(
            marked.metadata.finalizers,
            Some(vec![finalizer.to_string()])
        );
        assert!(marked.metadata.deletion_timestamp.is_some());
        wait::eventually(
            5,
            &format!("{name} gone once the garbage collector is done"),
            || async { api.get_opt(name).await.unwrap().is_none() },
        )
        .await
        .unwrap();
    }
    h.shutdown().await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_a_blocking_dependent_with_a_finalizer() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    owner_and_dependent(
        &c,
        "own",
        json!({"metadata": {"finalizers": ["weir.dev/hold"]}}),
    )
    .await;
    api.delete("own", &DeleteParams::foreground())
        .await
        .unwrap();
    let owner = api.get("own").await.unwrap();
    assert_eq!(
        owner.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()]),
        "blocked by own-dep"
    );
    let dep = api.get("own-dep").await.unwrap();
    assert!(
        dep.metadata.deletion_timestamp.is_some(),
        "the dependent is being deleted"
    );
    api.patch(
        "own-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("own-dep").await.unwrap().is_none());
    assert!(
        api.get_opt("own").await.unwrap().is_none(),
        "the owner goes with its last blocking dependent"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn orphaned_dependents_lose_the_owner_reference_field_entirely() {
    let (h, c) = start().await;
    owner_and_dependent(&c, "parent", json!({})).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.delete("parent", &DeleteParams::orphan()).await.unwrap();
    let r = raw(
        &h,
        "GET",
        "/api/v1/namespaces/default/configmaps/parent-dep",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let meta = r.json()["metadata"].clone();
    assert!(
        meta.get("ownerReferences").is_none(),
        "absent, not []: {meta}"
    );
    h.shutdown().await;
}
