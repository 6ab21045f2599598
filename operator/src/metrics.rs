//! The operator's own metrics, served on `/metrics` beside `/ready` and `/live`.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// Labels naming one Rollout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    /// The namespace.
    pub namespace: String,
    /// The Rollout's name.
    pub rollout: String,
}

/// Labels of a reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The error's kind (`Error::metric_label`).
    pub error: String,
}

/// Labels of one phase of one Rollout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The namespace.
    pub namespace: String,
    /// The Rollout's name.
    pub rollout: String,
    /// The phase.
    pub phase: String,
}

/// Labels of a gateway scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrapeLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of a TrafficMetrics API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The HTTP status code.
    pub code: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconcile failures by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration in seconds.
    pub duration: Histogram,
    /// Seconds a queued reconcile waited for a slot (`--max-concurrent-reconciles`).
    pub queue_wait: Histogram,
    /// 1 for each Rollout's current phase.
    pub phase: Family<PhaseLabels, Gauge>,
    /// The canary's weight in percent.
    pub canary_weight: Family<RolloutLabels, Gauge>,
    /// Analysis checks by verdict.
    pub checks: Family<PhaseLabels, Counter>,
    /// Gateway scrapes by result.
    pub scrapes: Family<ScrapeLabels, Counter>,
    /// Series the TrafficMetrics store holds.
    pub series: Gauge,
    /// Series the TrafficMetrics store dropped because it was full.
    pub series_dropped: Gauge,
    /// TrafficMetrics API requests by status code.
    pub api_requests: Family<ApiLabels, Counter>,
    /// Whether the controller is running (set once the watches are up).
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weir_operator");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        // Fine below 50 ms, where a reconcile from the caches lands, so p50/p99 can be read
        // against a 20 ms target (the operator benchmark does).
        let duration = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0, 30.0,
        ]);
        let queue_wait = Histogram::new([
            0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        let phase = Family::<PhaseLabels, Gauge>::default();
        let canary_weight = Family::<RolloutLabels, Gauge>::default();
        let checks = Family::<PhaseLabels, Counter>::default();
        let scrapes = Family::<ScrapeLabels, Counter>::default();
        let series = Gauge::default();
        let series_dropped = Gauge::default();
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "gateway_scrapes",
            "Gateway /metrics scrapes by result",
            scrapes.clone(),
        );
        registry.register(
            "traffic_metrics_series",
            "Series the TrafficMetrics store holds",
            series.clone(),
        );
        registry.register(
            "traffic_metrics_series_dropped",
            "Series the TrafficMetrics store dropped because it was full",
            series_dropped.clone(),
        );
        registry.register(
            "traffic_metrics_requests",
            "TrafficMetrics API requests by status code",
            api_requests.clone(),
        );
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconcile failures by kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "reconcile_queue_seconds",
            "Time a queued reconcile waited for a slot",
            queue_wait.clone(),
        );
        registry.register(
            "rollout_phase",
            "1 for each Rollout's current phase",
            phase.clone(),
        );
        registry.register(
            "rollout_canary_weight",
            "The canary's weight in percent",
            canary_weight.clone(),
        );
        registry.register(
            "analysis_checks",
            "Analysis checks by verdict (the phase label holds the verdict)",
            checks.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            queue_wait,
            phase,
            canary_weight,
            checks,
            scrapes,
            series,
            series_dropped,
            api_requests,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Records a Rollout's phase (clearing the others) and weight.
    pub fn record_rollout(&self, namespace: &str, rollout: &str, phase: &str, canary_weight: i32) {
        for p in ["Healthy", "Progressing", "Paused", "Degraded", "Aborted"] {
            let labels = PhaseLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                phase: p.into(),
            };
            self.phase.get_or_create(&labels).set(i64::from(p == phase));
        }
        let labels = RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        };
        self.canary_weight
            .get_or_create(&labels)
            .set(i64::from(canary_weight));
    }
}

impl Metrics {
    /// Removes every series of a deleted Rollout.
    pub fn forget_rollout(&self, namespace: &str, rollout: &str) {
        for p in ["Healthy", "Progressing", "Paused", "Degraded", "Aborted"] {
            self.phase.remove(&PhaseLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                phase: p.into(),
            });
        }
        for verdict in ["Pass", "Fail", "Inconclusive", "Error", "Missing"] {
            self.checks.remove(&PhaseLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                phase: verdict.into(),
            });
        }
        self.canary_weight.remove(&RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        });
    }
}

/// Binds `addr` for [`serve`]; a failure (the port is taken) is the caller's to report.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics`, `/ready` and `/live` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, metrics.encode()),
        "/live" => (StatusCode::OK, "ok\n".into()),
        "/ready" if metrics.ready.load(Ordering::Relaxed) => (StatusCode::OK, "ok\n".into()),
        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_gauge_marks_only_the_current_phase() {
        let m = Metrics::default();
        m.record_rollout("ns", "foobar", "Progressing", 25);
        m.record_rollout("ns", "foobar", "Healthy", 0);
        let text = m.encode();
        assert!(
            text.contains(
                r#"weir_operator_rollout_phase{namespace="ns",rollout="foobar",phase="Healthy"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"weir_operator_rollout_phase{namespace="ns",rollout="foobar",phase="Progressing"} 0"#), "{text}");
        assert!(
            text.contains(
                r#"weir_operator_rollout_canary_weight{namespace="ns",rollout="foobar"} 0"#
            ),
            "{text}"
        );
    }
}
