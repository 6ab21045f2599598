//! Hand-built Kubernetes objects for unit tests.

use serde_json::{Value, json};

/// A Service with one port `http` (`port` → `target`).
pub fn mk_service(ns: &str, name: &str, port: u16, target: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"ports": [{"name": "http", "port": port, "targetPort": target}]}
    })
}

/// An EndpointSlice of `svc` with port `http` = `port` (none when 0) and `(ip, ready, pod)` endpoints.
pub fn mk_slice(ns: &str, name: &str, svc: &str, port: u16, eps: &[(&str, bool, &str)]) -> Value {
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|(ip, ready, pod)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}
            })
        })
        .collect();
    let ports = if port == 0 {
        json!([])
    } else {
        json!([{"name": "http", "port": port}])
    };
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints
    })
}

/// A Pod owned by ReplicaSet `deploy-hash`, with a named container port `web`.
pub fn mk_pod(ns: &str, name: &str, ip: &str, sa: &str, deploy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "namespace": ns, "name": name,
            "labels": {"pod-template-hash": "abc12"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{deploy}-abc12"), "uid": "u1", "controller": true}]
        },
        "spec": {"serviceAccountName": sa,
            "containers": [{"name": "app", "ports": [{"name": "web", "containerPort": 9000}]}]},
        "status": {"podIP": ip}
    })
}

/// A TrafficSplit of the given SMI version.
pub fn mk_split(
    version: &str,
    ns: &str,
    name: &str,
    root: &str,
    backends: &[(&str, Value)],
) -> Value {
    let backends: Vec<Value> = backends
        .iter()
        .map(|(s, w)| json!({"service": s, "weight": w}))
        .collect();
    json!({
        "apiVersion": format!("split.smi-spec.io/{version}"), "kind": "TrafficSplit",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"service": root, "backends": backends}
    })
}

/// A TrafficTarget (access.smi-spec.io/v1alpha3) from `sources` to `dest` ServiceAccounts.
pub fn mk_target(ns: &str, name: &str, dest: &str, rules: Value, sources: &[&str]) -> Value {
    let sources: Vec<Value> = sources
        .iter()
        .map(|s| json!({"kind": "ServiceAccount", "name": s, "namespace": ns}))
        .collect();
    json!({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"destination": {"kind": "ServiceAccount", "name": dest, "namespace": ns},
                 "rules": rules, "sources": sources}
    })
}

/// An HTTPRouteGroup (specs.smi-spec.io/v1alpha4) with these matches.
pub fn mk_route_group(ns: &str, name: &str, matches: Value) -> Value {
    json!({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"matches": matches}
    })
}

/// A TrafficPolicy for Service `service` with this spec (besides `targetRef`).
pub fn mk_policy(ns: &str, name: &str, service: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["targetRef"] = json!({"kind": "Service", "name": service});
    json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "TrafficPolicy",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec
    })
}
