//! Live figures read from an SMI TrafficMetrics document (`metrics.smi-spec.io/v1alpha1`).

use super::Role;
use serde::{Deserialize, Serialize};
use weir_crds::smi::metrics::TrafficMetrics;

/// One revision's live traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRow {
    /// Canary or stable.
    pub role: Option<Role>,
    /// The revision.
    pub revision: Option<i64>,
    /// The Deployment the figures are for.
    pub deployment: String,
    /// The window the figures cover, such as `30s`.
    pub window: Option<String>,
    /// Requests in the window (successes + failures).
    pub requests: Option<u64>,
    /// Percent of successful requests.
    pub success_rate: Option<f64>,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Why this row has no figures, if it has none.
    pub unavailable: Option<String>,
}

// === impl LiveRow ===

impl LiveRow {
    /// A row with no figures, for this reason.
    pub fn missing(reason: &str) -> Self {
        Self {
            role: None,
            revision: None,
            deployment: String::new(),
            window: None,
            requests: None,
            success_rate: None,
            p50_ms: None,
            p99_ms: None,
            unavailable: Some(reason.to_string()),
        }
    }
}

/// The figures of one TrafficMetrics document: counts are summed into requests, latencies
/// (quantities in seconds) become milliseconds. A value that is not a quantity is an error.
pub fn figures_from(metrics: &TrafficMetrics) -> Result<LiveRow, String> {
    let value = |name: &str| -> Result<Option<f64>, String> {
        metrics
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| {
                m.value_f64()
                    .map_err(|e| format!("metric {name} = {:?}: {e}", m.value))
            })
            .transpose()
    };
    let successes = value("success_count")?;
    let failures = value("failure_count")?;
    let requests = match (successes, failures) {
        (None, None) => None,
        (s, f) => Some((s.unwrap_or(0.0) + f.unwrap_or(0.0)).round() as u64),
    };
    let success_rate = match (successes, requests) {
        (Some(s), Some(n)) if n > 0 => Some(s * 100.0 / n as f64),
        _ => None,
    };
    let ms = |v: Option<f64>| v.map(|s| s * 1000.0);
    Ok(LiveRow {
        role: None,
        revision: None,
        deployment: metrics.resource.name.clone().unwrap_or_default(),
        window: Some(metrics.window.clone()),
        requests,
        success_rate,
        p50_ms: ms(value("p50_response_latency")?),
        p99_ms: ms(value("p99_response_latency")?),
        unavailable: None,
    })
}
