//! `metrics.smi-spec.io/v1alpha1` TrafficMetrics: the shape of the metrics API's responses.
//!
//! These are not CRDs: the operator's aggregated API server serves them. Latency
//! values are quantities in seconds (`10m` is 10 ms), counts are plain numbers.

use k8s_openapi::api::core::v1::ObjectReference;
use serde::{Deserialize, Deserializer, Serialize};

/// The API version of every TrafficMetrics document.
pub const API_VERSION: &str = "metrics.smi-spec.io/v1alpha1";

/// Traffic metrics of one resource, optionally restricted to one edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetrics {
    /// Always `metrics.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// Always `TrafficMetrics`.
    pub kind: String,
    /// The resource the metrics describe (Pod, Deployment, Service, TrafficSplit, Namespace).
    pub resource: ObjectReference,
    /// The other end of the traffic, when these are edge metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Edge>,
    /// When the metrics were computed (RFC 3339).
    pub timestamp: String,
    /// How much traffic the metrics cover, such as `30s`.
    pub window: String,
    /// The metric values.
    pub metrics: Vec<TrafficMetric>,
}

/// The other end of an edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Edge {
    /// `to` (traffic sent by the resource) or `from` (traffic received).
    pub direction: EdgeDirection,
    /// The resource at the other end.
    pub resource: ObjectReference,
}

/// Which way the traffic of an edge flows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EdgeDirection {
    /// Traffic the resource sent to the edge's resource.
    To,
    /// Traffic the resource received from the edge's resource.
    From,
}

/// One named value, such as `p99_response_latency` or `success_count`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrafficMetric {
    /// The metric's name.
    pub name: String,
    /// The unit, `seconds` for latencies; absent for counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The value as a quantity string (`10m`, `100`).
    #[serde(deserialize_with = "quantity_text")]
    pub value: String,
}

/// A list of TrafficMetrics, as returned for a collection or for edges.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetricsList {
    /// Always `metrics.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// Always `TrafficMetricsList`.
    pub kind: String,
    /// The resource the list was asked for (a namespace, or one resource for edges).
    pub resource: ObjectReference,
    /// The metrics.
    pub items: Vec<TrafficMetrics>,
}

// === impl TrafficMetric ===

impl TrafficMetric {
    /// The value as a number: seconds for latencies, a count otherwise.
    pub fn value_f64(&self) -> Result<f64, crate::quantity::QuantityError> {
        crate::quantity::parse_quantity_millis(&self.value).map(|m| m as f64 / 1000.0)
    }
}

fn quantity_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "metric value {other} is not a quantity"
        ))),
    }
}
