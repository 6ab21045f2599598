//! The brief's SMI documents (copied verbatim from the shared examples) parse into the
//! typed versions and normalise into the model with the meaning SMI gives them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use weir_crds::model::{
    AccessDecision, AccessPolicy, AccessRequest, DenyKind, HttpRouteGroup, ServiceAccountRef,
    SmiObject, Split, TrafficTarget, normalise,
};
use weir_crds::smi;

fn fixture(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smi")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde_yaml::from_value::<Value>(serde_yaml::Value::deserialize(doc).unwrap()).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

fn split(name: &str) -> Split {
    let docs = fixture(name);
    assert_eq!(docs.len(), 1);
    match normalise(&docs[0], "default").unwrap() {
        SmiObject::Split(s) => s,
        other => panic!("expected a split, got {other:?}"),
    }
}

#[test]
fn every_fixture_parses_into_its_typed_version() {
    for doc in fixture("rollout-stage1.yaml")
        .into_iter()
        .chain(fixture("rollout-stage2.yaml"))
        .chain(fixture("rollout-stage3.yaml"))
        .chain(fixture("trafficsplit-v1alpha1.yaml"))
    {
        let typed: smi::split::v1alpha1::TrafficSplit = serde_json::from_value(doc).unwrap();
        assert!(!typed.spec.backends.is_empty());
    }
    let access = fixture("access-control-v1alpha1.yaml");
    assert_eq!(access.len(), 2);
    let group: smi::specs::v1alpha1::HTTPRouteGroup =
        serde_json::from_value(access[0].clone()).unwrap();
    assert_eq!(group.spec.matches.len(), 2);
    let target: smi::access::v1alpha1::TrafficTarget =
        serde_json::from_value(access[1].clone()).unwrap();
    assert_eq!(target.spec.destination.name, "api-service");
    assert_eq!(target.spec.specs[0].matches, vec!["metrics".to_string()]);
    let metrics: smi::metrics::TrafficMetrics =
        serde_json::from_value(fixture("trafficmetrics-v1alpha1.yaml").remove(0)).unwrap();
    assert_eq!(metrics.metrics.len(), 5);
    let p99 = metrics
        .metrics
        .iter()
        .find(|m| m.name == "p99_response_latency")
        .unwrap();
    assert_eq!(p99.value_f64().unwrap(), 0.01);
    let success = metrics
        .metrics
        .iter()
        .find(|m| m.name == "success_count")
        .unwrap();
    assert_eq!(success.value_f64().unwrap(), 100.0);
    assert_eq!(
        metrics.edge.unwrap().direction,
        smi::metrics::EdgeDirection::To
    );
}

#[test]
fn rollout_stage1_gives_v2_nothing() {
    let s = split("rollout-stage1.yaml");
    assert_eq!(s.id.name, "foobar-rollout");
    assert_eq!(s.id.namespace, "default");
    assert_eq!(s.root_service, "foobar");
    assert_eq!(s.share("foobar-v1"), 1.0);
    assert_eq!(s.share("foobar-v2"), 0.0);
}

#[test]
fn rollout_stage2_gives_v2_one_third() {
    let s = split("rollout-stage2.yaml");
    assert!(
        (s.share("foobar-v2") - 1.0 / 3.0).abs() < 1e-12,
        "{}",
        s.share("foobar-v2")
    );
    assert!((s.share("foobar-v1") - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn rollout_stage3_gives_v2_everything() {
    let s = split("rollout-stage3.yaml");
    assert_eq!(s.backends.len(), 1);
    assert_eq!(s.share("foobar-v2"), 1.0);
    assert_eq!(s.share("foobar-v1"), 0.0);
}

#[test]
fn trafficsplit_example_is_even() {
    let s = split("trafficsplit-v1alpha1.yaml");
    assert_eq!(s.root_service, "my-website");
    assert_eq!(s.share("my-website-v1"), 0.5);
    assert_eq!(s.share("my-website-v2"), 0.5);
}

fn brief_policy() -> AccessPolicy {
    let docs = fixture("access-control-v1alpha1.yaml");
    let mut groups: Vec<HttpRouteGroup> = Vec::new();
    let mut targets: Vec<TrafficTarget> = Vec::new();
    for doc in &docs {
        match normalise(doc, "default").unwrap() {
            SmiObject::HttpRouteGroup(g) => groups.push(g),
            SmiObject::TrafficTarget(t) => targets.push(t),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(groups.len(), 1);
    assert_eq!(targets.len(), 1);
    AccessPolicy::new(targets, groups, [])
}

fn sa(name: &str) -> ServiceAccountRef {
    ServiceAccountRef {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn decide<'p>(
    policy: &'p AccessPolicy,
    src: &str,
    dst: &str,
    method: &str,
    path: &str,
) -> AccessDecision<'p> {
    let src = sa(src);
    let dst = sa(dst);
    let req = AccessRequest {
        source: Some(&src),
        destination: &dst,
        port: 80,
        method,
        path,
    };
    policy.check(&req, |_| None)
}

#[test]
fn brief_target_allows_prometheus_get_metrics_on_api_service() {
    let policy = brief_policy();
    match decide(&policy, "prometheus", "api-service", "GET", "/metrics") {
        AccessDecision::Allow { target, rule } => {
            assert_eq!(target.name, "api-service-metrics");
            assert_eq!(rule, "HTTPRouteGroup/api-service-routes#metrics");
        }
        deny => panic!("expected allow, got {deny:?}"),
    }
}

#[test]
fn brief_target_allows_nothing_else() {
    let policy = brief_policy();
    let denied = [
        // The `api` match exists in the group but the target does not name it.
        ("prometheus", "api-service", "GET", "/api"),
        ("prometheus", "api-service", "POST", "/metrics"),
        ("prometheus", "api-service", "GET", "/metrics/extra"),
        ("prometheus", "api-service", "GET", "/"),
        ("grafana", "api-service", "GET", "/metrics"),
        ("prometheus", "other-service", "GET", "/metrics"),
        ("api-service", "prometheus", "GET", "/metrics"),
    ];
    for (src, dst, method, path) in denied {
        let d = decide(&policy, src, dst, method, path);
        assert!(
            matches!(d, AccessDecision::Deny { .. }),
            "{src} -> {dst} {method} {path}: {d:?}"
        );
    }
    let dst = sa("api-service");
    let anonymous = AccessRequest {
        source: None,
        destination: &dst,
        port: 80,
        method: "GET",
        path: "/metrics",
    };
    assert!(matches!(
        policy.check(&anonymous, |_| None),
        AccessDecision::Deny { .. }
    ));
}

#[test]
fn deny_reasons_say_why() {
    let policy = brief_policy();
    let AccessDecision::Deny { kind, reason } =
        decide(&policy, "grafana", "api-service", "GET", "/metrics")
    else {
        panic!("expected deny");
    };
    assert_eq!(kind, DenyKind::NoTrafficTarget);
    assert!(
        reason.contains("no TrafficTarget allows ServiceAccount default/grafana"),
        "{reason}"
    );
    let AccessDecision::Deny { kind, reason } =
        decide(&policy, "prometheus", "api-service", "POST", "/metrics")
    else {
        panic!("expected deny");
    };
    assert_eq!(kind, DenyKind::NoMatchingRule);
    assert!(
        reason.contains("api-service-metrics") && reason.contains("POST /metrics"),
        "{reason}"
    );
}

#[test]
fn the_briefs_target_is_in_force_with_its_one_rule_and_without_its_group_with_none() {
    let policy = brief_policy();
    let in_force = policy.rules_in_force();
    assert_eq!(in_force.len(), 1, "{in_force:?}");
    let (name, rules) = in_force.iter().next().unwrap();
    assert!(name.starts_with("default/"), "{name}");
    assert_eq!(*rules, 1);
    // The same target before its HTTPRouteGroup arrives: listed, with no rule in force.
    let targets: Vec<TrafficTarget> = fixture("access-control-v1alpha1.yaml")
        .iter()
        .filter_map(|doc| match normalise(doc, "default").unwrap() {
            SmiObject::TrafficTarget(t) => Some(t),
            _ => None,
        })
        .collect();
    let without_group = AccessPolicy::new(targets, [], []);
    assert_eq!(without_group.rules_in_force().get(name), Some(&0));
}
