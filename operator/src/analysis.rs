//! Analysis is data first, verdict second.
//!
//! ```text
//!  MetricsSource (TrafficMetrics API | Prometheus | a test's fixed data)
//!        │ sample(SampleQuery) ─► TrafficSample: requests, successes, failures, p50/p90/p99
//!        │ scalar(PromQL)      ─► f64 (custom queries)
//!        ▼
//!  Analyst::check ── Evidence {canary, baseline, queries} ──► plan::judge (pure) ──► AnalysisResult
//! ```
//!
//! A source never decides: it returns figures, or an error, or nothing (an empty result).
//! Every threshold rule lives once, in [`crate::plan::judge`].

mod analyst;
mod fixed;
mod prometheus;
mod traffic_metrics;

pub use analyst::Analyst;
pub use fixed::{Answer, Figures, FixedSource};
pub use prometheus::PrometheusSource;
pub use traffic_metrics::TrafficMetricsSource;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use std::fmt;
use std::time::Duration;

/// What kind of resource a sample describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A Deployment: the traffic its pods received.
    Deployment,
    /// A Service: the traffic sent to it.
    Service,
}

/// The resource whose traffic is sampled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The namespace.
    pub namespace: String,
    /// The kind of resource.
    pub kind: TargetKind,
    /// Its name.
    pub name: String,
}

/// A request for figures: one target over one window ending at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleQuery {
    /// What to measure.
    pub target: Target,
    /// How far back to look.
    pub window: Duration,
    /// The end of the window.
    pub at: Timestamp,
}

/// The figures of one target over one window. Counts may be fractional: a windowed
/// increase is extrapolated to the window's edges, as PromQL's `increase` does.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSample {
    /// Responses that were not failures.
    pub successes: f64,
    /// Failed responses (5xx or a proxy error).
    pub failures: f64,
    /// Median latency in milliseconds; None when there is no histogram data.
    pub p50_ms: Option<f64>,
    /// 90th-percentile latency in milliseconds.
    pub p90_ms: Option<f64>,
    /// 99th-percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// The window the figures cover.
    pub window: Duration,
    /// When the figures were computed.
    pub as_of: Timestamp,
}

/// Why a source gave no figures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The source could not be reached or answered with an error.
    #[error("{source_name}: {message}")]
    Unavailable {
        /// Which source.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The source answered, but with something that is not the expected shape.
    #[error("{source_name}: unexpected answer: {message}")]
    Malformed {
        /// Which source.
        source_name: String,
        /// What was wrong with it.
        message: String,
    },
    /// The source did not answer in time.
    #[error("{source_name}: no answer within {}", weir_crds::duration::format_duration(*.after))]
    Timeout {
        /// Which source.
        source_name: String,
        /// How long was waited.
        after: Duration,
    },
    /// This source cannot run custom PromQL queries.
    #[error("{source_name} cannot evaluate PromQL; custom queries need source.prometheus")]
    Unsupported {
        /// Which source.
        source_name: String,
    },
}

/// Where figures come from. Implementations return data, never a verdict.
pub trait MetricsSource: Send + Sync + 'static {
    /// A short description for messages, such as `TrafficMetrics` or `Prometheus http://p:9090`.
    fn describe(&self) -> String;

    /// The figures of `query.target` over the window; `Ok(None)` when the source has no
    /// data for it at all (an empty result).
    fn sample<'a>(
        &'a self,
        query: &'a SampleQuery,
    ) -> BoxFuture<'a, Result<Option<TrafficSample>, SourceError>>;

    /// Evaluates a custom PromQL expression at `at`; `Ok(None)` for an empty result.
    fn scalar<'a>(
        &'a self,
        promql: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<Option<f64>, SourceError>> {
        let _ = (promql, at);
        Box::pin(async move {
            Err(SourceError::Unsupported {
                source_name: self.describe(),
            })
        })
    }
}

/// One custom query's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    /// The query's name.
    pub name: String,
    /// Its value, nothing (an empty result), or why it failed.
    pub value: Result<Option<f64>, SourceError>,
}

/// Everything one check gathered, for [`crate::plan::judge`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// When the check ran.
    pub at: Timestamp,
    /// The window every figure covers.
    pub window: Duration,
    /// When the current step began (`status.stepStartedAt`): within one window of it, the
    /// source may not have scraped the canary's first requests yet.
    pub step_started: Option<Timestamp>,
    /// Where the figures came from.
    pub source: String,
    /// The canary Deployment's figures.
    pub canary: Result<Option<TrafficSample>, SourceError>,
    /// The stable Deployment's figures over the same window, when a baseline is configured.
    pub baseline: Option<Result<Option<TrafficSample>, SourceError>>,
    /// The custom queries' values.
    pub queries: Vec<QueryOutcome>,
}

// === impl TrafficSample ===

impl TrafficSample {
    /// Successes plus failures.
    pub fn requests(&self) -> f64 {
        self.successes + self.failures
    }

    /// The percentage of requests that succeeded; None without requests.
    pub fn success_rate(&self) -> Option<f64> {
        let requests = self.requests();
        (requests > 0.0).then(|| self.successes / requests * 100.0)
    }
}

// === impl Target ===

impl Target {
    /// A Deployment in `namespace`.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            kind: TargetKind::Deployment,
            name: name.into(),
        }
    }

    /// The plural resource name in the TrafficMetrics API (`deployments`, `services`).
    pub fn resource(&self) -> &'static str {
        match self.kind {
            TargetKind::Deployment => "deployments",
            TargetKind::Service => "services",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.resource(), self.name)
    }
}
