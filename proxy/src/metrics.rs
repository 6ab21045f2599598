//! Per-edge request metrics and proxy counters, rendered as Prometheus text.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Linkerd-like latency buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 25] = [
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000,
    10000, 20000, 30000, 40000, 50000,
];

/// The labels of one edge: who called what, and how it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    /// The root Service's namespace.
    pub namespace: String,
    /// The root Service.
    pub service: String,
    /// The backend Service the request went to.
    pub backend: String,
    /// The destination Deployment.
    pub dst_deployment: String,
    /// The destination Pod.
    pub dst_pod: String,
    /// The client's namespace (`unknown` when not found).
    pub src_namespace: String,
    /// The client's ServiceAccount (`unknown` when not found).
    pub src_service_account: String,
    /// The response status.
    pub status_code: u16,
    /// Whether the request counts as a success (not 5xx, not a proxy error).
    pub success: bool,
}

#[derive(Debug, Clone, Default)]
struct EdgeStats {
    requests: u64,
    buckets: [u64; LATENCY_BUCKETS_MS.len()],
    sum_ms: f64,
}

/// All of the proxy's metrics; shared by the data path, the sources and the admin server.
#[derive(Debug, Default)]
pub struct Metrics {
    edges: Mutex<HashMap<EdgeKey, EdgeStats>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    reloads: AtomicU64,
    reload_errors: AtomicU64,
    rejections: AtomicU64,
    rejected_now: AtomicU64,
    generation: AtomicU64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
}

// === impl Metrics ===

impl Metrics {
    /// Records one finished request (latency to response headers).
    pub fn record(&self, key: EdgeKey, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        let mut edges = self.edges.lock();
        let stats = match edges.get_mut(&key) {
            Some(s) => s,
            None => edges.entry(key).or_default(),
        };
        stats.requests += 1;
        stats.sum_ms += ms;
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b as f64) {
            stats.buckets[i] += 1;
        }
    }

    /// Counts a proxy error by kind.
    pub fn error(&self, kind: &'static str) {
        *self.errors.lock().entry(kind).or_default() += 1;
    }

    /// Counts a published snapshot and its rejections.
    pub fn reloaded(&self, generation: u64, newly_rejected: usize, rejected_now: usize) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Relaxed);
        self.rejections
            .fetch_add(newly_rejected as u64, Ordering::Relaxed);
        self.rejected_now
            .store(rejected_now as u64, Ordering::Relaxed);
    }

    /// Counts a reload that failed as a whole (such as a YAML syntax error).
    pub fn reload_failed(&self) {
        self.reload_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an accepted connection.
    pub fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The number of requests recorded for edges that match `filter`.
    pub fn requests_where(&self, filter: impl Fn(&EdgeKey) -> bool) -> u64 {
        self.edges
            .lock()
            .iter()
            .filter(|(k, _)| filter(k))
            .map(|(_, s)| s.requests)
            .sum()
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut edges: Vec<(EdgeKey, EdgeStats)> = self
            .edges
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        edges.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(256 + edges.len() * 2048);
        out.push_str("# HELP weir_requests_total Requests through the proxy, per edge.\n");
        out.push_str("# TYPE weir_requests_total counter\n");
        for (k, s) in &edges {
            let _ = writeln!(out, "weir_requests_total{{{}}} {}", labels(k), s.requests);
        }
        out.push_str("# HELP weir_response_latency_ms Time to response headers, per edge.\n");
        out.push_str("# TYPE weir_response_latency_ms histogram\n");
        for (k, s) in &edges {
            let l = labels(k);
            let mut cumulative = 0;
            for (b, n) in LATENCY_BUCKETS_MS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "weir_response_latency_ms_bucket{{{l},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "weir_response_latency_ms_bucket{{{l},le=\"+Inf\"}} {}",
                s.requests
            );
            let _ = writeln!(out, "weir_response_latency_ms_sum{{{l}}} {}", s.sum_ms);
            let _ = writeln!(out, "weir_response_latency_ms_count{{{l}}} {}", s.requests);
        }
        out.push_str(
            "# HELP weir_proxy_errors_total Requests the proxy answered itself, by kind.\n",
        );
        out.push_str("# TYPE weir_proxy_errors_total counter\n");
        for (kind, n) in self.errors.lock().iter() {
            let _ = writeln!(out, "weir_proxy_errors_total{{kind=\"{kind}\"}} {n}");
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let scalars = [
            (
                "weir_config_reloads_total",
                "counter",
                "Snapshots published.",
                load(&self.reloads),
            ),
            (
                "weir_config_reload_errors_total",
                "counter",
                "Reloads that failed as a whole; the last snapshot stays.",
                load(&self.reload_errors),
            ),
            (
                "weir_config_rejections_total",
                "counter",
                "Objects rejected as invalid.",
                load(&self.rejections),
            ),
            (
                "weir_config_rejected_objects",
                "gauge",
                "Objects rejected now.",
                load(&self.rejected_now),
            ),
            (
                "weir_config_generation",
                "gauge",
                "The generation of the current snapshot.",
                load(&self.generation),
            ),
            (
                "weir_connections_total",
                "counter",
                "Connections accepted.",
                load(&self.connections_total),
            ),
        ];
        for (name, kind, help, value) in scalars {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let open = self.connections_open.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP weir_connections_open Connections open now.\n# TYPE weir_connections_open gauge\nweir_connections_open {open}"
        );
        out
    }
}

fn labels(k: &EdgeKey) -> String {
    let mut out = String::with_capacity(256);
    let pairs = [
        ("namespace", k.namespace.as_str()),
        ("service", &k.service),
        ("backend", &k.backend),
        ("dst_deployment", &k.dst_deployment),
        ("dst_pod", &k.dst_pod),
        ("src_namespace", &k.src_namespace),
        ("src_service_account", &k.src_service_account),
    ];
    for (name, value) in pairs {
        let _ = write!(out, "{name}=\"{}\",", escape(value));
    }
    let class = if k.success { "success" } else { "failure" };
    let _ = write!(
        out,
        "status_code=\"{}\",classification=\"{class}\"",
        k.status_code
    );
    out
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_renders_with_every_label_and_cumulative_buckets() {
        let m = Metrics::default();
        let key = EdgeKey {
            namespace: "prod".into(),
            service: "foobar".into(),
            backend: "foobar-v2".into(),
            dst_deployment: "foobar-v2".into(),
            dst_pod: "foobar-v2-x".into(),
            src_namespace: "unknown".into(),
            src_service_account: "unknown".into(),
            status_code: 200,
            success: true,
        };
        m.record(key.clone(), Duration::from_micros(1500));
        m.record(key, Duration::from_millis(7));
        let text = m.render();
        let l = "namespace=\"prod\",service=\"foobar\",backend=\"foobar-v2\",dst_deployment=\"foobar-v2\",dst_pod=\"foobar-v2-x\",src_namespace=\"unknown\",src_service_account=\"unknown\",status_code=\"200\",classification=\"success\"";
        assert!(
            text.contains(&format!("weir_requests_total{{{l}}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "weir_response_latency_ms_bucket{{{l},le=\"1\"}} 0"
        )));
        assert!(text.contains(&format!(
            "weir_response_latency_ms_bucket{{{l},le=\"2\"}} 1"
        )));
        assert!(text.contains(&format!(
            "weir_response_latency_ms_bucket{{{l},le=\"10\"}} 2"
        )));
        assert!(text.contains(&format!("weir_response_latency_ms_count{{{l}}} 2")));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
