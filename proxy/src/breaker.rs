//! The circuit breaker of one endpoint, as a pure state machine (`now` is an argument).
//!
//! ```text
//!  Closed ──N consecutive failures (and the ejection floor allows it)──► Ejected{until}
//!    ▲                                                                      │ time passes
//!    └──────── the probe succeeds ◄──── Probing (one request) ◄─────────────┘
//!                                          │ the probe fails: ejected again, for twice as long
//! ```
//!
//! Ejections last `base × 2^k` (capped at `max`), where `k` counts the ejections since the
//! endpoint last stayed healthy for `max`.

use std::time::Duration;
use tokio::time::Instant;

/// The breaker's settings (from a TrafficPolicy's `circuitBreaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that eject an endpoint.
    pub consecutive_failures: u32,
    /// The first ejection's length.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// The most endpoints of a backend, in percent, that may be ejected at once.
    pub max_ejection_percent: u32,
}

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Taking traffic.
    Closed,
    /// Ejected until this time.
    Ejected {
        /// When a probe may be sent.
        until: Instant,
    },
    /// One probe request is in flight.
    Probing {
        /// When the probe was sent.
        since: Instant,
    },
}

/// Whether a request may go to the endpoint, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal request.
    Normal,
    /// The probe that decides whether the endpoint returns.
    Probe,
    /// Not now.
    Refused,
}

/// What a result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerEvent {
    /// The endpoint was ejected for this long.
    Ejected(Duration),
    /// A probe succeeded; the endpoint takes traffic again.
    Readmitted,
}

/// One endpoint's breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    state: BreakerState,
    failures: u32,
    ejections: u32,
    healthy_since: Option<Instant>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            ejections: 0,
            healthy_since: None,
        }
    }
}

// === impl BreakerConfig ===

impl BreakerConfig {
    /// How long the `k`-th ejection in a row lasts (from 0): `base × 2^k`, at most `max`.
    pub fn ejection_time(&self, k: u32) -> Duration {
        let factor = 1u32.checked_shl(k.min(31)).unwrap_or(u32::MAX);
        self.base_ejection
            .checked_mul(factor)
            .unwrap_or(self.max_ejection)
            .min(self.max_ejection)
    }

    /// How many of `n` endpoints may be ejected at once (rounded down).
    pub fn max_ejected(&self, n: usize) -> usize {
        n.saturating_mul(self.max_ejection_percent.min(100) as usize) / 100
    }
}

// === impl Breaker ===

impl Breaker {
    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether the endpoint counts as ejected (for the ejection floor).
    pub fn is_ejected(&self) -> bool {
        !matches!(self.state, BreakerState::Closed)
    }

    /// Whether a request could be admitted now (without claiming the probe).
    pub fn usable(&self, now: Instant, cfg: &BreakerConfig) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Ejected { until } => now >= until,
            BreakerState::Probing { since } => self.probe_is_stale(since, now, cfg),
        }
    }

    /// Admits a request, claiming the probe when the ejection is over.
    pub fn admit(&mut self, now: Instant, cfg: &BreakerConfig) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Normal,
            BreakerState::Ejected { until } if now >= until => {
                self.state = BreakerState::Probing { since: now };
                Admission::Probe
            }
            BreakerState::Probing { since } if self.probe_is_stale(since, now, cfg) => {
                // The last probe never reported back (its request was dropped): send another.
                self.state = BreakerState::Probing { since: now };
                Admission::Probe
            }
            BreakerState::Ejected { .. } | BreakerState::Probing { .. } => Admission::Refused,
        }
    }

    /// Records a result. `probe` says whether the request was the probe; `may_eject` is asked
    /// only when the endpoint would be ejected, and says whether the floor allows it.
    pub fn record(
        &mut self,
        success: bool,
        probe: bool,
        now: Instant,
        cfg: &BreakerConfig,
        may_eject: impl FnOnce() -> bool,
    ) -> Option<BreakerEvent> {
        match (self.state, probe) {
            (BreakerState::Probing { .. }, true) if success => {
                self.state = BreakerState::Closed;
                self.failures = 0;
                self.healthy_since = Some(now);
                Some(BreakerEvent::Readmitted)
            }
            (BreakerState::Probing { .. }, true) => Some(self.eject(now, cfg)),
            (BreakerState::Closed, _) if success => {
                self.failures = 0;
                if self
                    .healthy_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= cfg.max_ejection)
                {
                    self.ejections = 0;
                    self.healthy_since = None;
                }
                None
            }
            (BreakerState::Closed, _) => {
                self.failures = self.failures.saturating_add(1);
                (self.failures >= cfg.consecutive_failures.max(1) && may_eject())
                    .then(|| self.eject(now, cfg))
            }
            // A request admitted before the ejection, finishing late: it changes nothing.
            _ => None,
        }
    }

    fn eject(&mut self, now: Instant, cfg: &BreakerConfig) -> BreakerEvent {
        let time = cfg.ejection_time(self.ejections);
        self.ejections = self.ejections.saturating_add(1);
        self.failures = 0;
        self.healthy_since = None;
        self.state = BreakerState::Ejected { until: now + time };
        BreakerEvent::Ejected(time)
    }

    fn probe_is_stale(&self, since: Instant, now: Instant, cfg: &BreakerConfig) -> bool {
        now.saturating_duration_since(since) >= cfg.base_ejection.max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(60),
            max_ejection_percent: 50,
        }
    }

    fn fail(b: &mut Breaker, now: Instant) -> Option<BreakerEvent> {
        b.record(false, false, now, &cfg(), || true)
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(b.record(true, false, t0, &cfg(), || true), None);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(
            fail(&mut b, t0),
            Some(BreakerEvent::Ejected(Duration::from_secs(10)))
        );
        assert!(b.is_ejected());
        assert!(!b.usable(t0 + Duration::from_secs(9), &cfg()));
        assert_eq!(b.admit(t0, &cfg()), Admission::Refused);
    }

    #[test]
    fn one_probe_decides_and_failed_probes_double_the_ejection_up_to_the_max() {
        let mut now = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..3 {
            fail(&mut b, now);
        }
        let mut expected = Duration::from_secs(10);
        for _ in 0..5 {
            let BreakerState::Ejected { until } = b.state() else {
                panic!("not ejected: {b:?}");
            };
            assert_eq!(until - now, expected);
            now = until;
            assert!(b.usable(now, &cfg()));
            assert_eq!(b.admit(now, &cfg()), Admission::Probe);
            // Only one probe at a time.
            assert!(!b.usable(now, &cfg()));
            assert_eq!(b.admit(now, &cfg()), Admission::Refused);
            assert!(matches!(
                b.record(false, true, now, &cfg(), || panic!(
                    "the floor is not asked for a probe"
                )),
                Some(BreakerEvent::Ejected(_))
            ));
            expected = (expected * 2).min(Duration::from_secs(60));
        }
        let BreakerState::Ejected { until } = b.state() else {
            panic!()
        };
        assert_eq!(until - now, Duration::from_secs(60));
        assert_eq!(b.admit(until, &cfg()), Admission::Probe);
        assert_eq!(
            b.record(true, true, until, &cfg(), || true),
            Some(BreakerEvent::Readmitted)
        );
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(until, &cfg()), Admission::Normal);
    }

    #[test]
    fn the_backoff_resets_after_staying_healthy_for_the_max_ejection_time() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + Duration::from_secs(10);
        b.admit(t1, &cfg());
        b.record(true, true, t1, &cfg(), || true);
        let t2 = t1 + Duration::from_secs(60);
        b.record(true, false, t2, &cfg(), || true);
        for _ in 0..3 {
            fail(&mut b, t2);
        }
        assert_eq!(
            b.state(),
            BreakerState::Ejected {
                until: t2 + Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn the_floor_can_refuse_an_ejection() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..10 {
            assert_eq!(b.record(false, false, t0, &cfg(), || false), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(cfg().max_ejected(2), 1);
        assert_eq!(cfg().max_ejected(1), 0);
        assert_eq!(cfg().max_ejected(5), 2);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_base_ejection_time() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(t1, &cfg()), Admission::Probe);
        assert_eq!(
            b.admit(t1 + Duration::from_secs(5), &cfg()),
            Admission::Refused
        );
        assert_eq!(
            b.admit(t1 + Duration::from_secs(10), &cfg()),
            Admission::Probe
        );
    }

    #[test]
    fn late_results_of_requests_sent_before_the_ejection_change_nothing() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let before = b.clone();
        assert_eq!(b.record(true, false, t0, &cfg(), || true), None);
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(b, before);
    }
}
