//! Paths, windows and documents, against a store filled with hand-made scrapes.

use super::*;
use crate::metrics_api::exposition::Sample;
use crate::metrics_api::store::{BUCKETS, Limits, REQUESTS, TargetRef};
use serde_json::json;

fn labels(dst: &str, src: &str, class: &str) -> Labels {
    let dep = dst.rsplit_once('-').map_or(dst, |(d, _)| d);
    [
        ("namespace", "prod"),
        ("service", "foobar"),
        ("backend", dep),
        ("dst_deployment", dep),
        ("dst_pod", dst),
        ("src_namespace", "prod"),
        ("src_pod", src),
        ("classification", class),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One gateway scraped at 1..=11 s. Per second: client-1 → foobar-v2-abc 8 successes and 2
/// failures, all ≤ 10 ms; client-1 → foobar-v1-xyz 10 successes ≤ 5 ms.
fn store() -> Store {
    let mut store = Store::new(Limits {
        retention: Duration::from_secs(300),
        max_points: 100,
        max_series: 1000,
    });
    for i in 1..=11i64 {
        let n = i as f64;
        let mut samples = Vec::new();
        for (dst, class, per_s, le_ok) in [
            ("foobar-v2-abc", "success", 8.0, "10"),
            ("foobar-v2-abc", "failure", 2.0, "10"),
            ("foobar-v1-xyz", "success", 10.0, "5"),
        ] {
            let l = labels(dst, "client-1", class);
            samples.push(Sample {
                name: REQUESTS.into(),
                labels: l.clone(),
                value: per_s * n,
            });
            for (le, v) in [
                ("5", if le_ok == "5" { per_s * n } else { 0.0 }),
                ("10", per_s * n),
                ("+Inf", per_s * n),
            ] {
                let mut l = l.clone();
                l.insert("le".into(), le.into());
                samples.push(Sample {
                    name: BUCKETS.into(),
                    labels: l,
                    value: v,
                });
            }
        }
        store.ingest(
            &TargetRef {
                namespace: "prod".into(),
                pod: "gw".into(),
            },
            i * 1000,
            samples,
        );
    }
    store
}

fn frame() -> Frame {
    Frame {
        now: Timestamp::from_millisecond(11_000).unwrap(),
        window: Duration::from_secs(10),
    }
}

fn metric(doc: &Value, name: &str) -> Option<String> {
    doc["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
}

#[test]
fn paths_route_to_discovery_lists_gets_and_edges() {
    assert_eq!(route(""), Ok(Query::Discovery));
    assert_eq!(route("/"), Ok(Query::Discovery));
    assert_eq!(
        route("/namespaces"),
        Ok(Query::List {
            namespace: None,
            kind: Kind::Namespace
        })
    );
    assert_eq!(
        route("/namespaces/prod"),
        Ok(Query::Get {
            namespace: None,
            kind: Kind::Namespace,
            name: "prod".into()
        })
    );
    assert_eq!(
        route("/namespaces/prod/edges"),
        Ok(Query::Edges {
            namespace: None,
            kind: Kind::Namespace,
            name: "prod".into()
        })
    );
    assert_eq!(
        route("/namespaces/prod/deployments"),
        Ok(Query::List {
            namespace: Some("prod".into()),
            kind: Kind::Deployment
        })
    );
    assert_eq!(
        route("/namespaces/prod/pods/p-1"),
        Ok(Query::Get {
            namespace: Some("prod".into()),
            kind: Kind::Pod,
            name: "p-1".into()
        })
    );
    assert_eq!(
        route("/namespaces/prod/trafficsplits/s/edges"),
        Ok(Query::Edges {
            namespace: Some("prod".into()),
            kind: Kind::TrafficSplit,
            name: "s".into()
        })
    );
    assert_eq!(route("/namespaces/prod/nodes").unwrap_err().code, 404);
    assert_eq!(
        route("/namespaces/prod/pods/p/edges/x").unwrap_err().code,
        404
    );
}

#[test]
fn the_window_comes_from_t_or_window_in_go_syntax() {
    let r = Duration::from_secs(600);
    assert_eq!(window(None, r), Ok(Duration::from_secs(30)));
    assert_eq!(window(Some("t=1m"), r), Ok(Duration::from_secs(60)));
    assert_eq!(
        window(Some("a=b&window=500ms"), r),
        Ok(Duration::from_millis(500))
    );
    assert_eq!(window(Some("t=1m30s"), r), Ok(Duration::from_secs(90)));
    assert_eq!(window(Some("t=1.5s"), r), Ok(Duration::from_millis(1500)));
    assert_eq!(window(Some("t=soon"), r).unwrap_err().code, 400);
    assert_eq!(window(Some("t=0s"), r).unwrap_err().code, 400);
    assert_eq!(window(Some("t=11m"), r).unwrap_err().code, 400);
}

#[test]
fn label_selectors_are_decoded() {
    assert_eq!(
        label_selector(Some("t=1m&labelSelector=app%3Dfoobar%2Ctier+in+(web)")).as_deref(),
        Some("app=foobar,tier in (web)")
    );
    assert_eq!(label_selector(Some("t=1m")), None);
}

#[test]
fn a_deployment_gets_its_counts_and_latencies_in_the_smi_shape() {
    let doc = frame().get(&store(), Kind::Deployment, Some("prod"), "foobar-v2");
    assert_eq!(doc["apiVersion"], "metrics.smi-spec.io/v1alpha1");
    assert_eq!(doc["kind"], "TrafficMetrics");
    assert_eq!(
        doc["resource"],
        json!({"kind": "Deployment", "namespace": "prod", "name": "foobar-v2"})
    );
    assert_eq!(doc["edge"], json!({"direction": "from", "resource": {}}));
    assert_eq!(doc["window"], "10s");
    assert_eq!(doc["timestamp"], "1970-01-01T00:00:11Z");
    // (1, 11] s: 2 … 11 s sampled (9 s), 1 s to the start: × 10/9; 8/s → 80, 2/s → 20.
    assert_eq!(metric(&doc, "success_count").as_deref(), Some("80"));
    assert_eq!(metric(&doc, "failure_count").as_deref(), Some("20"));
    // All in (5, 10] ms: p50 rank 50 of 100 → 5 + 5 × 50/100 = 7.5 ms; p99 → 9.95 ms.
    assert_eq!(
        metric(&doc, "p50_response_latency").as_deref(),
        Some("7500u")
    );
    assert_eq!(
        metric(&doc, "p99_response_latency").as_deref(),
        Some("9950u")
    );
    let names: Vec<&str> = doc["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "p99_response_latency",
            "p90_response_latency",
            "p50_response_latency",
            "success_count",
            "failure_count"
        ]
    );
    assert!(doc["metrics"][0]["unit"] == "seconds");
}

#[test]
fn a_resource_without_traffic_has_no_metrics() {
    let doc = frame().get(&store(), Kind::Deployment, Some("prod"), "nothing");
    assert_eq!(doc["metrics"], json!([]));
}

#[test]
fn services_count_their_backend_and_root_traffic() {
    let s = store();
    let root = frame().get(&s, Kind::Service, Some("prod"), "foobar");
    assert_eq!(metric(&root, "success_count").as_deref(), Some("180"));
    let v1 = frame().get(&s, Kind::Service, Some("prod"), "foobar-v1");
    assert_eq!(metric(&v1, "success_count").as_deref(), Some("100"));
    assert_eq!(
        metric(&v1, "p50_response_latency").as_deref(),
        Some("2500u")
    );
    let ns = frame().get(&s, Kind::Namespace, None, "prod");
    assert_eq!(metric(&ns, "failure_count").as_deref(), Some("20"));
    assert_eq!(ns["resource"], json!({"kind": "Namespace", "name": "prod"}));
}

#[test]
fn lists_hold_one_item_per_resource_with_traffic() {
    let s = store();
    let list = frame().list_kind(&s, Kind::Deployment, Some("prod"), None);
    assert_eq!(list["kind"], "TrafficMetricsList");
    assert_eq!(
        list["resource"],
        json!({"kind": "Deployment", "namespace": "prod"})
    );
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["foobar-v1", "foobar-v2"]);
    let only = BTreeSet::from(["foobar-v2".to_string()]);
    let list = frame().list_kind(&s, Kind::Deployment, Some("prod"), Some(&only));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let pods = frame().list_kind(&s, Kind::Pod, Some("prod"), None);
    assert_eq!(pods["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        frame().list_kind(&s, Kind::Pod, Some("other"), None)["items"],
        json!([])
    );
}

#[test]
fn a_split_has_one_item_per_backend_with_its_weight() {
    let split = SplitInfo {
        name: "foobar-rollout".into(),
        apex: "foobar".into(),
        backends: vec![
            ("foobar-v1".into(), 80),
            ("foobar-v2".into(), 20),
            ("foobar-v3".into(), 0),
        ],
    };
    let doc = frame().splits(&store(), "prod", &[split], true);
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[1]["backend"],
        json!({"apex": "foobar", "name": "foobar-v2", "weight": 20})
    );
    assert_eq!(metric(&items[1], "failure_count").as_deref(), Some("20"));
    assert_eq!(items[2]["metrics"], json!([]));
    assert_eq!(doc["resource"]["name"], "foobar-rollout");
}

#[test]
fn edges_name_the_peer_pods_in_each_direction() {
    let s = store();
    let edges = frame().edges(&s, Kind::Pod, Some("prod"), "foobar-v2-abc");
    let items = edges["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["edge"],
        json!({"direction": "from", "resource": {"kind": "Pod", "namespace": "prod", "name": "client-1"}})
    );
    assert_eq!(metric(&items[0], "success_count").as_deref(), Some("80"));
    let client = frame().edges(&s, Kind::Pod, Some("prod"), "client-1");
    let to: Vec<&str> = client["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["edge"]["direction"], "to");
            i["edge"]["resource"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(to, ["foobar-v1-xyz", "foobar-v2-abc"]);
}

#[test]
fn discovery_lists_every_kind_and_its_edges() {
    let d = discovery();
    assert_eq!(d["groupVersion"], "metrics.smi-spec.io/v1alpha1");
    let names: Vec<&str> = d["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deployments") && names.contains(&"pods/edges"));
    assert_eq!(
        d["resources"][0],
        json!({"name": "namespaces", "singularName": "", "namespaced": false, "kind": "TrafficMetrics", "verbs": ["get", "list"]})
    );
}
