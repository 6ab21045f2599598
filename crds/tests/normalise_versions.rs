//! Every SMI version normalises into the one model, and bad input is an error naming
//! the object and the field, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use weir_crds::model::{
    AccessDecision, AccessPolicy, AccessRequest, MethodMatch, NormaliseError, RouteKind,
    ServiceAccountRef, SmiObject, normalise,
};
use weir_crds::smi;

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "shop"})
}

fn ok(v: Value) -> SmiObject {
    normalise(&v, "default").unwrap_or_else(|e| panic!("{e}"))
}

fn err(v: Value) -> NormaliseError {
    normalise(&v, "default").expect_err("expected an error")
}

// --- TrafficSplit ----------------------------------------------------------------

#[test]
fn split_v1alpha1_quantities_are_relative() {
    let doc = json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": meta("s"),
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": "900m"}, {"service": "web-v2", "weight": "100m"}]}});
    let _: smi::split::v1alpha1::TrafficSplit = serde_json::from_value(doc.clone()).unwrap();
    let SmiObject::Split(s) = ok(doc) else {
        panic!()
    };
    assert_eq!(s.backends[0].weight_millis, 900);
    assert!((s.share("web-v2") - 0.1).abs() < 1e-12);
    assert_eq!(s.id.namespace, "shop");
}

#[test]
fn split_v1alpha1_mixed_quantity_forms_compare_by_value() {
    let doc = json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": meta("s"),
        "spec": {"service": "web", "backends": [{"service": "a", "weight": 1}, {"service": "b", "weight": "500m"}, {"service": "c", "weight": "1.5"}]}});
    let SmiObject::Split(s) = ok(doc) else {
        panic!()
    };
    let w: Vec<u64> = s.backends.iter().map(|b| b.weight_millis).collect();
    assert_eq!(w, vec![1000, 500, 1500]);
    assert!((s.share("c") - 0.5).abs() < 1e-12);
}

#[test]
fn split_v1alpha2_integer_weights() {
    let doc = json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": meta("s"),
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 90}, {"service": "web-v2", "weight": 10}]}});
    let typed: smi::split::v1alpha2::TrafficSplit = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(typed.spec.backends[1].weight, 10);
    let SmiObject::Split(s) = ok(doc) else {
        panic!()
    };
    assert!((s.share("web-v1") - 0.9).abs() < 1e-12);
    assert!(s.matches.is_empty());
}

#[test]
fn split_v1alpha3_and_v1alpha4_keep_route_group_matches() {
    for version in ["v1alpha3", "v1alpha4"] {
        let doc = json!({"apiVersion": format!("split.smi-spec.io/{version}"), "kind": "TrafficSplit", "metadata": meta("ab"),
            "spec": {"service": "web", "matches": [{"kind": "HTTPRouteGroup", "name": "android"}],
                     "backends": [{"service": "web-v1", "weight": 0}, {"service": "web-v2", "weight": 100}]}});
        let SmiObject::Split(s) = ok(doc) else {
            panic!()
        };
        assert_eq!(s.matches.len(), 1, "{version}");
        assert_eq!(s.matches[0].name, "android");
        assert_eq!(s.share("web-v2"), 1.0);
    }
}

#[test]
fn split_read_through_another_version_normalises_by_shape() {
    // With conversion None a v1alpha1 object reads back labelled v1alpha4, quantities intact.
    let doc = json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": meta("s"),
        "spec": {"service": "web", "backends": [{"service": "a", "weight": "250m"}, {"service": "b", "weight": "750m"}]}});
    let SmiObject::Split(s) = ok(doc) else {
        panic!()
    };
    assert!((s.share("b") - 0.75).abs() < 1e-12);
}

#[test]
fn all_zero_weights_send_nothing_anywhere() {
    let doc = json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": meta("s"),
        "spec": {"service": "web", "backends": [{"service": "a", "weight": 0}]}});
    let SmiObject::Split(s) = ok(doc) else {
        panic!()
    };
    assert_eq!(s.total_weight_millis(), 0);
    assert_eq!(s.share("a"), 0.0);
}

#[test]
fn negative_weight_names_object_and_field() {
    let e = err(
        json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": meta("neg"),
        "spec": {"service": "web", "backends": [{"service": "a", "weight": 10}, {"service": "b", "weight": -5}]}}),
    );
    assert_eq!(e.object.to_string(), "TrafficSplit shop/neg");
    assert_eq!(e.field, "spec.backends[1].weight");
    assert!(e.reason.contains("negative"), "{e}");
}

#[test]
fn unparseable_quantity_names_object_and_field() {
    let e = err(
        json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": meta("q"),
        "spec": {"service": "web", "backends": [{"service": "a", "weight": "lots"}]}}),
    );
    assert_eq!(e.field, "spec.backends[0].weight");
    assert!(
        e.to_string()
            .starts_with("TrafficSplit shop/q: spec.backends[0].weight:"),
        "{e}"
    );
    assert!(e.reason.contains("\"lots\""), "{e}");
}

#[test]
fn split_structural_errors() {
    let base = |spec: Value| json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": meta("x"), "spec": spec});
    let cases = [
        (
            base(json!({"backends": [{"service": "a", "weight": 1}]})),
            "spec.service",
        ),
        (base(json!({"service": "web"})), "spec.backends"),
        (
            base(json!({"service": "web", "backends": []})),
            "spec.backends",
        ),
        (
            base(json!({"service": "web", "backends": [{"weight": 1}]})),
            "spec.backends[0].service",
        ),
        (
            base(json!({"service": "web", "backends": [{"service": "a"}]})),
            "spec.backends[0].weight",
        ),
        (
            base(
                json!({"service": "web", "backends": [{"service": "a", "weight": 1}, {"service": "a", "weight": 2}]}),
            ),
            "spec.backends[1].service",
        ),
        (
            base(
                json!({"service": "web", "backends": [{"service": "a", "weight": 1}], "matches": [{"kind": "Foo", "name": "x"}]}),
            ),
            "spec.matches[0].kind",
        ),
        (base(json!("not an object")), "spec"),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": meta("x")}),
            "spec",
        ),
    ];
    for (doc, field) in cases {
        let e = err(doc);
        assert_eq!(e.field, field, "{e}");
        assert_eq!(e.object.name, "x");
        assert!(!e.reason.contains("Wire"), "internal names leak: {e}");
    }
}

// --- HTTPRouteGroup and TCPRoute ---------------------------------------------------

#[test]
fn route_group_v1alpha1_top_level_matches() {
    let doc = json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup", "metadata": meta("g"),
        "matches": [{"name": "api", "pathRegex": "/api/.*", "methods": ["get", "POST"]}]});
    let SmiObject::HttpRouteGroup(g) = ok(doc) else {
        panic!()
    };
    let m = g.get("api").unwrap();
    assert_eq!(
        m.methods,
        MethodMatch::Only(["GET".to_string(), "POST".to_string()].into())
    );
    assert!(m.matches("GET", "/api/v1", |_| None));
    assert!(
        !m.matches("GET", "/v2/api/v1", |_| None),
        "anchored at the start"
    );
    assert!(!m.matches("DELETE", "/api/v1", |_| None));
}

#[test]
fn route_group_v1alpha2_spec_matches_and_whole_path_anchor() {
    let doc = json!({"apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "HTTPRouteGroup", "metadata": meta("g"),
        "spec": {"matches": [{"name": "m", "pathRegex": "/metrics", "methods": ["*"]}]}});
    let SmiObject::HttpRouteGroup(g) = ok(doc) else {
        panic!()
    };
    let m = g.get("m").unwrap();
    assert_eq!(m.methods, MethodMatch::Any);
    assert!(m.matches("PATCH", "/metrics", |_| None));
    assert!(
        !m.matches("GET", "/metricsz", |_| None),
        "anchored at the end"
    );
}

#[test]
fn route_group_v1alpha3_header_list_and_v1alpha4_header_map_mean_the_same() {
    let v3 = json!({"apiVersion": "specs.smi-spec.io/v1alpha3", "kind": "HTTPRouteGroup", "metadata": meta("g"),
        "spec": {"matches": [{"name": "android", "headers": [{"user-agent": ".*Android.*"}, {"cookie": "^(.*?;)?(type=insider)(;.*)?$"}]}]}});
    let v4 = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": meta("g"),
        "spec": {"matches": [{"name": "android", "headers": {"User-Agent": ".*Android.*", "cookie": "^(.*?;)?(type=insider)(;.*)?$"}}]}});
    for doc in [v3, v4] {
        let SmiObject::HttpRouteGroup(g) = ok(doc) else {
            panic!()
        };
        let m = g.get("android").unwrap();
        let both = |name: &str| match name {
            "user-agent" => Some("Mozilla Android 14"),
            "cookie" => Some("a=b;type=insider"),
            _ => None,
        };
        let ua_only = |name: &str| (name == "user-agent").then_some("Mozilla Android 14");
        assert!(m.matches("GET", "/anything", both));
        assert!(!m.matches("GET", "/anything", ua_only), "headers are ANDed");
        assert!(!m.matches("GET", "/", |_| None));
    }
}

#[test]
fn tcp_routes_of_every_version() {
    for version in ["v1alpha1", "v1alpha2", "v1alpha3"] {
        let doc = json!({"apiVersion": format!("specs.smi-spec.io/{version}"), "kind": "TCPRoute", "metadata": meta("t"), "spec": {}});
        let SmiObject::TcpRoute(r) = ok(doc) else {
            panic!()
        };
        assert!(r.covers(3306) && r.covers(1), "{version}");
    }
    let doc = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": meta("t"), "spec": {"matches": {"ports": [3306, 6446]}}});
    let typed: smi::specs::v1alpha4::TCPRoute = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(typed.spec.matches.unwrap().ports, vec![3306, 6446]);
    let SmiObject::TcpRoute(r) = ok(doc) else {
        panic!()
    };
    assert!(r.covers(6446) && !r.covers(80));
    let e = err(
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": meta("t"), "spec": {"matches": {"ports": [70000]}}}),
    );
    assert_eq!(e.field, "spec.matches.ports[0]");
}

#[test]
fn route_group_errors() {
    let g = |matches: Value| json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": meta("bad"), "spec": {"matches": matches}});
    let cases = [
        (
            g(json!([{"name": "x", "pathRegex": "(unclosed"}])),
            "spec.matches[0].pathRegex",
        ),
        (
            g(json!([{"name": "x", "methods": ["FETCH"]}])),
            "spec.matches[0].methods[0]",
        ),
        (
            g(json!([{"name": "x", "methods": []}])),
            "spec.matches[0].methods",
        ),
        (g(json!([{"pathRegex": "/"}])), "spec.matches[0].name"),
        (
            g(json!([{"name": "x"}, {"name": "x"}])),
            "spec.matches[1].name",
        ),
        (
            g(json!([{"name": "x", "headers": "ua"}])),
            "spec.matches[0].headers",
        ),
        (
            g(json!([{"name": "x", "headers": {"ua": 5}}])),
            "spec.matches[0].headers.ua",
        ),
        (
            g(json!([{"name": "x", "headers": [{"ua": "["}]}])),
            "spec.matches[0].headers[0].ua",
        ),
        (g(json!("nope")), "spec.matches"),
    ];
    for (doc, field) in cases {
        let e = err(doc);
        assert_eq!(e.field, field, "{e}");
        assert_eq!(e.object.to_string(), "HTTPRouteGroup shop/bad");
    }
    let e = err(
        json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup", "metadata": meta("bad")}),
    );
    assert_eq!(e.field, "spec.matches");
}

// --- TrafficTarget --------------------------------------------------------------------

fn sa(ns: &str, name: &str) -> ServiceAccountRef {
    ServiceAccountRef {
        namespace: ns.into(),
        name: name.into(),
    }
}

#[test]
fn traffic_target_v1alpha1_v1alpha2_v1alpha3_normalise_alike() {
    let dest = json!({"kind": "ServiceAccount", "name": "api"});
    let rules = json!([{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["m"]}]);
    let sources = json!([{"kind": "ServiceAccount", "name": "web", "namespace": "front"}]);
    let docs = [
        json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": meta("t"),
               "destination": dest, "specs": rules, "sources": sources}),
        json!({"apiVersion": "access.smi-spec.io/v1alpha2", "kind": "TrafficTarget", "metadata": meta("t"),
               "spec": {"destination": dest, "rules": rules, "sources": sources}}),
        json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": meta("t"),
               "spec": {"destination": dest, "rules": rules, "sources": sources}}),
    ];
    let _: smi::access::v1alpha1::TrafficTarget = serde_json::from_value(docs[0].clone()).unwrap();
    let _: smi::access::v1alpha2::TrafficTarget = serde_json::from_value(docs[1].clone()).unwrap();
    let _: smi::access::v1alpha3::TrafficTarget = serde_json::from_value(docs[2].clone()).unwrap();
    let normalised: Vec<_> = docs.into_iter().map(ok).collect();
    assert_eq!(normalised[0], normalised[1]);
    assert_eq!(normalised[1], normalised[2]);
    let SmiObject::TrafficTarget(t) = &normalised[0] else {
        panic!()
    };
    assert_eq!(
        t.destination,
        sa("shop", "api"),
        "destination namespace defaults to the target's"
    );
    assert_eq!(t.sources, vec![sa("front", "web")]);
    assert_eq!(t.rules[0].kind, RouteKind::Http);
    assert_eq!(t.rules[0].matches, vec!["m".to_string()]);
}

fn target_policy(target: Value, extra: Vec<Value>) -> AccessPolicy {
    let (mut targets, mut http, mut tcp) = (Vec::new(), Vec::new(), Vec::new());
    for doc in std::iter::once(target).chain(extra) {
        match ok(doc) {
            SmiObject::TrafficTarget(t) => targets.push(t),
            SmiObject::HttpRouteGroup(g) => http.push(g),
            SmiObject::TcpRoute(r) => tcp.push(r),
            SmiObject::Split(_) => panic!(),
        }
    }
    AccessPolicy::new(targets, http, tcp)
}

fn allowed(
    policy: &AccessPolicy,
    src: &ServiceAccountRef,
    dst: &ServiceAccountRef,
    port: u16,
    method: &str,
    path: &str,
) -> bool {
    let req = AccessRequest {
        source: Some(src),
        destination: dst,
        port,
        method,
        path,
    };
    matches!(policy.check(&req, |_| None), AccessDecision::Allow { .. })
}

#[test]
fn traffic_target_with_no_rules_denies_all() {
    let policy = target_policy(
        json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": meta("empty"),
               "spec": {"destination": {"kind": "ServiceAccount", "name": "api"}, "rules": [],
                        "sources": [{"kind": "ServiceAccount", "name": "web"}]}}),
        vec![
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": meta("all"),
                    "spec": {"matches": [{"name": "all", "pathRegex": ".*", "methods": ["*"]}]}}),
        ],
    );
    for (method, path) in [("GET", "/"), ("POST", "/api"), ("DELETE", "/x")] {
        assert!(!allowed(
            &policy,
            &sa("shop", "web"),
            &sa("shop", "api"),
            80,
            method,
            path
        ));
    }
    // The same target without `rules` at all also allows nothing.
    let policy = target_policy(
        json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": meta("empty"),
               "destination": {"kind": "ServiceAccount", "name": "api"}, "sources": [{"kind": "ServiceAccount", "name": "web"}]}),
        vec![],
    );
    assert!(!allowed(
        &policy,
        &sa("shop", "web"),
        &sa("shop", "api"),
        80,
        "GET",
        "/"
    ));
}

#[test]
fn tcp_rule_and_destination_port() {
    let policy = target_policy(
        json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": meta("db"),
               "destination": {"kind": "ServiceAccount", "name": "db", "port": 5432},
               "specs": [{"kind": "TCPRoute", "name": "tcp"}],
               "sources": [{"kind": "ServiceAccount", "name": "app"}]}),
        vec![
            json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "TCPRoute", "metadata": meta("tcp"), "spec": {}}),
        ],
    );
    assert!(allowed(
        &policy,
        &sa("shop", "app"),
        &sa("shop", "db"),
        5432,
        "GET",
        "/"
    ));
    assert!(!allowed(
        &policy,
        &sa("shop", "app"),
        &sa("shop", "db"),
        5433,
        "GET",
        "/"
    ));
    assert!(!allowed(
        &policy,
        &sa("other", "app"),
        &sa("shop", "db"),
        5432,
        "GET",
        "/"
    ));
}

#[test]
fn rule_naming_a_missing_group_allows_nothing() {
    let policy = target_policy(
        json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": meta("t"),
               "spec": {"destination": {"kind": "ServiceAccount", "name": "api"},
                        "rules": [{"kind": "HTTPRouteGroup", "name": "missing"}],
                        "sources": [{"kind": "ServiceAccount", "name": "web"}]}}),
        vec![],
    );
    assert!(!allowed(
        &policy,
        &sa("shop", "web"),
        &sa("shop", "api"),
        80,
        "GET",
        "/"
    ));
    assert_eq!(policy.warnings().len(), 1, "{:?}", policy.warnings());
    assert!(
        policy.warnings()[0].contains("HTTPRouteGroup shop/missing is missing"),
        "{:?}",
        policy.warnings()
    );
}

#[test]
fn a_broken_rule_leaves_the_other_rules_in_force() {
    let policy = target_policy(
        json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": meta("t"),
               "spec": {"destination": {"kind": "ServiceAccount", "name": "api"},
                        "rules": [{"kind": "HTTPRouteGroup", "name": "missing"},
                                  {"kind": "HTTPRouteGroup", "name": "routes", "matches": ["nope", "get"]}],
                        "sources": [{"kind": "ServiceAccount", "name": "web"}]}}),
        vec![
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": meta("routes"),
                    "spec": {"matches": [{"name": "get", "pathRegex": "/x", "methods": ["GET"]},
                                         {"name": "post", "pathRegex": "/x", "methods": ["POST"]}]}}),
        ],
    );
    let (web, api) = (sa("shop", "web"), sa("shop", "api"));
    assert!(allowed(&policy, &web, &api, 80, "GET", "/x"));
    assert!(!allowed(&policy, &web, &api, 80, "POST", "/x"));
    assert!(policy.governs(&api));
    assert!(!policy.governs(&web));
    let warnings = policy.warnings().join("\n");
    assert!(warnings.contains("shop/missing is missing"), "{warnings}");
    assert!(warnings.contains("no match named \"nope\""), "{warnings}");
}

#[test]
fn traffic_target_errors() {
    let t = |spec: Value| json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": meta("bad"), "spec": spec});
    let dest = json!({"kind": "ServiceAccount", "name": "api"});
    let cases = [
        (t(json!({"rules": [], "sources": []})), "spec.destination"),
        (
            t(json!({"destination": {"kind": "Deployment", "name": "api"}})),
            "spec.destination.kind",
        ),
        (
            t(json!({"destination": {"kind": "ServiceAccount", "name": ""}})),
            "spec.destination.name",
        ),
        (
            t(json!({"destination": {"kind": "ServiceAccount", "name": "api", "port": 0}})),
            "spec.destination.port",
        ),
        (
            t(json!({"destination": dest, "rules": [{"kind": "UDPRoute", "name": "u"}]})),
            "spec.rules[0].kind",
        ),
        (
            t(json!({"destination": dest, "rules": [{"kind": "TCPRoute", "name": ""}]})),
            "spec.rules[0].name",
        ),
        (
            t(json!({"destination": dest, "sources": [{"kind": "User", "name": "bob"}]})),
            "spec.sources[0].kind",
        ),
        (
            json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": meta("bad"),
                "destination": dest, "specs": [{"kind": "Nope", "name": "n"}]}),
            "specs[0].kind",
        ),
        (
            json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": meta("bad")}),
            "destination",
        ),
    ];
    for (doc, field) in cases {
        let e = err(doc);
        assert_eq!(e.field, field, "{e}");
        assert_eq!(e.object.to_string(), "TrafficTarget shop/bad");
    }
}

#[test]
fn unknown_kinds_are_rejected_by_name() {
    let e = err(
        json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "Rollout", "metadata": meta("r")}),
    );
    assert_eq!(e.field, "apiVersion");
    assert!(e.reason.contains("Rollout"));
    let e = err(json!({"kind": "TrafficSplit", "metadata": meta("r")}));
    assert_eq!(e.field, "apiVersion");
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9*./()\\[-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("service".to_string()),
                    Just("backends".to_string()),
                    Just("weight".to_string()),
                    Just("matches".to_string()),
                    Just("name".to_string()),
                    Just("headers".to_string()),
                    Just("destination".to_string()),
                    Just("rules".to_string()),
                    Just("sources".to_string()),
                    Just("kind".to_string()),
                    Just("pathRegex".to_string()),
                    Just("methods".to_string()),
                    "[a-z]{1,3}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn normalise_never_panics_on_arbitrary_specs(
        kind in prop_oneof![
            Just(("split.smi-spec.io/v1alpha1", "TrafficSplit")),
            Just(("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup")),
            Just(("specs.smi-spec.io/v1alpha4", "TCPRoute")),
            Just(("access.smi-spec.io/v1alpha1", "TrafficTarget")),
        ],
        spec in arb_json(),
        top in arb_json(),
    ) {
        let mut doc = json!({"apiVersion": kind.0, "kind": kind.1, "metadata": {"name": "p"}, "spec": spec});
        if let (Value::Object(d), Value::Object(t)) = (&mut doc, top) {
            for (k, v) in t {
                if !["apiVersion", "kind", "metadata", "spec"].contains(&k.as_str()) {
                    d.insert(k, v);
                }
            }
        }
        if let Err(e) = normalise(&doc, "default") {
            prop_assert_eq!(e.object.name, "p");
            prop_assert!(!e.field.is_empty());
        }
    }
}
