//! Per-edge request series: `weir_requests_total` and `weir_response_latency_ms`.
//!
//! An [`EdgeSet`] holds the series of one destination (root Service, backend, Pod) and is
//! resolved when a snapshot is built; a request records into the set its endpoint carries,
//! keyed by its source Pod and status. The only lock a request touches is the set's own
//! read lock (a write lock only for a new source/status pair). Sets live as long as the
//! snapshot or the index holds them: a Pod that is gone takes its series with it.

use parking_lot::{Mutex, RwLock};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The latency buckets' upper bounds, in microseconds: Linkerd's 1-2-3-4-5 series per decade
/// (1 ms … 50 s), extended down to 50 µs so that a sub-millisecond backend's quantiles are not
/// all read as "≤ 1 ms". Exposed in milliseconds (`le="0.05"` … `le="50000"`).
pub const LATENCY_BUCKETS_US: [u64; 31] = [
    50, 100, 200, 300, 400, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000,
    50_000, 100_000, 200_000, 300_000, 400_000, 500_000, 1_000_000, 2_000_000, 3_000_000,
    4_000_000, 5_000_000, 10_000_000, 20_000_000, 30_000_000, 40_000_000, 50_000_000,
];

/// The destination labels of an edge, fixed when the snapshot is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DstLabels {
    /// The root Service's namespace.
    pub namespace: Arc<str>,
    /// The root Service (empty for requests answered before routing).
    pub service: Arc<str>,
    /// The backend Service.
    pub backend: Arc<str>,
    /// The destination Deployment (empty when no endpoint was reached).
    pub dst_deployment: Arc<str>,
    /// The destination Pod (empty when no endpoint was reached).
    pub dst_pod: Arc<str>,
}

/// The source labels of an edge: the client Pod, or `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrcLabels {
    /// The client's namespace.
    pub namespace: Arc<str>,
    /// The client's ServiceAccount.
    pub service_account: Arc<str>,
    /// The client Pod's name.
    pub pod: Arc<str>,
}

/// The series of one destination, by source and status.
#[derive(Debug, Default)]
pub struct EdgeSet {
    labels: DstLabels,
    series: RwLock<HashMap<SeriesKey, Series, BuildHasherDefault<KeyHasher>>>,
}

/// A multiply-rotate hash (as rustc's FxHash) for the small integer keys of a series map,
/// where SipHash's defence against chosen keys buys nothing: the keys are addresses and
/// status codes, not client input.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    /// The address of the interned source labels.
    src: usize,
    status: u16,
    success: bool,
}

#[derive(Debug)]
struct Series {
    src: Arc<SrcLabels>,
    requests: AtomicU64,
    /// Per bucket (not cumulative); the last one is beyond the largest bound.
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_micros: AtomicU64,
}

/// Every live [`EdgeSet`], for the scrape.
#[derive(Debug, Default)]
pub struct EdgeRegistry {
    sets: Mutex<Vec<Weak<EdgeSet>>>,
}

// === impl SrcLabels ===

impl Default for SrcLabels {
    fn default() -> Self {
        Self::unknown()
    }
}

impl SrcLabels {
    /// The labels of a client that is not a known Pod.
    pub fn unknown() -> Self {
        let unknown: Arc<str> = Arc::from("unknown");
        Self {
            namespace: unknown.clone(),
            service_account: unknown.clone(),
            pod: unknown,
        }
    }
}

// === impl EdgeSet ===

impl EdgeSet {
    /// The set's destination labels.
    pub fn labels(&self) -> &DstLabels {
        &self.labels
    }

    /// Records one finished request (latency to response headers).
    pub fn record(&self, src: &Arc<SrcLabels>, status: u16, success: bool, latency: Duration) {
        let key = SeriesKey {
            src: Arc::as_ptr(src) as usize,
            status,
            success,
        };
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        {
            let series = self.series.read();
            if let Some(s) = series.get(&key) {
                s.observe(micros);
                return;
            }
        }
        let mut series = self.series.write();
        series
            .entry(key)
            .or_insert_with(|| Series::new(src.clone()))
            .observe(micros);
    }

    /// Forgets the series of sources that are no longer live (`live` holds their addresses).
    pub fn retain_sources(&self, live: &std::collections::HashSet<usize>) {
        self.series.write().retain(|k, _| live.contains(&k.src));
    }

    /// Requests recorded in this set whose series matches `filter` (source, status, success).
    pub fn requests_where(&self, filter: impl Fn(&SrcLabels, u16, bool) -> bool) -> u64 {
        self.series
            .read()
            .iter()
            .filter(|(k, s)| filter(&s.src, k.status, k.success))
            .map(|(_, s)| s.requests.load(Ordering::Relaxed))
            .sum()
    }
}

// === impl Series ===

impl Series {
    fn new(src: Arc<SrcLabels>) -> Self {
        Self {
            src,
            requests: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, micros: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        // A latency of exactly `b` µs belongs to bucket `le=b`.
        let i = LATENCY_BUCKETS_US.partition_point(|b| *b < micros);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }
}

// === impl EdgeRegistry ===

impl EdgeRegistry {
    /// A new set for these destination labels, registered for the scrape.
    pub fn create(&self, labels: DstLabels) -> Arc<EdgeSet> {
        let set = Arc::new(EdgeSet {
            labels,
            series: RwLock::default(),
        });
        let mut sets = self.sets.lock();
        sets.retain(|w| w.strong_count() > 0);
        sets.push(Arc::downgrade(&set));
        set
    }

    /// The live sets, sorted by labels.
    pub fn live(&self) -> Vec<Arc<EdgeSet>> {
        let mut live: Vec<Arc<EdgeSet>> = {
            let mut sets = self.sets.lock();
            sets.retain(|w| w.strong_count() > 0);
            sets.iter().filter_map(Weak::upgrade).collect()
        };
        live.sort_by(|a, b| a.labels.cmp(&b.labels));
        live
    }
}

/// One series as it is encoded: its labels and a snapshot of its values.
struct Sample {
    dst: DstLabels,
    src: Arc<SrcLabels>,
    status: u16,
    success: bool,
    requests: u64,
    buckets: Vec<(f64, u64)>,
    sum_ms: f64,
}

fn samples(sets: &[Arc<EdgeSet>]) -> Vec<Sample> {
    let mut out = Vec::new();
    for set in sets {
        let series = set.series.read();
        let mut rows: Vec<Sample> = series
            .iter()
            .map(|(k, s)| {
                let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_US
                    .iter()
                    .zip(&s.buckets)
                    .map(|(b, n)| (*b as f64 / 1000.0, n.load(Ordering::Relaxed)))
                    .collect();
                buckets.push((
                    f64::INFINITY,
                    s.buckets[LATENCY_BUCKETS_US.len()].load(Ordering::Relaxed),
                ));
                Sample {
                    dst: set.labels.clone(),
                    src: s.src.clone(),
                    status: k.status,
                    success: k.success,
                    requests: s.requests.load(Ordering::Relaxed),
                    buckets,
                    sum_ms: s.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0,
                }
            })
            .collect();
        rows.sort_by(|a, b| (&a.src, a.status, a.success).cmp(&(&b.src, b.status, b.success)));
        out.extend(rows);
    }
    out
}

impl EncodeLabelSet for Sample {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let text: [(&str, &str); 8] = [
            ("namespace", &self.dst.namespace),
            ("service", &self.dst.service),
            ("backend", &self.dst.backend),
            ("dst_deployment", &self.dst.dst_deployment),
            ("dst_pod", &self.dst.dst_pod),
            ("src_namespace", &self.src.namespace),
            ("src_service_account", &self.src.service_account),
            ("src_pod", &self.src.pod),
        ];
        for label in text {
            label.encode(encoder.encode_label())?;
        }
        ("status_code", self.status).encode(encoder.encode_label())?;
        let class = if self.success { "success" } else { "failure" };
        ("classification", class).encode(encoder.encode_label())
    }
}

// === impl EdgeRegistry (scrape) ===

impl Collector for EdgeRegistry {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = samples(&self.live());
        let mut requests = encoder.encode_descriptor(
            "requests",
            "Requests through the proxy, per edge.",
            None,
            MetricType::Counter,
        )?;
        for s in &samples {
            ConstCounter::new(s.requests).encode(requests.encode_family(s)?)?;
        }
        let mut latency = encoder.encode_descriptor(
            "response_latency_ms",
            "Time to response headers in milliseconds, per edge.",
            None,
            MetricType::Histogram,
        )?;
        for s in &samples {
            latency
                .encode_family(s)?
                .encode_histogram::<NoLabelSet>(s.sum_ms, s.requests, &s.buckets, None)?;
        }
        Ok(())
    }
}
