//! `metrics.smi-spec.io/v1alpha1` TrafficMetrics: the shape of the metrics API's responses.
//!
//! These are not CRDs: the operator's aggregated API server serves them. Latency
//! values are quantities in seconds (`10m` is 10 ms), counts are plain numbers or, when
//! they come from an extrapolated window, milli-quantities (`73492m`).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize};

/// The API version of every TrafficMetrics document.
pub const API_VERSION: &str = "metrics.smi-spec.io/v1alpha1";
/// The API group.
pub const GROUP: &str = "metrics.smi-spec.io";
/// The API version without the group.
pub const VERSION: &str = "v1alpha1";
/// The name of the success count metric.
pub const SUCCESS_COUNT: &str = "success_count";
/// The name of the failure count metric.
pub const FAILURE_COUNT: &str = "failure_count";
/// The latency metrics, by percentile: `p50_response_latency` and so on.
pub const LATENCY_METRICS: [(&str, f64); 3] = [
    ("p50_response_latency", 0.5),
    ("p90_response_latency", 0.9),
    ("p99_response_latency", 0.99),
];

/// Traffic metrics of one resource, optionally restricted to one edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetrics {
    /// Always `metrics.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// Always `TrafficMetrics`.
    pub kind: String,
    /// Name and namespace of the resource, as metrics.k8s.io objects carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// The resource the metrics describe (Pod, Deployment, Service, TrafficSplit, Namespace).
    pub resource: ObjectReference,
    /// The other end of the traffic, when these are edge metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Edge>,
    /// For a TrafficSplit: the backend these metrics belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<SplitBackend>,
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
    /// Where the traffic was observed: `client` or `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    /// The resource at the other end; empty for all traffic in that direction.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource: ObjectReference,
}

/// Which way the traffic of an edge flows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum EdgeDirection {
    /// Traffic the resource sent to the edge's resource.
    To,
    /// Traffic the resource received from the edge's resource.
    From,
}

/// The TrafficSplit backend a TrafficMetrics item covers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SplitBackend {
    /// The split's root (apex) Service.
    pub apex: String,
    /// The backend Service.
    pub name: String,
    /// Its weight in the split.
    pub weight: i64,
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
    /// The resource the list was asked for (a kind and namespace, or one resource for edges).
    pub resource: ObjectReference,
    /// The metrics.
    pub items: Vec<TrafficMetrics>,
}

/// A metric value that is not a decimal quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric value {0:?} is not a decimal quantity (such as 100, 10m or 1.5e-3)")]
pub struct MetricQuantityError(pub String);

// === impl TrafficMetrics ===

impl TrafficMetrics {
    /// The value of the metric `name` as a number, if present.
    pub fn value_of(&self, name: &str) -> Option<Result<f64, MetricQuantityError>> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(TrafficMetric::value_f64)
    }
}

// === impl TrafficMetric ===

impl TrafficMetric {
    /// The value as a number: seconds for latencies, a count otherwise.
    pub fn value_f64(&self) -> Result<f64, MetricQuantityError> {
        parse_metric_quantity(&self.value)
    }
}

/// Parses a decimal Kubernetes quantity (`100`, `10m`, `250u`, `1.5`, `2k`, `1e-3`) into a number.
pub fn parse_metric_quantity(text: &str) -> Result<f64, MetricQuantityError> {
    let err = || MetricQuantityError(text.to_string());
    let s = text.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(err());
    }
    let mantissa: f64 = number.parse().map_err(|_| err())?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| err())?;
            10f64.powi(e)
        }
        _ => return Err(err()),
    };
    let value = mantissa * scale;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(err())
    }
}

/// Formats a non-negative number as a quantity with at most `digits` decimals (0 to 9):
/// whole values plainly (`412`), others with the smallest suffix that holds them
/// (`73492m`, `45300u`). None for a value that is negative, NaN or infinite.
pub fn format_metric_quantity(value: f64, digits: u32) -> Option<String> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let digits = digits.min(9);
    let scaled = (value * 10f64.powi(digits as i32)).round();
    if scaled > 9.0e18 {
        return Some(format!("{}", value.round()));
    }
    let mut n = scaled as u64;
    let mut d = digits;
    while d > 0 && n.is_multiple_of(10) {
        n /= 10;
        d -= 1;
    }
    let suffix = match d {
        0 => return Some(n.to_string()),
        1..=3 => {
            n *= 10u64.pow(3 - d);
            "m"
        }
        4..=6 => {
            n *= 10u64.pow(6 - d);
            "u"
        }
        _ => {
            n *= 10u64.pow(9 - d);
            "n"
        }
    };
    Some(format!("{n}{suffix}"))
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

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_with_every_decimal_suffix() {
        let cases = [
            ("100", 100.0),
            ("10m", 0.01),
            ("45300u", 0.0453),
            ("1.5", 1.5),
            ("2k", 2000.0),
            ("250n", 2.5e-7),
            ("1e-3", 0.001),
            ("73492m", 73.492),
            ("0", 0.0),
        ];
        for (text, want) in cases {
            let got = parse_metric_quantity(text).unwrap();
            assert!((got - want).abs() < 1e-12, "{text}: {got} != {want}");
        }
        for bad in ["", "m", "1x", "1..2", ".", "abc", "1e"] {
            assert!(parse_metric_quantity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities_format_with_the_smallest_suffix_that_holds_them() {
        assert_eq!(format_metric_quantity(412.0, 3).as_deref(), Some("412"));
        assert_eq!(format_metric_quantity(73.492, 3).as_deref(), Some("73492m"));
        assert_eq!(format_metric_quantity(0.01, 6).as_deref(), Some("10m"));
        assert_eq!(format_metric_quantity(0.0453, 6).as_deref(), Some("45300u"));
        assert_eq!(format_metric_quantity(0.0, 6).as_deref(), Some("0"));
        assert_eq!(format_metric_quantity(1.5, 0).as_deref(), Some("2"));
        assert_eq!(format_metric_quantity(f64::NAN, 3), None);
        assert_eq!(format_metric_quantity(-1.0, 3), None);
        for v in [0.0123456, 12.5, 999.999, 0.000001] {
            let text = format_metric_quantity(v, 6).unwrap();
            let back = parse_metric_quantity(&text).unwrap();
            assert!((back - v).abs() < 1e-6, "{v} -> {text} -> {back}");
        }
    }

    #[test]
    fn an_edge_with_a_null_resource_reads_as_empty() {
        let e: Edge =
            serde_json::from_value(serde_json::json!({"direction": "from", "resource": null}))
                .unwrap();
        assert_eq!(e.resource, ObjectReference::default());
    }
}
