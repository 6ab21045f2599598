//! How a Rollout judges its canary.

use crate::duration::{DURATION_PATTERN, DurationError};
use crate::rollout::optional_duration;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The analysis used by `analysis` steps.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSpec {
    /// How often a check runs (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// How much recent traffic a check looks at (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: Option<String>,
    /// Fewer requests than this in the window make a check inconclusive, never a pass (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_requests: Option<i64>,
    /// Failed checks tolerated; one more rolls the canary back (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failure_limit: Option<i32>,
    /// The lowest acceptable percentage of non-5xx responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<SuccessRateCheck>,
    /// Upper bounds on latency percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyBounds>,
    /// Compares the canary with the stable revision's live traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineCheck>,
    /// Custom PromQL checks (Prometheus source only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<PromQuery>,
    /// Where metrics come from; the SMI TrafficMetrics API when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MetricsSourceSpec>,
}

/// A success-rate threshold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SuccessRateCheck {
    /// The minimum percentage (0 to 100) of responses that are not 5xx.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub min: f64,
}

/// Latency percentile bounds, each a duration such as `500ms`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LatencyBounds {
    /// The highest acceptable median latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub p50: Option<String>,
    /// The highest acceptable 90th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub p90: Option<String>,
    /// The highest acceptable 99th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub p99: Option<String>,
}

/// A comparison of the canary against the stable revision.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BaselineCheck {
    /// The most the canary's success rate may fall below stable's, in percentage points.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_success_rate_drop: f64,
}

/// A custom PromQL check; the query must return one number.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.min) || has(self.max)").message("a query needs a min or a max to compare its result with"))]
pub struct PromQuery {
    /// A name for messages and metrics.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The PromQL expression; `{{namespace}}`, `{{service}}` and `{{window}}` are substituted.
    #[schemars(length(min = 1))]
    pub promql: String,
    /// The result must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The result must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// The metrics source: exactly one of `prometheus` or `mesh`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.prometheus) != has(self.mesh)").message("set exactly one of prometheus or mesh"))]
pub struct MetricsSourceSpec {
    /// Query a Prometheus server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
    /// Read the mesh's SMI TrafficMetrics API (`metrics.smi-spec.io`) through the Kubernetes
    /// API: Weir's operator serves it from its gateway proxies, and any SMI metrics server
    /// works (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshSource>,
}

/// A Prometheus server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// The server's base URL, such as `http://prometheus:9090`.
    #[schemars(regex(pattern = "^https?://"))]
    pub address: String,
}

/// The SMI TrafficMetrics API; takes no settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MeshSource {}

// === impl AnalysisSpec ===

impl AnalysisSpec {
    /// `interval`, parsed (default 30s).
    pub fn interval(&self) -> Result<Duration, DurationError> {
        optional_duration(
            "spec.strategy.analysis.interval",
            &self.interval,
            Duration::from_secs(30),
        )
    }

    /// `window`, parsed (default 1m).
    pub fn window(&self) -> Result<Duration, DurationError> {
        optional_duration(
            "spec.strategy.analysis.window",
            &self.window,
            Duration::from_secs(60),
        )
    }

    /// `minRequests` (default 20).
    pub fn min_requests(&self) -> u64 {
        self.min_requests
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(20)
    }

    /// `failureLimit` (default 2).
    pub fn failure_limit(&self) -> u32 {
        self.failure_limit
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(2)
    }
}

// === impl LatencyBounds ===

impl LatencyBounds {
    /// The bounds that are set, as (percentile label, limit) pairs.
    pub fn limits(&self) -> Result<Vec<(&'static str, Duration)>, DurationError> {
        let mut out = Vec::new();
        for (label, value) in [("p50", &self.p50), ("p90", &self.p90), ("p99", &self.p99)] {
            if let Some(v) = value {
                let field = format!("spec.strategy.analysis.latency.{label}");
                out.push((label, crate::duration::parse_duration(&field, v)?));
            }
        }
        Ok(out)
    }
}
