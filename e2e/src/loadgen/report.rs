//! What a load run saw, aggregated: counts by status and by the demo app's
//! version field, errors, and latency percentiles (pure).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// At most this many latency samples are kept per report.
pub const MAX_SAMPLES: usize = 2_000_000;

/// The raw results of (part of) a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Responses by the body's `version` field (`-` when absent).
    pub by_version: BTreeMap<String, u64>,
    /// Failed requests by kind (`connect`, `timeout`, `io`, …).
    pub errors: BTreeMap<String, u64>,
    /// Latencies of responses, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The first body seen for each status outside 2xx (cut to 300 bytes), to say why.
    pub failure_bodies: BTreeMap<u16, String>,
}

/// Summary numbers of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Responses received.
    pub responses: u64,
    /// Requests that failed without a response.
    pub errors: u64,
    /// Responses per second over the run.
    pub rps: f64,
    /// Percent of responses that were not 5xx.
    pub success_rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile latency, ms.
    pub p90_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Highest latency, ms.
    pub max_ms: f64,
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Responses by version.
    pub by_version: BTreeMap<String, u64>,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
}

/// The nearest-rank `q` quantile (0..=1) of sorted samples.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// The `version` field of a JSON body, if it has one.
pub fn version_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

// === impl Report ===

impl Report {
    /// Records one response.
    pub fn response(&mut self, status: u16, version: Option<String>, latency: Duration) {
        *self.by_status.entry(status).or_default() += 1;
        *self
            .by_version
            .entry(version.unwrap_or_else(|| "-".into()))
            .or_default() += 1;
        if self.latencies_us.len() < MAX_SAMPLES {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latencies_us.push(us);
        }
    }

    /// Records one failed request.
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Keeps `body` as the example of `status` when it is the first failure of that status.
    pub fn failure_body(&mut self, status: u16, body: &[u8]) {
        if (200..300).contains(&status) || self.failure_bodies.contains_key(&status) {
            return;
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        self.failure_bodies.insert(status, text);
    }

    /// Adds another report's counts and samples to this one.
    pub fn merge(&mut self, other: Report) {
        for (k, v) in other.failure_bodies {
            self.failure_bodies.entry(k).or_insert(v);
        }
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        for (k, v) in other.by_version {
            *self.by_version.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        let room = MAX_SAMPLES.saturating_sub(self.latencies_us.len());
        self.latencies_us
            .extend(other.latencies_us.into_iter().take(room));
    }

    /// Responses received.
    pub fn responses(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// The summary over a run that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let ms = |q: f64| percentile(&sorted, q).map_or(0.0, |us| us as f64 / 1000.0);
        let responses = self.responses();
        let failures: u64 = self.by_status.range(500..600).map(|(_, n)| n).sum();
        let secs = elapsed.as_secs_f64();
        Summary {
            responses,
            errors: self.errors.values().sum(),
            rps: if secs > 0.0 {
                responses as f64 / secs
            } else {
                0.0
            },
            success_rate: if responses == 0 {
                0.0
            } else {
                100.0 * (responses - failures) as f64 / responses as f64
            },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
            by_status: self.by_status.clone(),
            by_version: self.by_version.clone(),
            error_kinds: self.errors.clone(),
        }
    }
}

// === impl Summary ===

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "responses {}  errors {}  rps {:.1}  success {:.2}%",
            self.responses, self.errors, self.rps, self.success_rate
        )?;
        writeln!(
            f,
            "latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )?;
        for (status, n) in &self.by_status {
            writeln!(f, "status {status:>3}  {n}")?;
        }
        for (version, n) in &self.by_version {
            writeln!(f, "version {version}  {n}")?;
        }
        for (kind, n) in &self.error_kinds {
            writeln!(f, "error {kind}  {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let xs: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&xs, 0.5), Some(50));
        assert_eq!(percentile(&xs, 0.99), Some(99));
        assert_eq!(percentile(&xs, 1.0), Some(100));
        assert_eq!(percentile(&xs, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn version_is_read_from_json_bodies_only() {
        assert_eq!(
            version_of(br#"{"version":"v2","pod":"p"}"#).as_deref(),
            Some("v2")
        );
        assert_eq!(version_of(b"hello"), None);
        assert_eq!(version_of(br#"{"version":3}"#), None);
    }

    #[test]
    fn merge_adds_counts_and_samples() {
        let mut a = Report::default();
        a.response(200, Some("v1".into()), Duration::from_millis(1));
        a.error("connect");
        let mut b = Report::default();
        b.response(200, Some("v2".into()), Duration::from_millis(3));
        b.response(500, Some("v2".into()), Duration::from_millis(2));
        b.error("connect");
        a.merge(b);
        assert_eq!(a.by_status, [(200, 2), (500, 1)].into());
        assert_eq!(a.by_version, [("v1".into(), 1), ("v2".into(), 2)].into());
        assert_eq!(a.errors, [("connect".into(), 2)].into());
        assert_eq!(a.latencies_us.len(), 3);
    }

    #[test]
    fn the_first_body_of_each_failing_status_is_kept_through_merges() {
        let mut a = Report::default();
        a.failure_body(200, b"fine");
        a.failure_body(403, b"denied: no TrafficTarget");
        a.failure_body(403, b"a later 403");
        let mut b = Report::default();
        b.failure_body(403, b"another run's 403");
        b.failure_body(503, &[b'x'; 400]);
        a.merge(b);
        assert_eq!(a.failure_bodies.len(), 2, "{:?}", a.failure_bodies);
        assert_eq!(a.failure_bodies[&403], "denied: no TrafficTarget");
        assert_eq!(a.failure_bodies[&503].len(), 300);
    }

    #[test]
    fn summary_computes_rate_success_and_percentiles() {
        let mut r = Report::default();
        for i in 1..=9 {
            r.response(200, None, Duration::from_millis(i));
        }
        r.response(503, None, Duration::from_millis(100));
        let s = r.summary(Duration::from_secs(2));
        assert_eq!(s.responses, 10);
        assert_eq!(s.rps, 5.0);
        assert_eq!(s.success_rate, 90.0);
        assert_eq!(s.p50_ms, 5.0);
        assert_eq!(s.p90_ms, 9.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.by_version, [("-".into(), 10)].into());
        assert!(s.to_string().contains("status 503  1"));
    }
}
