//! The proxy's metrics, exposed with `prometheus-client` in the Prometheus text format.
//!
//! Per-request handles are resolved when a snapshot is built, never per request:
//! [`edges::EdgeSet`] for the request series and [`BackendCounters`] for the decisions
//! (denials, retries, budget, timeouts, faults) of one route backend. The data path
//! increments atomics and takes no lock shared by all requests.

pub mod edges;

pub use edges::{DstLabels, EdgeRegistry, EdgeSet, LATENCY_BUCKETS_US, SrcLabels};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// `kind` of `weir_proxy_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabels {
    /// The error's kind.
    pub kind: &'static str,
}

/// Names one backend of one route (root Service → backend Service).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, EncodeLabelSet)]
pub struct BackendLabels {
    /// The root Service's namespace.
    pub namespace: Arc<str>,
    /// The root Service.
    pub service: Arc<str>,
    /// The backend Service.
    pub backend: Arc<str>,
}

/// A backend and why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendReason {
    #[prometheus(flatten)]
    backend: BackendLabels,
    reason: &'static str,
}

/// A backend and the kind of a timeout or fault.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendKind {
    #[prometheus(flatten)]
    backend: BackendLabels,
    kind: &'static str,
}

/// Names one endpoint, for the circuit breaker's decisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `ip:port`.
    pub endpoint: Arc<str>,
    /// The Pod behind it (empty when unknown).
    pub dst_pod: Arc<str>,
}

/// The decision counters of one route backend, resolved when the snapshot is built.
#[derive(Debug, Clone)]
pub struct BackendCounters {
    /// Requests denied because the client is unknown.
    pub denied_unauthenticated: Counter,
    /// Requests denied because no TrafficTarget names source and destination.
    pub denied_no_target: Counter,
    /// Requests denied because no rule of the TrafficTargets matches.
    pub denied_no_rule: Counter,
    /// Retries sent.
    pub retries: Counter,
    /// Retries the budget refused.
    pub budget_exhausted: Counter,
    /// Requests answered 504 because `timeout` ran out.
    pub timeouts: Counter,
    /// Attempts cut off by `perTryTimeout`.
    pub per_try_timeouts: Counter,
    /// Requests delayed by fault injection.
    pub faults_delayed: Counter,
    /// Requests aborted by fault injection.
    pub faults_aborted: Counter,
}

/// The circuit breaker's counters of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointCounters {
    /// Times the endpoint was ejected.
    pub ejections: Counter,
    /// Times a probe readmitted it.
    pub readmissions: Counter,
}

/// All of the proxy's metrics; shared by the data path, the sources and the admin server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The per-edge request series.
    pub edges: Arc<EdgeRegistry>,
    errors: Family<KindLabels, Counter>,
    denied: Family<BackendReason, Counter>,
    retries: Family<BackendLabels, Counter>,
    budget_exhausted: Family<BackendLabels, Counter>,
    timeouts: Family<BackendKind, Counter>,
    faults: Family<BackendKind, Counter>,
    ejections: Family<EndpointLabels, Counter>,
    readmissions: Family<EndpointLabels, Counter>,
    reloads: Counter,
    reload_errors: Counter,
    rejections: Counter,
    rejected_now: Gauge,
    access_rules_broken: Gauge,
    generation: Gauge,
    connections_total: Counter,
    connections_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weir");
        let edges = Arc::new(EdgeRegistry::default());
        registry.register_collector(Box::new(edges.clone()));
        let m = Self {
            registry: Registry::default(),
            edges,
            errors: Family::default(),
            denied: Family::default(),
            retries: Family::default(),
            budget_exhausted: Family::default(),
            timeouts: Family::default(),
            faults: Family::default(),
            ejections: Family::default(),
            readmissions: Family::default(),
            reloads: Counter::default(),
            reload_errors: Counter::default(),
            rejections: Counter::default(),
            rejected_now: Gauge::default(),
            access_rules_broken: Gauge::default(),
            generation: Gauge::default(),
            connections_total: Counter::default(),
            connections_open: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "proxy_errors",
            "Requests the proxy answered itself, by kind.",
            m.errors.clone(),
        );
        r.register(
            "denied",
            "Requests denied by access control, by reason.",
            m.denied.clone(),
        );
        r.register("retries", "Retries sent.", m.retries.clone());
        r.register(
            "retry_budget_exhausted",
            "Retries not sent because the retry budget was spent.",
            m.budget_exhausted.clone(),
        );
        r.register(
            "timeouts",
            "Timeouts by kind: timeout (the request got a 504) or per_try_timeout (one attempt was cut off).",
            m.timeouts.clone(),
        );
        r.register(
            "faults_injected",
            "Faults injected by a TrafficPolicy, by kind.",
            m.faults.clone(),
        );
        r.register(
            "endpoint_ejections",
            "Times the circuit breaker ejected an endpoint.",
            m.ejections.clone(),
        );
        r.register(
            "endpoint_readmissions",
            "Times a probe readmitted an ejected endpoint.",
            m.readmissions.clone(),
        );
        r.register("config_reloads", "Snapshots published.", m.reloads.clone());
        r.register(
            "config_reload_errors",
            "Reloads that failed as a whole; the last snapshot stays.",
            m.reload_errors.clone(),
        );
        r.register(
            "config_rejections",
            "Objects rejected as invalid.",
            m.rejections.clone(),
        );
        r.register(
            "config_rejected_objects",
            "Objects rejected now.",
            m.rejected_now.clone(),
        );
        r.register(
            "access_rules_broken",
            "TrafficTarget rules that allow nothing because their route group is missing or rejected.",
            m.access_rules_broken.clone(),
        );
        r.register(
            "config_generation",
            "The generation of the current snapshot.",
            m.generation.clone(),
        );
        r.register(
            "connections",
            "Connections accepted.",
            m.connections_total.clone(),
        );
        r.register(
            "connections_open",
            "Connections open now.",
            m.connections_open.clone(),
        );
        Self { registry, ..m }
    }
}

// === impl Metrics ===

impl Metrics {
    /// Counts a request the proxy answered itself.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a published snapshot, its rejections and its broken access rules.
    pub fn reloaded(
        &self,
        generation: u64,
        newly_rejected: usize,
        rejected_now: usize,
        broken_rules: usize,
    ) {
        self.reloads.inc();
        self.generation.set(to_i64(generation));
        self.rejections.inc_by(newly_rejected as u64);
        self.rejected_now.set(to_i64(rejected_now as u64));
        self.access_rules_broken.set(to_i64(broken_rules as u64));
    }

    /// Counts a reload that failed as a whole (such as a YAML syntax error).
    pub fn reload_failed(&self) {
        self.reload_errors.inc();
    }

    /// Counts an accepted connection.
    pub fn connection_opened(&self) {
        self.connections_total.inc();
        self.connections_open.inc();
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// The decision counters of a route backend (created on first use).
    pub fn backend_counters(&self, labels: &BackendLabels) -> BackendCounters {
        let denied = |reason| {
            let key = BackendReason {
                backend: labels.clone(),
                reason,
            };
            self.denied.get_or_create(&key).clone()
        };
        let kind = |family: &Family<BackendKind, Counter>, kind| {
            let key = BackendKind {
                backend: labels.clone(),
                kind,
            };
            family.get_or_create(&key).clone()
        };
        BackendCounters {
            denied_unauthenticated: denied("unauthenticated"),
            denied_no_target: denied("no_traffic_target"),
            denied_no_rule: denied("no_matching_rule"),
            retries: self.retries.get_or_create(labels).clone(),
            budget_exhausted: self.budget_exhausted.get_or_create(labels).clone(),
            timeouts: kind(&self.timeouts, "timeout"),
            per_try_timeouts: kind(&self.timeouts, "per_try_timeout"),
            faults_delayed: kind(&self.faults, "delay"),
            faults_aborted: kind(&self.faults, "abort"),
        }
    }

    /// Forgets the counters of a route backend that is gone.
    pub fn forget_backend(&self, labels: &BackendLabels) {
        for reason in ["unauthenticated", "no_traffic_target", "no_matching_rule"] {
            self.denied.remove(&BackendReason {
                backend: labels.clone(),
                reason,
            });
        }
        for (family, kind) in [
            (&self.timeouts, "timeout"),
            (&self.timeouts, "per_try_timeout"),
            (&self.faults, "delay"),
            (&self.faults, "abort"),
        ] {
            family.remove(&BackendKind {
                backend: labels.clone(),
                kind,
            });
        }
        self.retries.remove(labels);
        self.budget_exhausted.remove(labels);
    }

    /// The circuit-breaker counters of an endpoint (created on first use).
    pub fn endpoint_counters(&self, labels: &EndpointLabels) -> EndpointCounters {
        EndpointCounters {
            ejections: self.ejections.get_or_create(labels).clone(),
            readmissions: self.readmissions.get_or_create(labels).clone(),
        }
    }

    /// Forgets the counters of an endpoint that is gone.
    pub fn forget_endpoint(&self, labels: &EndpointLabels) {
        self.ejections.remove(labels);
        self.readmissions.remove(labels);
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The requests recorded on live edges whose labels match `filter`, for tests and tools.
    pub fn requests_where(
        &self,
        filter: impl Fn(&DstLabels, &SrcLabels, u16, bool) -> bool,
    ) -> u64 {
        self.edges
            .live()
            .iter()
            .map(|set| set.requests_where(|src, status, ok| filter(set.labels(), src, status, ok)))
            .sum()
    }
}

/// The Content-Type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
