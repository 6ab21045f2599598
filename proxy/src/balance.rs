//! Endpoint load balancing: power-of-two-choices over peak-EWMA latency, or round-robin.
//!
//! The state is plain data; every method that needs the time takes `now`, so tests can
//! drive it without a clock. Each endpoint keeps its own [`PeakEwma`] (in
//! [`crate::state::EndpointState`]), so no lock is shared by all requests.

use rand::Rng;
use serde::{Deserialize, Serialize};
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
    /// A uniformly random endpoint.
    #[value(name = "random")]
    Random,
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

    /// Records that a request ended without a usable latency (its future was dropped).
    pub fn cancel(&mut self) {
        self.pending = self.pending.saturating_sub(1);
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

/// Chooses one of `n` endpoints, skipping those `usable` rejects; `None` when none is usable.
///
/// `cursor` is the round-robin position (the caller advances it); `load` is only asked
/// for p2c-ewma. When the two p2c candidates are unusable, the first usable endpoint from a
/// random start is taken, so an ejected endpoint never blocks the others.
pub fn choose<R: Rng + ?Sized>(
    strategy: Strategy,
    n: usize,
    cursor: usize,
    rng: &mut R,
    usable: impl Fn(usize) -> bool,
    mut load: impl FnMut(usize) -> f64,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let scan = |start: usize| (0..n).map(|k| (start + k) % n).find(|i| usable(*i));
    match strategy {
        Strategy::RoundRobin => scan(cursor % n),
        Strategy::Random => scan(rng.random_range(0..n)),
        Strategy::P2cEwma => {
            if n == 1 {
                return scan(0);
            }
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            match (usable(a), usable(b)) {
                (true, true) => Some(if load(b) < load(a) { b } else { a }),
                (true, false) => Some(a),
                (false, true) => Some(b),
                (false, false) => scan(rng.random_range(0..n)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

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
        let p2c =
            |rng: &mut StdRng, n| choose(Strategy::P2cEwma, n, 0, rng, |_| true, |i| loads[i]);
        for _ in 0..100 {
            assert_eq!(p2c(&mut rng, 2), Some(1));
        }
        assert_eq!(p2c(&mut rng, 0), None);
        assert_eq!(p2c(&mut rng, 1), Some(0));
    }

    /// Drives `choose` with per-endpoint EWMA state, as the data path does.
    fn simulate(strategy: Strategy, rtts: &[Duration], rounds: usize) -> Vec<u32> {
        let mut rng = StdRng::seed_from_u64(5);
        let mut now = Instant::now();
        let decay = Duration::from_secs(10);
        let mut ewma: Vec<PeakEwma> = rtts
            .iter()
            .map(|_| PeakEwma::new(Duration::from_millis(30), now))
            .collect();
        let mut hits = vec![0u32; rtts.len()];
        for round in 0..rounds {
            let i = choose(
                strategy,
                rtts.len(),
                round,
                &mut rng,
                |_| true,
                |i| ewma[i].clone().load(now, decay),
            )
            .expect("endpoints");
            hits[i] += 1;
            ewma[i].start();
            now += rtts[i];
            ewma[i].observe(rtts[i], now, decay);
        }
        hits
    }

    #[test]
    fn p2c_ewma_steers_away_from_a_slow_endpoint() {
        let fast = Duration::from_millis(1);
        let hits = simulate(
            Strategy::P2cEwma,
            &[Duration::from_millis(50), fast, fast],
            3000,
        );
        assert!(hits[0] < 300, "slow endpoint got {hits:?}");
    }

    #[test]
    fn round_robin_visits_each_endpoint_in_turn() {
        let mut rng = StdRng::seed_from_u64(1);
        let picks: Vec<_> = (0..6)
            .filter_map(|c| choose(Strategy::RoundRobin, 3, c, &mut rng, |_| true, |_| 0.0))
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(
            choose(Strategy::RoundRobin, 0, 0, &mut rng, |_| true, |_| 0.0),
            None
        );
    }

    #[test]
    fn random_spreads_evenly() {
        let hits = simulate(Strategy::Random, &[Duration::from_millis(1); 4], 8000);
        assert!(hits.iter().all(|h| (1700..2300).contains(h)), "{hits:?}");
    }

    #[test]
    fn unusable_endpoints_are_skipped_by_every_strategy() {
        let mut rng = StdRng::seed_from_u64(9);
        for strategy in [Strategy::P2cEwma, Strategy::RoundRobin, Strategy::Random] {
            for c in 0..200 {
                let i = choose(strategy, 5, c, &mut rng, |i| i == 3, |_| 1.0);
                assert_eq!(i, Some(3), "{strategy:?}");
            }
            assert_eq!(choose(strategy, 5, 0, &mut rng, |_| false, |_| 1.0), None);
        }
    }

    proptest::proptest! {
        /// Whatever is usable, the choice is usable, and there is one when any endpoint is.
        #[test]
        fn the_choice_is_always_usable(mask in proptest::collection::vec(proptest::bool::ANY, 0..8), seed: u64, cursor in 0usize..100) {
            let mut rng = StdRng::seed_from_u64(seed);
            for strategy in [Strategy::P2cEwma, Strategy::RoundRobin, Strategy::Random] {
                let got = choose(strategy, mask.len(), cursor, &mut rng, |i| mask[i], |i| i as f64);
                match got {
                    Some(i) => proptest::prop_assert!(mask[i]),
                    None => proptest::prop_assert!(mask.iter().all(|m| !m)),
                }
            }
        }
    }
}
