//! Tests of routing decisions on compiled snapshots.

use super::*;
use crate::error::ProxyError;
use crate::fixtures::*;
use crate::host::parse_host;
use crate::index::{Index, Kind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

fn index() -> Index {
    let mut ix = Index::new("prod");
    for name in ["foobar", "foobar-v1", "foobar-v2", "empty"] {
        ix.apply(Kind::Service, &mk_service("prod", name, 80, json!(8080)))
            .unwrap();
    }
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice("prod", "a", "foobar", 8080, &[("10.0.0.9", true, "root")]),
    )
    .unwrap();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice("prod", "b", "foobar-v1", 8080, &[("10.0.0.1", true, "v1")]),
    )
    .unwrap();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice("prod", "c", "foobar-v2", 8080, &[("10.0.0.2", true, "v2")]),
    )
    .unwrap();
    ix
}

fn route(snap: &Snapshot, host: &str, headers: &HeaderMap) -> Result<String, ProxyError> {
    let key = parse_host(host, "prod").unwrap();
    let req = RequestInfo {
        method: "GET",
        path: "/",
        headers,
    };
    let mut rng = StdRng::seed_from_u64(1);
    snap.decide(&key, host, req, &mut rng)
        .map(|d| d.backend.name.clone())
        .map_err(|u| u.error)
}

#[test]
fn a_host_without_a_split_goes_to_its_own_service() {
    let snap = index().snapshot();
    assert_eq!(
        route(&snap, "foobar.prod.svc.cluster.local:80", &HeaderMap::new()).unwrap(),
        "foobar"
    );
}

#[test]
fn an_unknown_host_is_a_404_naming_it() {
    let snap = index().snapshot();
    let err = route(&snap, "nope.prod", &HeaderMap::new()).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::NOT_FOUND);
    assert!(err.body().contains("nope.prod"), "{}", err.body());
}

#[test]
fn a_backend_without_ready_endpoints_is_a_503() {
    let snap = index().snapshot();
    let err = route(&snap, "empty", &HeaderMap::new()).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err.body().contains("prod/empty has no ready endpoints"),
        "{}",
        err.body()
    );
}

#[test]
fn a_split_to_a_missing_service_is_a_503_saying_so() {
    let mut ix = index();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split("v1alpha4", "prod", "s", "foobar", &[("ghost", json!(1))]),
    )
    .unwrap();
    let err = route(&ix.snapshot(), "foobar", &HeaderMap::new()).unwrap_err();
    assert!(err.body().contains("no such Service"), "{}", err.body());
}

#[test]
fn all_zero_weights_are_a_503_saying_so() {
    let mut ix = index();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha1",
            "prod",
            "s",
            "foobar",
            &[("foobar-v1", json!(0)), ("foobar-v2", json!("0m"))],
        ),
    )
    .unwrap();
    let err = route(&ix.snapshot(), "foobar", &HeaderMap::new()).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.body().contains("weight 0"), "{}", err.body());
}

#[test]
fn a_zero_weight_backend_gets_nothing() {
    let mut ix = index();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha1",
            "prod",
            "s",
            "foobar",
            &[("foobar-v1", json!(100)), ("foobar-v2", json!(0))],
        ),
    )
    .unwrap();
    let snap = ix.snapshot();
    let key = parse_host("foobar", "prod").unwrap();
    let headers = HeaderMap::new();
    let req = RequestInfo {
        method: "GET",
        path: "/",
        headers: &headers,
    };
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..1000 {
        assert_eq!(
            snap.decide(&key, "foobar", req, &mut rng)
                .unwrap()
                .backend
                .name,
            "foobar-v1"
        );
    }
}

#[test]
fn only_matching_requests_are_split_the_rest_go_to_the_root() {
    let mut ix = index();
    ix.apply(
        Kind::HttpRouteGroup,
        &json!({"apiVersion": "specs.smi-spec.io/v1alpha3", "kind": "HTTPRouteGroup",
            "metadata": {"namespace": "prod", "name": "beta"},
            "spec": {"matches": [{"name": "beta", "pathRegex": "/.*", "methods": ["GET"],
                                  "headers": [{"x-beta": "yes"}]}]}}),
    )
    .unwrap();
    let mut split = mk_split(
        "v1alpha3",
        "prod",
        "s",
        "foobar",
        &[("foobar-v2", json!(1))],
    );
    split["spec"]["matches"] = json!([{"kind": "HTTPRouteGroup", "name": "beta"}]);
    ix.apply(Kind::TrafficSplit, &split).unwrap();
    let snap = ix.snapshot();
    let mut beta = HeaderMap::new();
    beta.insert("x-beta", "yes".parse().unwrap());
    assert_eq!(route(&snap, "foobar", &beta).unwrap(), "foobar-v2");
    assert_eq!(route(&snap, "foobar", &HeaderMap::new()).unwrap(), "foobar");
}

#[test]
fn the_backend_port_follows_the_root_port() {
    let mut ix = Index::new("prod");
    let two_ports = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "prod", "name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                               {"name": "admin", "port": 9990, "targetPort": 9990}]}})
    };
    ix.apply(Kind::Service, &two_ports("root")).unwrap();
    ix.apply(Kind::Service, &two_ports("v1")).unwrap();
    let mut slice = mk_slice("prod", "s", "v1", 8080, &[("10.0.0.1", true, "p")]);
    slice["ports"] = json!([{"name": "http", "port": 8080}, {"name": "admin", "port": 9990}]);
    ix.apply(Kind::EndpointSlice, &slice).unwrap();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split("v1alpha4", "prod", "s", "root", &[("v1", json!(1))]),
    )
    .unwrap();
    let snap = ix.snapshot();
    let headers = HeaderMap::new();
    let req = RequestInfo {
        method: "GET",
        path: "/",
        headers: &headers,
    };
    let mut rng = StdRng::seed_from_u64(1);
    for (host, want) in [
        ("root:9990", 9990),
        ("root:80", 8080),
        ("root", 8080),
        ("root:1234", 8080),
    ] {
        let key = parse_host(host, "prod").unwrap();
        let d = snap.decide(&key, host, req, &mut rng).unwrap();
        assert_eq!(d.port.endpoints[0].addr.port(), want, "{host}");
    }
}

#[test]
fn a_split_backend_without_ready_endpoints_passes_its_share_to_the_others() {
    let mut ix = index();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "s",
            "foobar",
            &[
                ("foobar-v1", json!(10)),
                ("empty", json!(80)),
                ("foobar-v2", json!(10)),
            ],
        ),
    )
    .unwrap();
    let snap = ix.snapshot();
    let key = parse_host("foobar", "prod").unwrap();
    let headers = HeaderMap::new();
    let req = RequestInfo {
        method: "GET",
        path: "/",
        headers: &headers,
    };
    let mut rng = StdRng::seed_from_u64(3);
    let mut counts = BTreeMap::<String, u32>::new();
    for _ in 0..10_000 {
        let d = snap.decide(&key, "foobar", req, &mut rng).unwrap();
        *counts.entry(d.backend.name.clone()).or_default() += 1;
    }
    // `empty`'s 80% goes to v1 and v2 in proportion to their weights (10:10).
    assert_eq!(counts.get("empty"), None, "{counts:?}");
    let v1 = f64::from(counts["foobar-v1"]) / 10_000.0;
    assert!((0.47..0.53).contains(&v1), "{counts:?}");
}

#[test]
fn a_split_whose_backends_all_lack_endpoints_is_a_503_naming_the_chosen_one() {
    let mut ix = index();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split("v1alpha4", "prod", "s", "foobar", &[("empty", json!(1))]),
    )
    .unwrap();
    let err = route(&ix.snapshot(), "foobar", &HeaderMap::new()).unwrap_err();
    assert!(
        err.body().contains("prod/empty has no ready endpoints"),
        "{}",
        err.body()
    );
}
