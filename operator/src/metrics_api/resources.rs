//! The API's paths and documents: which series a resource's figures come from, and the
//! SMI TrafficMetrics shapes they are served in (pure: the store and time are arguments).
//!
//! | path (under `/apis/metrics.smi-spec.io/v1alpha1`) | answer |
//! |---|---|
//! | `` | APIResourceList |
//! | `namespaces`, `namespaces/{ns}/{kind}` | TrafficMetricsList, one item per resource with traffic |
//! | `namespaces/{ns}`, `namespaces/{ns}/{kind}/{name}` | TrafficMetrics (a TrafficSplit: a list, one item per backend) |
//! | `…/{name}/edges` | TrafficMetricsList, one item per peer pod and direction |
//!
//! Inbound figures are the traffic a resource received: `dst_pod` for pods,
//! `dst_deployment` for Deployments, `backend` or the root `service` for Services, every
//! series of the namespace for namespaces, and the root Service's series per backend for a
//! TrafficSplit. Edges: `from` each client pod (`src_pod`, `unknown` when the gateway could
//! not tell), and for pods also `to` each destination pod they called.

pub use super::paths::{
    DEFAULT_WINDOW, Failure, Kind, Query, discovery, label_selector, route, window,
};
use super::store::{Aggregate, Labels, Store};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use weir_crds::duration::format_duration;
use weir_crds::smi::metrics::{
    API_VERSION, Edge, EdgeDirection, FAILURE_COUNT, LATENCY_METRICS, SUCCESS_COUNT, SplitBackend,
    TrafficMetric, TrafficMetrics, TrafficMetricsList, format_metric_quantity,
};

/// One TrafficSplit as the API needs it: its root Service and backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitInfo {
    /// The split's name.
    pub name: String,
    /// The root (apex) Service.
    pub apex: String,
    /// (backend Service, weight) in order.
    pub backends: Vec<(String, i64)>,
}

fn get<'a>(l: &'a Labels, key: &str) -> &'a str {
    l.get(key).map_or("", String::as_str)
}

/// Whether a series is traffic that `name` of `kind` in `namespace` received.
fn receives(kind: Kind, namespace: &str, name: &str, l: &Labels) -> bool {
    match kind {
        Kind::Namespace => get(l, "namespace") == name,
        _ if get(l, "namespace") != namespace => false,
        Kind::Pod => get(l, "dst_pod") == name,
        Kind::Deployment => get(l, "dst_deployment") == name,
        Kind::Service => get(l, "backend") == name || get(l, "service") == name,
        Kind::TrafficSplit => get(l, "service") == name,
    }
}

/// The names of `kind` in `namespace` a series' traffic counts for.
fn receivers(kind: Kind, namespace: &str, l: &Labels) -> Vec<String> {
    let mut names: Vec<String> = match kind {
        Kind::Namespace => vec![get(l, "namespace").to_string()],
        _ if get(l, "namespace") != namespace => return Vec::new(),
        Kind::Pod => vec![get(l, "dst_pod").to_string()],
        Kind::Deployment => vec![get(l, "dst_deployment").to_string()],
        Kind::Service => vec![get(l, "backend").to_string(), get(l, "service").to_string()],
        Kind::TrafficSplit => Vec::new(),
    };
    names.retain(|n| !n.is_empty());
    names.dedup();
    names
}

fn reference(kind: Kind, namespace: Option<&str>, name: Option<&str>) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.kind().into()),
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        ..ObjectReference::default()
    }
}

/// The metrics of one aggregate: latencies in seconds, counts; none without data.
pub fn metrics_of(agg: Option<&Aggregate>) -> Vec<TrafficMetric> {
    let Some(agg) = agg else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, q) in LATENCY_METRICS.iter().rev() {
        if let Some(value) = agg
            .latency_ms(*q)
            .and_then(|ms| format_metric_quantity(ms / 1000.0, 6))
        {
            out.push(TrafficMetric {
                name: (*name).into(),
                unit: Some("seconds".into()),
                value,
            });
        }
    }
    for (name, v) in [
        (SUCCESS_COUNT, agg.successes),
        (FAILURE_COUNT, agg.failures),
    ] {
        out.push(TrafficMetric {
            name: name.into(),
            unit: None,
            value: format_metric_quantity(v.max(0.0), 3).unwrap_or_else(|| "0".into()),
        });
    }
    out
}

/// Everything a document needs besides its figures.
pub struct Frame {
    /// When the figures were computed.
    pub now: Timestamp,
    /// Their window.
    pub window: Duration,
}

// === impl Frame ===

impl Frame {
    fn end_ms(&self) -> i64 {
        self.now.as_millisecond()
    }

    fn document(
        &self,
        resource: ObjectReference,
        edge: Option<Edge>,
        backend: Option<SplitBackend>,
        agg: Option<&Aggregate>,
    ) -> TrafficMetrics {
        TrafficMetrics {
            api_version: API_VERSION.into(),
            kind: "TrafficMetrics".into(),
            metadata: Some(ObjectMeta {
                name: resource.name.clone(),
                namespace: resource.namespace.clone(),
                creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    self.now,
                )),
                ..ObjectMeta::default()
            }),
            resource,
            edge,
            backend,
            timestamp: self.now.to_string(),
            window: format_duration(self.window),
            metrics: metrics_of(agg),
        }
    }

    fn list(&self, resource: ObjectReference, items: Vec<TrafficMetrics>) -> TrafficMetricsList {
        TrafficMetricsList {
            api_version: API_VERSION.into(),
            kind: "TrafficMetricsList".into(),
            resource,
            items,
        }
    }

    fn received() -> Option<Edge> {
        Some(Edge {
            direction: EdgeDirection::From,
            side: None,
            resource: ObjectReference::default(),
        })
    }

    /// All traffic `name` of `kind` received.
    pub fn get(&self, store: &Store, kind: Kind, namespace: Option<&str>, name: &str) -> Value {
        let ns = namespace.unwrap_or_default();
        let agg = store.aggregate(self.end_ms(), self.window, |l| {
            if receives(kind, ns, name, l) {
                vec![()]
            } else {
                Vec::new()
            }
        });
        let doc = self.document(
            reference(kind, namespace, Some(name)),
            Self::received(),
            None,
            agg.get(&()),
        );
        serde_json::to_value(doc).unwrap_or(Value::Null)
    }

    /// Every resource of `kind` (in `namespace`) with traffic, optionally only those named in `only`.
    pub fn list_kind(
        &self,
        store: &Store,
        kind: Kind,
        namespace: Option<&str>,
        only: Option<&BTreeSet<String>>,
    ) -> Value {
        let ns = namespace.unwrap_or_default();
        let groups = store.aggregate(self.end_ms(), self.window, |l| {
            let mut names = receivers(kind, ns, l);
            if let Some(only) = only {
                names.retain(|n| only.contains(n));
            }
            names
        });
        let items = groups
            .iter()
            .map(|(name, agg)| {
                let r = reference(kind, namespace, Some(name));
                self.document(r, Self::received(), None, Some(agg))
            })
            .collect();
        serde_json::to_value(self.list(reference(kind, namespace, None), items))
            .unwrap_or(Value::Null)
    }

    /// One item per backend of each split, in the split's order.
    pub fn splits(&self, store: &Store, namespace: &str, splits: &[SplitInfo], one: bool) -> Value {
        let mut items = Vec::new();
        for split in splits {
            let groups = store.aggregate(self.end_ms(), self.window, |l| {
                if receives(Kind::TrafficSplit, namespace, &split.apex, l) {
                    vec![get(l, "backend").to_string()]
                } else {
                    Vec::new()
                }
            });
            for (backend, weight) in &split.backends {
                items.push(self.document(
                    reference(Kind::TrafficSplit, Some(namespace), Some(&split.name)),
                    Self::received(),
                    Some(SplitBackend {
                        apex: split.apex.clone(),
                        name: backend.clone(),
                        weight: *weight,
                    }),
                    groups.get(backend),
                ));
            }
        }
        let name = splits.first().filter(|_| one).map(|s| s.name.as_str());
        serde_json::to_value(self.list(reference(Kind::TrafficSplit, Some(namespace), name), items))
            .unwrap_or(Value::Null)
    }

    /// The edges of `name`: traffic from each client pod, and for a pod also to each pod it called.
    pub fn edges(&self, store: &Store, kind: Kind, namespace: Option<&str>, name: &str) -> Value {
        let ns = namespace.unwrap_or_default();
        let groups = store.aggregate(self.end_ms(), self.window, |l| {
            let mut keys = Vec::new();
            if receives(kind, ns, name, l) {
                let pod = match get(l, "src_pod") {
                    "" => "unknown",
                    p => p,
                };
                keys.push((
                    EdgeDirection::From,
                    get(l, "src_namespace").to_string(),
                    pod.to_string(),
                ));
            }
            if kind == Kind::Pod && get(l, "src_namespace") == ns && get(l, "src_pod") == name {
                keys.push((
                    EdgeDirection::To,
                    get(l, "namespace").to_string(),
                    get(l, "dst_pod").to_string(),
                ));
            }
            keys
        });
        let items = groups
            .iter()
            .map(|((direction, peer_ns, peer), agg)| {
                let peer_ref = reference(
                    Kind::Pod,
                    Some(peer_ns.as_str()).filter(|n| !n.is_empty() && *n != "unknown"),
                    Some(peer.as_str()),
                );
                let edge = Edge {
                    direction: *direction,
                    side: None,
                    resource: peer_ref,
                };
                self.document(
                    reference(kind, namespace, Some(name)),
                    Some(edge),
                    None,
                    Some(agg),
                )
            })
            .collect();
        serde_json::to_value(self.list(reference(kind, namespace, Some(name)), items))
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests;
