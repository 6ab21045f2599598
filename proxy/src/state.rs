//! Runtime state that outlives snapshots: each endpoint's balancer and breaker state, the
//! metric handles and the retry budgets. The index's [`Registry`] hands them out while a
//! snapshot is compiled, keyed so that they survive rebuilds, and forgets what is gone (so
//! the series of a Pod that no longer exists disappear from `/metrics`).

use crate::balance::PeakEwma;
use crate::breaker::{Admission, Breaker, BreakerConfig, BreakerEvent};
use crate::metrics::{
    BackendCounters, BackendLabels, DstLabels, EdgeSet, EndpointCounters, EndpointLabels, Metrics,
    SrcLabels,
};
use crate::policy::BudgetSettings;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;

/// How fast peak-EWMA forgets (Linkerd's default).
pub const EWMA_DECAY: Duration = Duration::from_secs(10);
/// The latency estimate of an endpoint that has not answered yet.
pub const EWMA_INITIAL: Duration = Duration::from_millis(30);

/// The live state of one endpoint address, shared by every route that reaches it.
#[derive(Debug)]
pub struct EndpointState {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `ip:port`, ready to put in a URI.
    pub authority: http::uri::Authority,
    /// Idle keep-alive connections to it.
    pub pool: crate::stack::Pool,
    ewma: Mutex<PeakEwma>,
    breaker: Mutex<Breaker>,
    counters: EndpointCounters,
}

// === impl EndpointState ===

impl EndpointState {
    fn new(addr: SocketAddr, counters: EndpointCounters) -> Self {
        let authority = http::uri::Authority::try_from(addr.to_string().as_str())
            .unwrap_or_else(|_| http::uri::Authority::from_static("invalid"));
        Self {
            addr,
            authority,
            pool: crate::stack::Pool::default(),
            ewma: Mutex::new(PeakEwma::new(EWMA_INITIAL, Instant::now())),
            breaker: Mutex::new(Breaker::default()),
            counters,
        }
    }

    /// The peak-EWMA load (estimate × (pending + 1)).
    pub fn load(&self, now: Instant) -> f64 {
        self.ewma.lock().load(now, EWMA_DECAY)
    }

    /// Marks a request as sent.
    pub fn start(&self) {
        self.ewma.lock().start();
    }

    /// Records a response after `rtt`.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        self.ewma.lock().observe(rtt, now, EWMA_DECAY);
    }

    /// Forgets a request whose future was dropped before it answered.
    pub fn cancel(&self) {
        self.ewma.lock().cancel();
    }

    /// Requests sent and not answered yet.
    pub fn pending(&self) -> u32 {
        self.ewma.lock().pending()
    }

    /// Whether the breaker would admit a request now.
    pub fn usable(&self, now: Instant, cfg: &BreakerConfig) -> bool {
        self.breaker.lock().usable(now, cfg)
    }

    /// Whether the breaker has ejected this endpoint.
    pub fn is_ejected(&self) -> bool {
        self.breaker.lock().is_ejected()
    }

    /// Admits a request (claiming the probe when one is due).
    pub fn admit(&self, now: Instant, cfg: &BreakerConfig) -> Admission {
        self.breaker.lock().admit(now, cfg)
    }

    /// Records a result with the breaker; counts and logs ejections and readmissions.
    pub fn record(
        &self,
        success: bool,
        probe: bool,
        now: Instant,
        cfg: &BreakerConfig,
        may_eject: impl FnOnce() -> bool,
    ) {
        let event = self
            .breaker
            .lock()
            .record(success, probe, now, cfg, may_eject);
        match event {
            Some(BreakerEvent::Ejected(time)) => {
                self.counters.ejections.inc();
                tracing::warn!(endpoint = %self.addr, ejected_for = ?time, "circuit breaker: endpoint ejected");
            }
            Some(BreakerEvent::Readmitted) => {
                self.counters.readmissions.inc();
                tracing::info!(endpoint = %self.addr, "circuit breaker: probe succeeded, endpoint readmitted");
            }
            None => {}
        }
    }
}

/// Hands out runtime state while snapshots are compiled, and forgets what is gone.
#[derive(Debug)]
pub struct Registry {
    metrics: Arc<Metrics>,
    endpoints: HashMap<SocketAddr, (Arc<EndpointState>, EndpointLabels)>,
    edges: HashMap<DstLabels, Arc<EdgeSet>>,
    sources: HashMap<(String, String, String), Arc<SrcLabels>>,
    unknown_source: Arc<SrcLabels>,
    unrouted: Arc<EdgeSet>,
    backends: HashMap<BackendLabels, BackendCounters>,
    budgets: HashMap<(String, BudgetKey), Arc<TpsBudget>>,
}

/// A budget's settings, comparable.
type BudgetKey = (u32, u32, Duration);

/// One compilation's view of the [`Registry`]: what it hands out is kept, the rest is
/// forgotten by [`Binder::finish`].
#[derive(Debug)]
pub struct Binder<'r> {
    registry: &'r mut Registry,
    endpoints: HashMap<SocketAddr, (Arc<EndpointState>, EndpointLabels)>,
    edges: HashMap<DstLabels, Arc<EdgeSet>>,
    sources: HashMap<(String, String, String), Arc<SrcLabels>>,
    backends: HashMap<BackendLabels, BackendCounters>,
    budgets: HashMap<(String, BudgetKey), Arc<TpsBudget>>,
}

// === impl Registry ===

impl Registry {
    /// A registry recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let unrouted = metrics.edges.create(DstLabels::default());
        Self {
            metrics,
            endpoints: HashMap::new(),
            edges: HashMap::new(),
            sources: HashMap::new(),
            unknown_source: Arc::new(SrcLabels::unknown()),
            unrouted,
            backends: HashMap::new(),
            budgets: HashMap::new(),
        }
    }

    /// The metrics this registry records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts handing out state for one compilation.
    pub fn bind(&mut self) -> Binder<'_> {
        Binder {
            registry: self,
            endpoints: HashMap::new(),
            edges: HashMap::new(),
            sources: HashMap::new(),
            backends: HashMap::new(),
            budgets: HashMap::new(),
        }
    }
}

// === impl Binder ===

impl Binder<'_> {
    /// The state of an endpoint address (the Pod, if known, labels its breaker counters).
    pub fn endpoint(&mut self, addr: SocketAddr, pod: &str) -> Arc<EndpointState> {
        if let Some((state, _)) = self.endpoints.get(&addr) {
            return state.clone();
        }
        let entry = self.registry.endpoints.remove(&addr).unwrap_or_else(|| {
            let labels = EndpointLabels {
                endpoint: Arc::from(addr.to_string()),
                dst_pod: Arc::from(pod),
            };
            let counters = self.registry.metrics.endpoint_counters(&labels);
            (Arc::new(EndpointState::new(addr, counters)), labels)
        });
        let state = entry.0.clone();
        self.endpoints.insert(addr, entry);
        state
    }

    /// The edge set of a destination.
    pub fn edge(&mut self, labels: DstLabels) -> Arc<EdgeSet> {
        if let Some(set) = self.edges.get(&labels) {
            return set.clone();
        }
        let set = match self.registry.edges.remove(&labels) {
            Some(set) => set,
            None => self.registry.metrics.edges.create(labels.clone()),
        };
        self.edges.insert(labels, set.clone());
        set
    }

    /// The source labels of a client Pod.
    pub fn source(&mut self, namespace: &str, pod: &str, service_account: &str) -> Arc<SrcLabels> {
        let key = (
            namespace.to_string(),
            pod.to_string(),
            service_account.to_string(),
        );
        if let Some(s) = self.sources.get(&key) {
            return s.clone();
        }
        let src = self.registry.sources.remove(&key).unwrap_or_else(|| {
            Arc::new(SrcLabels {
                namespace: Arc::from(namespace),
                service_account: Arc::from(service_account),
                pod: Arc::from(pod),
            })
        });
        self.sources.insert(key, src.clone());
        src
    }

    /// The labels of a client that is not a known Pod.
    pub fn unknown_source(&self) -> Arc<SrcLabels> {
        self.registry.unknown_source.clone()
    }

    /// The edge set of requests answered before routing.
    pub fn unrouted(&self) -> Arc<EdgeSet> {
        self.registry.unrouted.clone()
    }

    /// The decision counters of a route backend.
    pub fn backend(&mut self, labels: BackendLabels) -> BackendCounters {
        if let Some(c) = self.backends.get(&labels) {
            return c.clone();
        }
        let counters = match self.registry.backends.remove(&labels) {
            Some(c) => c,
            None => self.registry.metrics.backend_counters(&labels),
        };
        self.backends.insert(labels, counters.clone());
        counters
    }

    /// The retry budget of a policy (shared by every backend the policy applies to).
    pub fn budget(&mut self, policy: &str, settings: &BudgetSettings) -> Arc<TpsBudget> {
        let key = (
            policy.to_string(),
            (
                settings.ratio.to_bits(),
                settings.min_per_second,
                settings.ttl,
            ),
        );
        if let Some(b) = self.budgets.get(&key) {
            return b.clone();
        }
        let budget = self.registry.budgets.remove(&key).unwrap_or_else(|| {
            // TpsBudget charges `(1 / ratio) as isize` per retry; f32 0.2 is a hair above 0.2,
            // which would truncate 5 to 4 and allow 25%. A hair below keeps the ratio exact.
            let ratio = if settings.ratio > 0.0 {
                (f64::from(settings.ratio) * (1.0 - 1e-6)) as f32
            } else {
                0.0
            };
            // The settings were validated: ttl is 1–60 s and the ratio 0–1, as TpsBudget requires.
            Arc::new(TpsBudget::new(settings.ttl, settings.min_per_second, ratio))
        });
        self.budgets.insert(key, budget.clone());
        budget
    }

    /// Ends the compilation: keeps what was handed out, and the edge sets of Pods that still
    /// exist (`live_pods`: namespace and name); forgets everything else.
    pub fn finish(self, live_pods: &HashSet<(String, String)>) {
        let Binder {
            registry,
            endpoints,
            mut edges,
            sources,
            backends,
            budgets,
        } = self;
        for (_, labels) in registry.endpoints.values() {
            registry.metrics.forget_endpoint(labels);
        }
        for labels in registry.backends.keys() {
            registry.metrics.forget_backend(labels);
        }
        for (labels, set) in registry.edges.drain() {
            let pod = (labels.namespace.to_string(), labels.dst_pod.to_string());
            if !labels.dst_pod.is_empty() && live_pods.contains(&pod) {
                edges.insert(labels, set);
            }
        }
        let sources_gone = !registry.sources.is_empty();
        registry.endpoints = endpoints;
        registry.edges = edges;
        registry.sources = sources;
        registry.backends = backends;
        registry.budgets = budgets;
        if sources_gone {
            let mut live: HashSet<usize> = registry
                .sources
                .values()
                .map(|s| Arc::as_ptr(s) as usize)
                .collect();
            live.insert(Arc::as_ptr(&registry.unknown_source) as usize);
            for set in registry.edges.values().chain([&registry.unrouted]) {
                set.retain_sources(&live);
            }
        }
    }
}
