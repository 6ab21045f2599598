//! Endpoint load balancing: power-of-two-choices over peak-EWMA latency, or round-robin.
//!
//! The state is plain data; every method that needs the time takes `now`, so tests can
//! drive it without a clock. [`Balancer`] wraps the state behind a lock for the data path.

use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// How a backend's endpoints are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum Strategy {
    /// Power of two random choices, the one with the lower peak-EWMA load wins (default).
    #[default]
    #[value(name = "p2c-ewma")]
    P2cEwma,
    /// Each endpoint in turn.
    #[value(name = "round-robin")]
    RoundRobin,
}

/// Peak-EWMA latency of one endpoint: jumps up to a slower sample, decays towards faster ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakEwma {
    /// The current estimate in nanoseconds.
    cost_ns: f64,
    /// When the estimate was last updated.
    stamp: Instant,
    /// Requests sent and not yet answered.
    pending: u32,
}

// === impl PeakEwma ===

impl PeakEwma {
    /// A fresh estimate, starting at `initial`.
    pub fn new(initial: Duration, now: Instant) -> Self {
        Self {
            cost_ns: initial.as_nanos() as f64,
            stamp: now,
            pending: 0,
        }
    }

    /// Decays the estimate towards zero for the time since the last update.
    fn decay(&mut self, now: Instant, decay: Duration) {
        let elapsed = now.saturating_duration_since(self.stamp).as_nanos() as f64;
        let decay_ns = (decay.as_nanos() as f64).max(1.0);
        self.cost_ns *= (-elapsed / decay_ns).exp();
        self.stamp = self.stamp.max(now);
    }

    /// The load: the decayed estimate times (pending + 1).
    pub fn load(&mut self, now: Instant, decay: Duration) -> f64 {
        self.decay(now, decay);
        self.cost_ns * f64::from(self.pending.saturating_add(1))
    }

    /// Records that a request was sent.
    pub fn start(&mut self) {
        self.pending = self.pending.saturating_add(1);
    }

    /// Records a response after `rtt`; a slower sample replaces the estimate outright.
    pub fn observe(&mut self, rtt: Duration, now: Instant, decay: Duration) {
        self.pending = self.pending.saturating_sub(1);
        let sample = rtt.as_nanos() as f64;
        if sample > self.cost_ns {
            self.cost_ns = sample;
            self.stamp = self.stamp.max(now);
        } else {
            let elapsed = now.saturating_duration_since(self.stamp).as_nanos() as f64;
            let w = (-elapsed / (decay.as_nanos() as f64).max(1.0)).exp();
            self.cost_ns = self.cost_ns * w + sample * (1.0 - w);
            self.stamp = self.stamp.max(now);
        }
    }

    /// Requests in flight.
    pub fn pending(&self) -> u32 {
        self.pending
    }
}

/// Power of two choices: two distinct random indices, the lower `load` wins.
pub fn p2c<R: Rng + ?Sized>(
    n: usize,
    rng: &mut R,
    mut load: impl FnMut(usize) -> f64,
) -> Option<usize> {
    match n {
        0 => None,
        1 => Some(0),
        _ => {
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            Some(if load(b) < load(a) { b } else { a })
        }
    }
}

/// The shared balancer state of a proxy: EWMA per endpoint and a round-robin cursor per backend.
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    decay: Duration,
    initial: Duration,
    ewma: Mutex<HashMap<SocketAddr, PeakEwma>>,
    cursors: Mutex<HashMap<String, usize>>,
}

// === impl Balancer ===

impl Balancer {
    /// The cap on remembered endpoints; beyond it, idle entries are forgotten.
    const MAX_TRACKED: usize = 4096;

    /// A balancer with Linkerd's defaults: 10 s decay, 30 ms initial estimate.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            decay: Duration::from_secs(10),
            initial: Duration::from_millis(30),
            ewma: Mutex::new(HashMap::new()),
            cursors: Mutex::new(HashMap::new()),
        }
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Chooses one of `addrs` (the backend's ready endpoints) and marks it busy.
    pub fn choose<R: Rng + ?Sized>(
        &self,
        backend: &str,
        addrs: &[SocketAddr],
        now: Instant,
        rng: &mut R,
    ) -> Option<usize> {
        let chosen = match self.strategy {
            Strategy::RoundRobin => {
                if addrs.is_empty() {
                    return None;
                }
                let mut cursors = self.cursors.lock();
                let cursor = match cursors.get_mut(backend) {
                    Some(c) => c,
                    None => cursors.entry(backend.to_string()).or_insert(0),
                };
                let i = *cursor % addrs.len();
                *cursor = cursor.wrapping_add(1);
                i
            }
            Strategy::P2cEwma => {
                let mut ewma = self.ewma.lock();
                let (decay, initial) = (self.decay, self.initial);
                let i = p2c(addrs.len(), rng, |i| {
                    ewma.entry(addrs[i])
                        .or_insert_with(|| PeakEwma::new(initial, now))
                        .load(now, decay)
                })?;
                if ewma.len() > Self::MAX_TRACKED {
                    ewma.retain(|_, e| e.pending() > 0);
                }
                ewma.entry(addrs[i])
                    .or_insert_with(|| PeakEwma::new(initial, now))
                    .start();
                i
            }
        };
        Some(chosen)
    }

    /// Records the end of a request to `addr` that took `rtt`.
    pub fn observe(&self, addr: SocketAddr, rtt: Duration, now: Instant) {
        if self.strategy == Strategy::P2cEwma
            && let Some(e) = self.ewma.lock().get_mut(&addr)
        {
            e.observe(rtt, now, self.decay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    #[test]
    fn peak_ewma_jumps_to_slow_samples_and_decays_towards_fast_ones() {
        let t0 = Instant::now();
        let decay = Duration::from_secs(10);
        let mut e = PeakEwma::new(Duration::from_millis(10), t0);
        e.start();
        e.observe(Duration::from_millis(100), t0, decay);
        assert_eq!(e.load(t0, decay), 100e6);
        e.start();
        e.observe(
            Duration::from_millis(1),
            t0 + Duration::from_secs(10),
            decay,
        );
        let load = e.load(t0 + Duration::from_secs(10), decay);
        // exp(-1) of the old estimate blended with the new sample.
        assert!(load < 100e6 * 0.4 && load > 1e6, "{load}");
    }

    #[test]
    fn pending_requests_raise_the_load() {
        let t0 = Instant::now();
        let decay = Duration::from_secs(10);
        let mut e = PeakEwma::new(Duration::from_millis(10), t0);
        let idle = e.load(t0, decay);
        e.start();
        e.start();
        assert_eq!(e.load(t0, decay), 3.0 * idle);
    }

    #[test]
    fn p2c_prefers_the_less_loaded_endpoint() {
        let mut rng = StdRng::seed_from_u64(3);
        let loads = [5.0, 1.0];
        for _ in 0..100 {
            assert_eq!(p2c(2, &mut rng, |i| loads[i]), Some(1));
        }
        assert_eq!(p2c(0, &mut rng, |_| 0.0), None);
        assert_eq!(p2c(1, &mut rng, |_| 0.0), Some(0));
    }

    #[test]
    fn p2c_ewma_steers_away_from_a_slow_endpoint() {
        let b = Balancer::new(Strategy::P2cEwma);
        let a = addrs(3);
        let mut rng = StdRng::seed_from_u64(5);
        let mut now = Instant::now();
        let mut hits = [0u32; 3];
        for _ in 0..3000 {
            let i = b.choose("svc", &a, now, &mut rng).expect("endpoints");
            hits[i] += 1;
            let rtt = if i == 0 {
                Duration::from_millis(50)
            } else {
                Duration::from_millis(1)
            };
            now += rtt;
            b.observe(a[i], rtt, now);
        }
        assert!(hits[0] < 300, "slow endpoint got {hits:?}");
    }

    #[test]
    fn round_robin_visits_each_endpoint_in_turn() {
        let b = Balancer::new(Strategy::RoundRobin);
        let a = addrs(3);
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let picks: Vec<_> = (0..6)
            .filter_map(|_| b.choose("svc", &a, now, &mut rng))
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(b.choose("svc", &[], now, &mut rng), None);
    }
}
