//! CustomResourceDefinitions on the local API server: serving, schema enforcement, pruning,
//! defaults, subresources, versions and printer-column Tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;
use support::{code, raw, start};

const CRD: &str = include_str!("fixtures/widgets-crd.yaml");

async fn install(c: &kube::Client) -> CustomResourceDefinition {
    let crd: CustomResourceDefinition = serde_yaml::from_str(CRD).unwrap();
    Api::<CustomResourceDefinition>::all(c.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap()
}

fn widgets(c: &kube::Client, version: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.weir.dev", version, "Widget"),
        "widgets",
    );
    Api::namespaced_with(c.clone(), "default", &ar)
}

fn widget(name: &str, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "test.weir.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})).unwrap()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn crd_is_established_and_every_served_version_is_discoverable() {
    let (h, c) = start().await;
    let crd = install(&c).await;
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
    );
    let disc = kube::Discovery::new(c.clone()).run().await.unwrap();
    let group = disc.get("test.weir.dev").expect("group discovered");
    let versions: Vec<String> = group.versions().map(str::to_string).collect();
    assert_eq!(versions, ["v1", "v1beta1"]);
    let (ar, caps) = group.recommended_kind("Widget").unwrap();
    assert_eq!(ar.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status")
    );
    let r = raw(&h, "GET", "/apis/test.weir.dev/v1", &[], "")
        .await
        .json();
    let main = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap()
        .clone();
    assert_eq!(main["shortNames"], json!(["wg"]));
    assert_eq!(main["categories"], json!(["weir"]));
    h.shutdown().await;
}

#[tokio::test]
async fn schema_violations_are_422_with_field_paths() {
    let (h, c) = start().await;
    install(&c).await;
    let api = widgets(&c, "v1");
    let pp = PostParams::default();
    let s = api_error(
        api.create(&pp, &widget("w", json!({"size": "small", "weight": 150})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert_eq!(
        s.message,
        "Widget.test.weir.dev \"w\" is invalid: spec.weight: Invalid value: 150: spec.weight in body should be less than or equal to 100"
    );
    let cause = &s.details.unwrap().causes[0];
    assert_eq!(cause.field, "spec.weight");
    let s = api_error(
        api.create(&pp, &widget("w", json!({"weight": 1})))
            .await
            .unwrap_err(),
    );
    assert!(
        s.message.contains("spec.size: Required value"),
        "{}",
        s.message
    );
    let s = api_error(
        api.create(&pp, &widget("w", json!({"size": "huge"})))
            .await
            .unwrap_err(),
    );
    assert!(s.message.contains("spec.size: Unsupported value: \"huge\": supported values: \"small\", \"medium\", \"large\""), "{}", s.message);
    let s = api_error(
        api.create(&pp, &widget("w", json!({"size": "small", "name": "ABC"})))
            .await
            .unwrap_err(),
    );
    assert!(
        s.message
            .contains("spec.name in body should match '^[a-z]+$'"),
        "{}",
        s.message
    );
    let s = api_error(
        api.create(&pp, &widget("w", json!({"size": "small", "port": 1.5})))
            .await
            .unwrap_err(),
    );
    assert!(s.message.contains("spec.port"), "{}", s.message);
    let s = api_error(
        api.create(
            &pp,
            &widget("w", json!({"size": "small", "tags": ["a", "b", "c", "d"]})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        s.message
            .contains("spec.tags: Too many: 4: must have at most 3 items"),
        "{}",
        s.message
    );
    let s = api_error(
        api.create(&pp, &widget("w", json!({"size": 3})))
            .await
            .unwrap_err(),
    );
    assert!(
        s.message.contains(
            "spec.size: Invalid value: \"integer\": spec.size in body must be of type string"
        ),
        "{}",
        s.message
    );
    api.create(&pp, &widget("w", json!({"size": "small", "port": 8080})))
        .await
        .unwrap();
    let s = api_error(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"weight": -1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 422, "patches are validated too");
    assert_eq!(
        api.get("w").await.unwrap().data["spec"].get("weight"),
        None,
        "a rejected patch changes nothing"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn cel_validation_rules_are_enforced() {
    let (h, c) = start().await;
    install(&c).await;
    let api = widgets(&c, "v1");
    let bad = widget("w", json!({"size": "large", "name": "bob"}));
    let s = api_error(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        "Widget.test.weir.dev \"w\" is invalid: spec: Invalid value: \"object\": a large widget has no name"
    );
    api.create(
        &PostParams::default(),
        &widget("w", json!({"size": "large"})),
    )
    .await
    .unwrap();
    let patch = Patch::Merge(json!({"spec": {"name": "bob"}}));
    assert_eq!(
        code(
            &api.patch("w", &PatchParams::default(), &patch)
                .await
                .unwrap_err()
        ),
        422
    );
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_defaults_applied_and_strict_rejects() {
    let (h, c) = start().await;
    install(&c).await;
    let api = widgets(&c, "v1");
    let w = widget(
        "w",
        json!({"size": "small", "bogus": 1, "labels": {"a": "b"}, "extra": {"any": {"thing": 1}}}),
    );
    let mut w = serde_json::to_value(w).unwrap();
    w["junk"] = json!(true);
    let made = api
        .create(&PostParams::default(), &serde_json::from_value(w).unwrap())
        .await
        .unwrap();
    assert_eq!(made.data.get("junk"), None);
    assert_eq!(made.data["spec"].get("bogus"), None);
    assert_eq!(made.data["spec"]["labels"]["a"], "b");
    assert_eq!(
        made.data["spec"]["extra"]["any"]["thing"], 1,
        "preserve-unknown-fields keeps everything"
    );
    assert_eq!(made.data["spec"]["replicas"], 1, "defaults are applied");
    let strict = PatchParams::default().validation_strict();
    let s = api_error(
        api.patch("w", &strict, &Patch::Merge(json!({"spec": {"nope": 1}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains("unknown field \"spec.nope\""),
        "{}",
        s.message
    );
    h.shutdown().await;
}

#[tokio::test]
async fn versions_share_storage_and_status_and_scale_subresources_work() {
    let (h, c) = start().await;
    install(&c).await;
    let v1 = widgets(&c, "v1");
    let mut w = widget("w", json!({"size": "small", "replicas": 2}));
    w.data["status"] = json!({"phase": "Ignored"});
    let made = v1.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(made.data.get("status"), None, "status is dropped on create");
    assert_eq!(made.metadata.generation, Some(1));
    let beta = widgets(&c, "v1beta1").get("w").await.unwrap();
    assert_eq!(beta.types.unwrap().api_version, "test.weir.dev/v1beta1");
    assert_eq!(beta.data["spec"]["size"], "small");

    let pp = PatchParams::default();
    let st = v1
        .patch_status("w", &pp, &Patch::Merge(json!({"spec": {"size": "large"}, "status": {"phase": "Ready", "replicas": 2, "selector": "app=w"}})))
        .await
        .unwrap();
    assert_eq!(st.data["spec"]["size"], "small");
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(st.metadata.generation, Some(1));
    let sc = v1.get_scale("w").await.unwrap();
    assert_eq!(sc.spec.unwrap().replicas, Some(2));
    assert_eq!(sc.status.unwrap().selector.as_deref(), Some("app=w"));
    v1.patch_scale("w", &pp, &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    let w = v1.get("w").await.unwrap();
    assert_eq!(w.data["spec"]["replicas"], 5);
    assert_eq!(w.metadata.generation, Some(2));
    let mut unconditional = v1.get("w").await.unwrap();
    unconditional.metadata.resource_version = None;
    let s = api_error(
        v1.replace("w", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        s.code, 422,
        "custom resources need a resourceVersion on PUT"
    );
    assert!(
        s.message.contains("metadata.resourceVersion"),
        "{}",
        s.message
    );
    let smp = v1
        .patch(
            "w",
            &pp,
            &Patch::Strategic(json!({"spec": {"size": "large"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&smp), 415, "custom resources refuse strategic merge");
    h.shutdown().await;
}

#[tokio::test]
async fn printer_columns_are_served_as_a_table() {
    let (h, c) = start().await;
    install(&c).await;
    let api = widgets(&c, "v1");
    api.create(
        &PostParams::default(),
        &widget("w", json!({"size": "small", "weight": 30})),
    )
    .await
    .unwrap();
    api.patch_status("w", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}})))
        .await
        .unwrap();
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    )];
    let t = raw(
        &h,
        "GET",
        "/apis/test.weir.dev/v1/namespaces/default/widgets",
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
    assert_eq!(cols, ["Name", "Phase", "Weight", "Ready", "Age"]);
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[0], "w");
    assert_eq!(cells[1], "Ready");
    assert_eq!(cells[2], 30);
    assert_eq!(cells[3], "True");
    assert!(
        cells[4].as_str().unwrap().ends_with('s'),
        "age like 0s: {}",
        cells[4]
    );
    let one = raw(
        &h,
        "GET",
        "/apis/test.weir.dev/v1/namespaces/default/widgets/w",
        &accept,
        "",
    )
    .await
    .json();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_it_and_drops_its_objects() {
    let (h, c) = start().await;
    install(&c).await;
    let api = widgets(&c, "v1");
    api.create(
        &PostParams::default(),
        &widget("w", json!({"size": "small"})),
    )
    .await
    .unwrap();
    Api::<CustomResourceDefinition>::all(c.clone())
        .delete("widgets.test.weir.dev", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(code(&api.get("w").await.unwrap_err()), 404);
    assert_eq!(
        raw(&h, "GET", "/apis/test.weir.dev/v1", &[], "")
            .await
            .status,
        404
    );
    install(&c).await;
    assert!(
        api.get_opt("w").await.unwrap().is_none(),
        "objects do not come back with the CRD"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn openapi_v3_describes_crds_for_kubectl() {
    let (h, c) = start().await;
    install(&c).await;
    let root = raw(&h, "GET", "/openapi/v3", &[], "").await.json();
    let url = root["paths"]["apis/test.weir.dev/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = raw(&h, "GET", &url, &[], "").await.json();
    let schema = &doc["components"]["schemas"]["dev.weir.test.v1.Widget"];
    assert_eq!(
        schema["properties"]["spec"]["properties"]["weight"]["maximum"].as_f64(),
        Some(100.0)
    );
    let v2 = raw(
        &h,
        "GET",
        "/openapi/v2",
        &[("accept", "application/json")],
        "",
    )
    .await
    .json();
    assert!(v2["definitions"]["dev.weir.test.v1.Widget"].is_object());
    h.shutdown().await;
}
