//! PromQL over the proxies' series through a Prometheus server, plus custom queries.
//!
//! For a Deployment `d` in namespace `ns` over window `w`:
//! ```text
//! sum by (classification) (increase(weir_requests_total{namespace="ns",dst_deployment="d"}[w]))
//! histogram_quantile(q, sum by (le) (increase(weir_response_latency_ms_bucket{…}[w])))
//! ```

use super::{MetricsSource, SampleQuery, SourceError, TargetKind, TrafficSample};
use crate::controller::chain;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use prometheus_http_query::response::Data;
use std::sync::Arc;
use std::time::Duration;
use weir_crds::duration::format_duration;
use weir_crds::smi::metrics::LATENCY_METRICS;

/// Why a Prometheus source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusSetupError {
    /// TLS could not be configured.
    #[error("TLS for Prometheus")]
    Tls(#[source] rustls::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client for Prometheus")]
    Client(#[source] reqwest::Error),
    /// The address is not a URL Prometheus can be reached at.
    #[error("Prometheus address {address:?}")]
    Address {
        /// The address.
        address: String,
        /// Why it was refused.
        #[source]
        source: prometheus_http_query::Error,
    },
}

/// Reads figures from one Prometheus server.
#[derive(Clone)]
pub struct PrometheusSource {
    address: String,
    client: prometheus_http_query::Client,
}

// === impl PrometheusSource ===

impl PrometheusSource {
    /// A source reading `address` (such as `http://prometheus:9090`), TLS through ring.
    pub fn new(address: &str, timeout: Duration) -> Result<Self, PrometheusSetupError> {
        use rustls_platform_verifier::BuilderVerifierExt;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_platform_verifier())
            .map_err(PrometheusSetupError::Tls)?
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .build()
            .map_err(PrometheusSetupError::Client)?;
        let client = prometheus_http_query::Client::from(http, address).map_err(|source| {
            PrometheusSetupError::Address {
                address: address.to_string(),
                source,
            }
        })?;
        Ok(Self {
            address: address.to_string(),
            client,
        })
    }

    async fn instant(&self, promql: &str, at: Timestamp) -> Result<Data, SourceError> {
        let time = format!("{:.3}", at.as_millisecond() as f64 / 1000.0);
        self.client
            .query(promql)
            .query("time", time)
            .get()
            .await
            .map(|r| r.into_inner().0)
            .map_err(|e| SourceError::Unavailable {
                source_name: self.describe(),
                message: format!("{promql}: {}", chain(&e)),
            })
    }
}

/// The label matchers selecting a target's series.
pub fn selector(query: &SampleQuery) -> String {
    let t = &query.target;
    let key = match t.kind {
        TargetKind::Deployment => "dst_deployment",
        TargetKind::Service => "backend",
    };
    format!(
        "namespace=\"{}\",{key}=\"{}\"",
        escape(&t.namespace),
        escape(&t.name)
    )
}

/// The PromQL for the counts by classification.
pub fn counts_query(query: &SampleQuery) -> String {
    format!(
        "sum by (classification) (increase(weir_requests_total{{{}}}[{}]))",
        selector(query),
        format_duration(query.window)
    )
}

/// The PromQL for the `q` latency quantile in milliseconds.
pub fn quantile_query(query: &SampleQuery, q: f64) -> String {
    format!(
        "histogram_quantile({q}, sum by (le) (increase(weir_response_latency_ms_bucket{{{}}}[{}])))",
        selector(query),
        format_duration(query.window)
    )
}

/// Substitutes `{{namespace}}`, `{{service}}` and `{{window}}` in a custom query.
pub fn substitute(promql: &str, namespace: &str, service: &str, window: Duration) -> String {
    promql
        .replace("{{namespace}}", namespace)
        .replace("{{service}}", service)
        .replace("{{window}}", &format_duration(window))
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The single number of a result: None for an empty vector, an error for several series.
fn single(data: &Data) -> Result<Option<f64>, String> {
    match data {
        Data::Scalar(s) => Ok(Some(s.value())),
        Data::Vector(v) => match v.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.sample().value())),
            many => Err(format!(
                "{} series where one number was expected",
                many.len()
            )),
        },
        Data::Matrix(_) => Err("a range vector where one number was expected".into()),
    }
}

impl MetricsSource for PrometheusSource {
    fn describe(&self) -> String {
        format!("Prometheus {}", self.address)
    }

    fn sample<'a>(
        &'a self,
        query: &'a SampleQuery,
    ) -> BoxFuture<'a, Result<Option<TrafficSample>, SourceError>> {
        Box::pin(async move {
            let malformed = |message: String| SourceError::Malformed {
                source_name: self.describe(),
                message,
            };
            let counts = self.instant(&counts_query(query), query.at).await?;
            let Data::Vector(series) = counts else {
                return Err(malformed("the counts are not an instant vector".into()));
            };
            if series.is_empty() {
                return Ok(None);
            }
            let (mut successes, mut failures) = (0.0, 0.0);
            for s in &series {
                match s.metric().get("classification").map(String::as_str) {
                    Some("success") => successes += s.sample().value(),
                    _ => failures += s.sample().value(),
                }
            }
            let mut latencies = [None; 3];
            for (slot, (_, q)) in latencies.iter_mut().zip(LATENCY_METRICS) {
                let data = self.instant(&quantile_query(query, q), query.at).await?;
                *slot = single(&data).map_err(malformed)?.filter(|v| v.is_finite());
            }
            Ok(Some(TrafficSample {
                successes,
                failures,
                p50_ms: latencies[0],
                p90_ms: latencies[1],
                p99_ms: latencies[2],
                window: query.window,
                as_of: query.at,
            }))
        })
    }

    fn scalar<'a>(
        &'a self,
        promql: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<Option<f64>, SourceError>> {
        Box::pin(async move {
            let data = self.instant(promql, at).await?;
            single(&data).map_err(|message| SourceError::Malformed {
                source_name: self.describe(),
                message,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Target;

    #[test]
    fn queries_select_the_deployment_over_the_window() {
        let q = SampleQuery {
            target: Target::deployment("prod", "foobar-v2"),
            window: Duration::from_secs(60),
            at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            counts_query(&q),
            r#"sum by (classification) (increase(weir_requests_total{namespace="prod",dst_deployment="foobar-v2"}[1m]))"#
        );
        assert_eq!(
            quantile_query(&q, 0.99),
            r#"histogram_quantile(0.99, sum by (le) (increase(weir_response_latency_ms_bucket{namespace="prod",dst_deployment="foobar-v2"}[1m])))"#
        );
    }

    #[test]
    fn custom_queries_get_namespace_service_and_window() {
        assert_eq!(
            substitute(
                "sum(rate(x{namespace=\"{{namespace}}\",backend=\"{{service}}\"}[{{window}}]))",
                "prod",
                "foobar-v2",
                Duration::from_millis(1500)
            ),
            "sum(rate(x{namespace=\"prod\",backend=\"foobar-v2\"}[1500ms]))"
        );
    }
}
