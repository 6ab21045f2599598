//! Tests of the index: decoding, compilation, rejection and last-good behaviour.

use super::*;
use crate::fixtures::*;
use serde_json::json;

fn base() -> Index {
    let mut ix = Index::new("prod");
    ix.apply(
        Kind::Service,
        &mk_service("prod", "foobar", 80, json!(8080)),
    )
    .unwrap();
    ix.apply(
        Kind::Service,
        &mk_service("prod", "foobar-v1", 80, json!(8080)),
    )
    .unwrap();
    ix.apply(
        Kind::Service,
        &mk_service("prod", "foobar-v2", 80, json!("web")),
    )
    .unwrap();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "foobar-v1-abc",
            "foobar-v1",
            8080,
            &[
                ("10.0.0.1", true, "foobar-v1-abc12-x"),
                ("10.0.0.2", false, "foobar-v1-abc12-y"),
            ],
        ),
    )
    .unwrap();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "foobar-v2-abc",
            "foobar-v2",
            0,
            &[("10.0.0.3", true, "foobar-v2-abc12-z")],
        ),
    )
    .unwrap();
    ix.apply(
        Kind::Pod,
        &mk_pod(
            "prod",
            "foobar-v1-abc12-x",
            "10.0.0.1",
            "foobar",
            "foobar-v1",
        ),
    )
    .unwrap();
    ix.apply(
        Kind::Pod,
        &mk_pod(
            "prod",
            "foobar-v2-abc12-z",
            "10.0.0.3",
            "foobar",
            "foobar-v2",
        ),
    )
    .unwrap();
    ix.apply(
        Kind::Pod,
        &mk_pod("prod", "client", "10.0.9.9", "loadgen", "client"),
    )
    .unwrap();
    ix
}

fn addrs(port: &crate::snapshot::PortEndpoints) -> Vec<std::net::SocketAddr> {
    port.endpoints.iter().map(|e| e.addr).collect()
}

fn split_of<'s>(snap: &'s Snapshot, ns: &str, svc: &str) -> &'s crate::snapshot::SplitRoute {
    snap.route(ns, svc)
        .and_then(|r| r.split.as_ref())
        .expect("split")
}

fn weights(snap: &Snapshot, ns: &str, svc: &str) -> Vec<(String, u64)> {
    split_of(snap, ns, svc)
        .backends
        .iter()
        .map(|b| (b.target.name.clone(), b.weight_millis))
        .collect()
}

#[test]
fn ready_endpoints_carry_pod_deployment_and_service_account() {
    let snap = base().snapshot();
    let v1 = &snap.route("prod", "foobar-v1").unwrap().root;
    let port = v1.port_for(Some(80)).unwrap();
    assert_eq!(
        addrs(port),
        vec!["10.0.0.1:8080".parse().unwrap()],
        "not-ready 10.0.0.2 is left out"
    );
    let meta = &port.endpoints[0].meta;
    assert_eq!(meta.pod, "foobar-v1-abc12-x");
    assert_eq!(meta.deployment, "foobar-v1");
    assert_eq!(meta.service_account, "foobar");
}

#[test]
fn named_target_port_resolves_through_the_pods_container_port() {
    let snap = base().snapshot();
    let v2 = &snap.route("prod", "foobar-v2").unwrap().root;
    assert_eq!(
        addrs(v2.port_for(None).unwrap()),
        vec!["10.0.0.3:9000".parse().unwrap()]
    );
}

#[test]
fn slice_ports_take_precedence_over_the_target_port() {
    let mut ix = base();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "foobar-v2-abc",
            "foobar-v2",
            9443,
            &[("10.0.0.3", true, "foobar-v2-abc12-z")],
        ),
    )
    .unwrap();
    let snap = ix.snapshot();
    let v2 = &snap.route("prod", "foobar-v2").unwrap().root;
    assert_eq!(
        addrs(v2.port_for(None).unwrap()),
        vec!["10.0.0.3:9443".parse().unwrap()]
    );
}

#[test]
fn pods_are_indexed_by_ip_for_source_identity() {
    let snap = base().snapshot();
    let pod = snap.pod_by_ip("10.0.9.9".parse().unwrap()).unwrap();
    assert_eq!(
        (pod.namespace.as_str(), pod.service_account.as_str()),
        ("prod", "loadgen")
    );
}

#[test]
fn splits_of_every_smi_version_compile_to_the_same_weights() {
    for (version, w1, w2) in [
        ("v1alpha1", json!("900m"), json!("100m")),
        ("v1alpha2", json!(900), json!(100)),
        ("v1alpha3", json!(900), json!(100)),
        ("v1alpha4", json!(900), json!(100)),
    ] {
        let mut ix = base();
        let split = mk_split(
            version,
            "prod",
            "foobar-rollout",
            "foobar",
            &[("foobar-v1", w1), ("foobar-v2", w2)],
        );
        ix.apply(Kind::TrafficSplit, &split).unwrap();
        let snap = ix.snapshot();
        let got = weights(&snap, "prod", "foobar");
        let ratio = got[0].1 as f64 / (got[0].1 + got[1].1) as f64;
        assert_eq!(ratio, 0.9, "{version}: {got:?}");
        assert!(split_of(&snap, "prod", "foobar").matches.is_none());
    }
}

#[test]
fn v1alpha3_matches_pull_in_the_route_groups_matches() {
    let mut ix = base();
    ix.apply(
        Kind::HttpRouteGroup,
        &json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"namespace": "prod", "name": "canary-users"},
            "spec": {"matches": [{"name": "beta", "headers": {"x-beta": "yes"}}]}}),
    )
    .unwrap();
    let mut split = mk_split(
        "v1alpha3",
        "prod",
        "s",
        "foobar",
        &[("foobar-v2", json!(1))],
    );
    split["spec"]["matches"] = json!([{"kind": "HTTPRouteGroup", "name": "canary-users"}]);
    ix.apply(Kind::TrafficSplit, &split).unwrap();
    let snap = ix.snapshot();
    let matches = split_of(&snap, "prod", "foobar").matches.as_ref().unwrap();
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].name, "beta");
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
}

#[test]
fn a_missing_route_group_matches_nothing_and_warns() {
    let mut ix = base();
    let mut split = mk_split(
        "v1alpha4",
        "prod",
        "s",
        "foobar",
        &[("foobar-v2", json!(1))],
    );
    split["spec"]["matches"] = json!([{"kind": "HTTPRouteGroup", "name": "nope"}]);
    ix.apply(Kind::TrafficSplit, &split).unwrap();
    let snap = ix.snapshot();
    assert_eq!(
        split_of(&snap, "prod", "foobar")
            .matches
            .as_deref()
            .map(<[_]>::len),
        Some(0)
    );
    assert!(snap.warnings[0].contains("nope"), "{:?}", snap.warnings);
}

#[test]
fn an_invalid_split_is_rejected_alone_and_its_last_good_version_stays() {
    let mut ix = base();
    let good = mk_split(
        "v1alpha2",
        "prod",
        "s",
        "foobar",
        &[("foobar-v1", json!(90)), ("foobar-v2", json!(10))],
    );
    ix.apply(Kind::TrafficSplit, &good).unwrap();
    let bad = mk_split(
        "v1alpha2",
        "prod",
        "s",
        "foobar",
        &[("foobar-v1", json!("lots"))],
    );
    let err = ix.apply(Kind::TrafficSplit, &bad).unwrap_err();
    assert!(matches!(err, RejectError::Smi { .. }), "{err:?}");
    // Other objects still apply.
    ix.apply(Kind::Service, &mk_service("prod", "other", 80, json!(80)))
        .unwrap();
    let snap = ix.snapshot();
    assert_eq!(
        weights(&snap, "prod", "foobar"),
        vec![("foobar-v1".into(), 90_000), ("foobar-v2".into(), 10_000)]
    );
    assert!(snap.route("prod", "other").is_some());
    assert_eq!(snap.rejections.len(), 1);
    assert_eq!(snap.rejections[0].name, "s");
    assert!(
        snap.rejections[0]
            .reason
            .contains("spec.backends[0].weight"),
        "{}",
        snap.rejections[0].reason
    );
    // Fixing it clears the rejection.
    ix.apply(Kind::TrafficSplit, &good).unwrap();
    assert!(ix.snapshot().rejections.is_empty());
}

#[test]
fn an_undecodable_builtin_is_rejected_with_its_name() {
    let mut ix = base();
    let mut svc = mk_service("prod", "broken", 80, json!(80));
    svc["spec"]["ports"][0]["port"] = json!("eighty");
    assert!(matches!(
        ix.apply(Kind::Service, &svc),
        Err(RejectError::Decode { .. })
    ));
    let mut svc = mk_service("prod", "broken2", 80, json!(80));
    svc["spec"]["ports"][0]["port"] = json!(70000);
    assert!(matches!(
        ix.apply(Kind::Service, &svc),
        Err(RejectError::Invalid { .. })
    ));
    let snap = ix.snapshot();
    assert_eq!(snap.rejections.len(), 2);
    assert!(snap.route("prod", "broken").is_none());
    assert!(snap.route("prod", "foobar").is_some());
}

#[test]
fn delete_and_reset_remove_objects() {
    let mut ix = base();
    ix.delete(Kind::Service, "prod", "foobar-v1");
    assert!(ix.snapshot().route("prod", "foobar-v1").is_none());
    let rejected = ix.reset(Kind::Service, &[mk_service("prod", "only", 80, json!(80))]);
    assert_eq!(rejected, 0);
    let snap = ix.snapshot();
    assert_eq!(snap.routes["prod"].keys().collect::<Vec<_>>(), vec!["only"]);
}

#[test]
fn reset_keeps_the_last_good_version_of_a_now_invalid_object() {
    let mut ix = base();
    let good = mk_split(
        "v1alpha4",
        "prod",
        "s",
        "foobar",
        &[("foobar-v1", json!(1))],
    );
    ix.reset(Kind::TrafficSplit, std::slice::from_ref(&good));
    let bad = mk_split("v1alpha4", "prod", "s", "foobar", &[]);
    assert_eq!(ix.reset(Kind::TrafficSplit, &[bad]), 1);
    let snap = ix.snapshot();
    assert_eq!(
        weights(&snap, "prod", "foobar"),
        vec![("foobar-v1".into(), 1000)]
    );
}

#[test]
fn a_second_split_of_the_same_root_is_ignored_with_a_warning() {
    let mut ix = base();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "a",
            "foobar",
            &[("foobar-v1", json!(1))],
        ),
    )
    .unwrap();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "b",
            "foobar",
            &[("foobar-v2", json!(1))],
        ),
    )
    .unwrap();
    let snap = ix.snapshot();
    assert_eq!(split_of(&snap, "prod", "foobar").name, "a");
    assert!(snap.warnings[0].contains("prod/b"), "{:?}", snap.warnings);
}

#[test]
fn a_split_without_a_root_service_still_routes() {
    let mut ix = base();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "s",
            "virtual",
            &[("foobar-v1", json!(1))],
        ),
    )
    .unwrap();
    let snap = ix.snapshot();
    let route = snap.route("prod", "virtual").unwrap();
    assert!(!route.root.exists);
}

#[test]
fn the_shared_smi_examples_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/tests/fixtures/smi");
    for file in [
        "trafficsplit-v1alpha1.yaml",
        "rollout-stage1.yaml",
        "rollout-stage2.yaml",
        "rollout-stage3.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let value: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut ix = Index::new("default");
        ix.apply(Kind::TrafficSplit, &value)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let snap = ix.snapshot();
        assert_eq!(snap.routes["default"].len(), 1, "{file}");
    }
}

#[test]
fn the_snapshot_serialises_as_json() {
    let mut ix = base();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "s",
            "foobar",
            &[("foobar-v1", json!(1))],
        ),
    )
    .unwrap();
    let text = serde_json::to_string(&ix.snapshot()).unwrap();
    assert!(
        text.contains("\"foobar-v1\"") && text.contains("10.0.0.1:8080"),
        "{text}"
    );
}
