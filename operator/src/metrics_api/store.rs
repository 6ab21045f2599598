//! The scraped series: a bounded ring of points per series and gateway pod, and windowed
//! aggregates over them (pure: time is an argument).
//!
//! Only the two families TrafficMetrics needs are kept: `weir_requests_total` and
//! `weir_response_latency_ms_bucket`. A series that appears in a pod's scrape after an
//! earlier successful scrape of that pod without it gets a 0 at that earlier scrape: the
//! proxy creates a series on its first request, so it was 0 then (Prometheus would miss
//! those first requests). A pod that goes away keeps its points until they are older
//! than the retention, so windows that cover its life still count its traffic.

use super::exposition::Sample;
use super::promql::{Point, histogram_quantile, increase};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The request counter family.
pub const REQUESTS: &str = "weir_requests_total";
/// The latency histogram's bucket family.
pub const BUCKETS: &str = "weir_response_latency_ms_bucket";

/// A series' labels (without `le`).
pub type Labels = BTreeMap<String, String>;

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Points older than this are dropped; also the longest window served.
    pub retention: Duration,
    /// Most points per series.
    pub max_points: usize,
    /// Most series in all; new series beyond it are dropped and counted.
    pub max_series: usize,
}

/// A gateway pod that is scraped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetRef {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
}

#[derive(Debug, Clone, Default)]
struct TargetState {
    live: bool,
    ready: bool,
    last_success_ms: Option<i64>,
    last_failure: Option<(i64, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    Requests,
    Bucket(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    target: TargetRef,
    family: Family,
    labels: Arc<Labels>,
}

/// The windowed figures of one group of series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    /// Increase of successful requests.
    pub successes: f64,
    /// Increase of failed requests.
    pub failures: f64,
    /// (upper bound in ms, increase) of every bucket series.
    pub buckets: Vec<(f64, f64)>,
}

/// A live, ready gateway pod whose latest scrape failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// The pod.
    pub target: TargetRef,
    /// Why its scrape failed.
    pub error: String,
}

/// Every series of every gateway pod.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    targets: HashMap<TargetRef, TargetState>,
    series: HashMap<SeriesKey, VecDeque<Point>>,
    dropped_series: u64,
}

// === impl Aggregate ===

impl Aggregate {
    /// Successes plus failures.
    pub fn requests(&self) -> f64 {
        self.successes + self.failures
    }

    /// The `q` latency quantile in ms; None without observations.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        Some(histogram_quantile(q, &self.buckets)).filter(|v| v.is_finite())
    }
}

// === impl Store ===

impl Store {
    /// An empty store.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            targets: HashMap::new(),
            series: HashMap::new(),
            dropped_series: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Series dropped because the store was full.
    pub fn dropped_series(&self) -> u64 {
        self.dropped_series
    }

    /// Series held now.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Records which gateway pods exist now, and which of them are ready.
    pub fn set_live(&mut self, live: &[(TargetRef, bool)]) {
        for state in self.targets.values_mut() {
            state.live = false;
        }
        for (target, ready) in live {
            let state = self.targets.entry(target.clone()).or_default();
            state.live = true;
            state.ready = *ready;
        }
    }

    /// Adds one successful scrape of `target` taken at `at_ms`.
    pub fn ingest(&mut self, target: &TargetRef, at_ms: i64, samples: Vec<Sample>) {
        let previous = self.targets.get(target).and_then(|t| t.last_success_ms);
        for sample in samples {
            let family = match sample.name.as_str() {
                REQUESTS => Family::Requests,
                BUCKETS => {
                    let le = sample.labels.get("le").map(String::as_str);
                    match le.and_then(parse_bound) {
                        Some(le) => Family::Bucket(le.to_bits()),
                        None => continue,
                    }
                }
                _ => continue,
            };
            if !sample.value.is_finite() {
                continue;
            }
            let mut labels = sample.labels;
            labels.remove("le");
            let key = SeriesKey {
                target: target.clone(),
                family,
                labels: Arc::new(labels),
            };
            if !self.series.contains_key(&key) && self.series.len() >= self.limits.max_series {
                self.dropped_series += 1;
                continue;
            }
            let ring = self.series.entry(key).or_default();
            if let Some(p) = previous
                && ring.back().is_none_or(|(t, _)| *t < p)
                && p < at_ms
            {
                ring.push_back((p, 0.0));
            }
            if ring.back().is_some_and(|(t, _)| *t >= at_ms) {
                continue;
            }
            ring.push_back((at_ms, sample.value));
            while ring.len() > self.limits.max_points.max(2) {
                ring.pop_front();
            }
        }
        let state = self.targets.entry(target.clone()).or_default();
        state.last_success_ms = Some(at_ms);
        state.last_failure = None;
    }

    /// Records a failed scrape of `target`.
    pub fn scrape_failed(&mut self, target: &TargetRef, at_ms: i64, error: String) {
        let state = self.targets.entry(target.clone()).or_default();
        state.last_failure = Some((at_ms, error));
    }

    /// Live, ready gateway pods in `namespace` (all namespaces with None) whose latest
    /// scrape failed: figures that include their traffic would be incomplete.
    pub fn failing(&self, namespace: Option<&str>) -> Vec<Failing> {
        let mut out: Vec<Failing> = self
            .targets
            .iter()
            .filter(|(t, s)| s.live && s.ready && namespace.is_none_or(|ns| ns == t.namespace))
            .filter_map(|(t, s)| {
                let (at, error) = s.last_failure.as_ref()?;
                (s.last_success_ms.is_none_or(|ok| ok < *at)).then(|| Failing {
                    target: t.clone(),
                    error: error.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    /// Drops points older than the retention, empty series, and gone pods without points.
    pub fn prune(&mut self, now_ms: i64) {
        let cutoff = now_ms.saturating_sub(self.limits.retention.as_millis() as i64);
        self.series.retain(|_, ring| {
            while ring.front().is_some_and(|(t, _)| *t < cutoff) {
                ring.pop_front();
            }
            !ring.is_empty()
        });
        self.targets.retain(|_, s| {
            let last = s
                .last_success_ms
                .max(s.last_failure.as_ref().map(|(t, _)| *t));
            s.live || last.is_some_and(|t| t >= cutoff)
        });
    }

    /// The figures over `(end_ms - window, end_ms]` of every group: `group` names the
    /// groups a series' labels belong to (none to skip it). A group appears only if one
    /// of its request series has an increase in the window.
    pub fn aggregate<K: Ord>(
        &self,
        end_ms: i64,
        window: Duration,
        group: impl Fn(&Labels) -> Vec<K>,
    ) -> BTreeMap<K, Aggregate> {
        let start_ms = end_ms.saturating_sub(window.as_millis() as i64);
        let mut out: BTreeMap<K, (bool, Aggregate)> = BTreeMap::new();
        for (key, ring) in &self.series {
            let groups = group(&key.labels);
            if groups.is_empty() {
                continue;
            }
            let (a, b) = ring.as_slices();
            let points: Vec<Point> = a.iter().chain(b).copied().collect();
            let Some(inc) = increase(&points, start_ms, end_ms) else {
                continue;
            };
            for k in groups {
                let (seen, agg) = out.entry(k).or_default();
                match key.family {
                    Family::Requests => {
                        *seen = true;
                        if key.labels.get("classification").map(String::as_str) == Some("success") {
                            agg.successes += inc;
                        } else {
                            agg.failures += inc;
                        }
                    }
                    Family::Bucket(le) => agg.buckets.push((f64::from_bits(le), inc)),
                }
            }
        }
        out.into_iter()
            .filter_map(|(k, (seen, agg))| seen.then_some((k, agg)))
            .collect()
    }
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => text.parse().ok().filter(|v: &f64| !v.is_nan()),
    }
}

#[cfg(test)]
mod tests;
