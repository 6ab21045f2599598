//! The default source: the SMI TrafficMetrics API (`metrics.smi-spec.io/v1alpha1`), read
//! through the Kubernetes API, so Weir's own metrics server and any other SMI metrics
//! server work alike.

use super::{MetricsSource, SampleQuery, SourceError, TrafficSample};
use crate::controller::chain;
use futures::future::BoxFuture;
use serde_json::Value;
use weir_crds::duration::format_duration;
use weir_crds::smi::metrics::{
    self, FAILURE_COUNT, LATENCY_METRICS, SUCCESS_COUNT, TrafficMetrics,
};

/// Reads TrafficMetrics through the Kubernetes API's aggregation layer.
#[derive(Clone)]
pub struct TrafficMetricsSource {
    client: kube::Client,
}

// === impl TrafficMetricsSource ===

impl TrafficMetricsSource {
    /// A source using `client` as it is; see [`TrafficMetricsSource::from_config`].
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// A source with its own client for `config`, without the client's automatic retries of
    /// 429/503/504: a check makes one attempt, and the next check is the retry, so an
    /// unavailable source is reported (an Error) within the check instead of being retried
    /// for minutes.
    pub fn from_config(mut config: kube::Config) -> Result<Self, kube::Error> {
        config.default_retry = false;
        Ok(Self::new(kube::Client::try_from(config)?))
    }

    /// The API path of `query`'s target, with the window as SMI's reference server reads it (`t`).
    pub fn path(query: &SampleQuery) -> String {
        format!(
            "/apis/{}/namespaces/{}/{}/{}?t={}",
            metrics::API_VERSION,
            query.target.namespace,
            query.target.resource(),
            query.target.name,
            format_duration(query.window)
        )
    }
}

impl MetricsSource for TrafficMetricsSource {
    fn describe(&self) -> String {
        "TrafficMetrics".into()
    }

    fn sample<'a>(
        &'a self,
        query: &'a SampleQuery,
    ) -> BoxFuture<'a, Result<Option<TrafficSample>, SourceError>> {
        Box::pin(async move {
            let path = Self::path(query);
            let unavailable = |message: String| SourceError::Unavailable {
                source_name: self.describe(),
                message,
            };
            let request = http::Request::get(&path)
                .body(Vec::new())
                .map_err(|e| unavailable(format!("GET {path}: {e}")))?;
            let body: Value = self
                .client
                .request(request)
                .await
                .map_err(|e| unavailable(format!("GET {path}: {}", chain(&e))))?;
            from_document(&body, query).map_err(|message| SourceError::Malformed {
                source_name: self.describe(),
                message,
            })
        })
    }
}

/// Reads a TrafficMetrics document (or a list of one, as SMI's reference server answers)
/// into a sample; `Ok(None)` when it holds no figures.
pub fn from_document(body: &Value, query: &SampleQuery) -> Result<Option<TrafficSample>, String> {
    let item = match body["kind"].as_str() {
        Some("TrafficMetrics") => body.clone(),
        Some("TrafficMetricsList") => {
            let items = body["items"].as_array().cloned().unwrap_or_default();
            match items.len() {
                0 => return Ok(None),
                1 => items[0].clone(),
                n => return Err(format!("a list of {n} items where one was expected")),
            }
        }
        other => return Err(format!("kind {other:?}, not TrafficMetrics")),
    };
    let doc: TrafficMetrics =
        serde_json::from_value(item).map_err(|e| format!("not a TrafficMetrics: {e}"))?;
    if doc.metrics.is_empty() {
        return Ok(None);
    }
    let count = |name: &str| -> Result<f64, String> {
        match doc.value_of(name) {
            None => Err(format!("{name} is missing")),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(v)) => Ok(v),
        }
    };
    let successes = count(SUCCESS_COUNT)?;
    let failures = count(FAILURE_COUNT)?;
    let mut latencies = [None; 3];
    for (slot, (name, _)) in latencies.iter_mut().zip(LATENCY_METRICS) {
        let Some(metric) = doc.metrics.iter().find(|m| m.name == name) else {
            continue;
        };
        let value = metric.value_f64().map_err(|e| e.to_string())?;
        // SMI says seconds; SMI's reference server once reported `ms`.
        *slot = Some(match metric.unit.as_deref() {
            Some("ms") | Some("milliseconds") => value,
            _ => value * 1000.0,
        });
    }
    let window = weir_crds::duration::parse_duration("window", &doc.window).unwrap_or(query.window);
    Ok(Some(TrafficSample {
        successes,
        failures,
        p50_ms: latencies[0],
        p90_ms: latencies[1],
        p99_ms: latencies[2],
        window,
        as_of: query.at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Target;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;
    use std::time::Duration;

    fn query() -> SampleQuery {
        SampleQuery {
            target: Target::deployment("prod", "foobar-v2"),
            window: Duration::from_secs(60),
            at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_path_names_the_resource_and_the_window() {
        assert_eq!(
            TrafficMetricsSource::path(&query()),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/prod/deployments/foobar-v2?t=1m"
        );
    }

    #[test]
    fn a_document_becomes_a_sample_in_milliseconds() {
        let doc = json!({"apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetrics",
            "resource": {"kind": "Deployment", "name": "foobar-v2", "namespace": "prod"},
            "timestamp": "2026-01-01T00:00:00Z", "window": "1m",
            "metrics": [{"name": "p99_response_latency", "unit": "seconds", "value": "45300u"},
                        {"name": "p50_response_latency", "unit": "seconds", "value": "10m"},
                        {"name": "success_count", "value": "412"},
                        {"name": "failure_count", "value": "1500m"}]});
        let s = from_document(&doc, &query()).unwrap().unwrap();
        assert_eq!((s.successes, s.failures), (412.0, 1.5));
        assert!((s.p99_ms.unwrap() - 45.3).abs() < 1e-9);
        assert!((s.p50_ms.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(s.p90_ms, None);
    }

    #[test]
    fn empty_metrics_and_empty_lists_are_empty_results() {
        let doc = json!({"apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetrics",
            "resource": {}, "timestamp": "t", "window": "1m", "metrics": []});
        assert_eq!(from_document(&doc, &query()), Ok(None));
        let list = json!({"kind": "TrafficMetricsList", "resource": {}, "items": []});
        assert_eq!(from_document(&list, &query()), Ok(None));
    }

    #[test]
    fn missing_counts_and_foreign_documents_are_malformed() {
        let doc = json!({"apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetrics",
            "resource": {}, "timestamp": "t", "window": "1m",
            "metrics": [{"name": "success_count", "value": "3"}]});
        assert!(
            from_document(&doc, &query())
                .unwrap_err()
                .contains("failure_count")
        );
        assert!(from_document(&json!({"kind": "Status"}), &query()).is_err());
    }
}
