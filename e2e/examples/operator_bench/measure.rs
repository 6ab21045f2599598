//! What the operator benchmark reads: the operator's CPU and memory from /proc, its
//! reconcile histogram from `/metrics`, and its requests as the API server counted them.

use crate::api_tap::{RequestKind, classify};
use anyhow::{Context as _, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The API requests the operator made, as the API server's observer saw them.
#[derive(Default)]
pub(crate) struct Requests {
    /// Watches (long-lived; one per watched kind and restart).
    pub(crate) watches: AtomicU64,
    /// Everything else: GET, LIST, writes.
    pub(crate) calls: AtomicU64,
    /// POST, PUT, PATCH and DELETE.
    pub(crate) writes: AtomicU64,
    /// LISTs (a GET of a collection that is not a watch).
    pub(crate) lists: AtomicU64,
    /// When the API server answered the operator's writes of each Rollout's TrafficSplit.
    pub(crate) split_writes: parking_lot::Mutex<std::collections::HashMap<String, Vec<Instant>>>,
    /// The API server's time per request, in seconds, by [`request_class`].
    pub(crate) latencies: parking_lot::Mutex<std::collections::BTreeMap<String, Vec<f64>>>,
}

impl Requests {
    /// Counts one of the operator's requests: `path` with its query, answered in `took`.
    pub(crate) fn observe(&self, method: &hyper::Method, path: &str, took: Duration) {
        let kind = classify(method, path);
        if kind == RequestKind::Watch {
            self.watches.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        match kind {
            RequestKind::Write => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                if let Some(name) = split_rollout(path) {
                    self.split_writes
                        .lock()
                        .entry(name)
                        .or_default()
                        .push(Instant::now());
                }
            }
            RequestKind::List => {
                self.lists.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.latencies
            .lock()
            .entry(request_class(method, path))
            .or_default()
            .push(took.as_secs_f64());
    }
}

/// A request's method and what it names: the resource and any subresource
/// (`PATCH rollouts/status`), without names, so that requests can be grouped.
pub(crate) fn request_class(method: &hyper::Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let after = match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() > i + 2 => &parts[i + 2..],
        _ => &parts[parts.len().saturating_sub(1)..],
    };
    let what = match after {
        [plural, _name, sub, ..] => format!("{plural}/{sub}"),
        [plural, ..] => plural.to_string(),
        [] => String::new(),
    };
    format!("{method} {what}")
}

/// Prints the API server's latency seen at the tap by request class: count, p50, p99, max.
pub(crate) fn print_latencies(requests: &Requests) {
    println!(
        "
| API request (the server's time, head to response headers) | count | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|");
    for (class, secs) in requests.latencies.lock().iter_mut() {
        secs.sort_by(f64::total_cmp);
        println!(
            "| {class} | {} | {:.1} | {:.1} | {:.1} |",
            secs.len(),
            percentile(secs, 0.5) * 1000.0,
            percentile(secs, 0.99) * 1000.0,
            secs.last().copied().unwrap_or(f64::NAN) * 1000.0
        );
    }
}

/// The Rollout whose TrafficSplit (`<rollout>-rollout`) a request path writes, if any.
pub(crate) fn split_rollout(path: &str) -> Option<String> {
    let rest = path.split_once("/trafficsplits/")?.1;
    let name = rest.split(['/', '?']).next()?;
    name.strip_suffix("-rollout").map(str::to_string)
}

/// What one phase cost the operator.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// The operator's utime+stime so far.
    pub(crate) cpu_secs: f64,
    /// `weir_operator_reconciles_total`.
    pub(crate) reconciles: f64,
    /// The reconcile histogram's cumulative buckets (upper bound, count).
    pub(crate) buckets: Vec<(f64, f64)>,
    /// The same for the time a reconcile waited for a slot.
    pub(crate) queue_buckets: Vec<(f64, f64)>,
    /// [`Requests::calls`] so far.
    pub(crate) calls: u64,
    /// [`Requests::writes`] so far.
    pub(crate) writes: u64,
    /// [`Requests::lists`] so far.
    pub(crate) lists: u64,
    /// The operator's resident memory (VmRSS) when it was taken, in MB.
    pub(crate) rss_mb: f64,
    /// When it was taken.
    pub(crate) at: Option<Instant>,
}

/// utime+stime of `pid` in seconds, from /proc/PID/stat.
pub(crate) fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // CLK_TCK is 100 on Linux.
    Ok(ticks / 100.0)
}

/// A `/proc/PID/status` field in MB (VmHWM, VmRSS).
pub(crate) fn proc_mb(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} in /proc/{pid}/status"))?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?;
    Ok(kb / 1024.0)
}

pub(crate) async fn http_get(addr: &str, path: &str) -> Result<String> {
    let client: HttpClient<_, Empty<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://{addr}{path}").parse()?;
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.get(uri))
        .await
        .context("timed out")??;
    if !rsp.status().is_success() {
        bail!("GET {path}: {}", rsp.status());
    }
    let body = tokio::time::timeout(Duration::from_secs(10), rsp.into_body().collect())
        .await
        .context("timed out reading the body")??
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

pub(crate) async fn snapshot(pid: u32, admin: &str, requests: &Requests) -> Result<Snapshot> {
    let text = http_get(admin, "/metrics").await?;
    let mut s = Snapshot {
        cpu_secs: cpu_secs(pid)?,
        calls: requests.calls.load(Ordering::Relaxed),
        writes: requests.writes.load(Ordering::Relaxed),
        lists: requests.lists.load(Ordering::Relaxed),
        rss_mb: proc_mb(pid, "VmRSS")?,
        at: Some(Instant::now()),
        ..Snapshot::default()
    };
    for line in text.lines() {
        let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if line.starts_with("weir_operator_reconciles_total ") {
            s.reconciles = value().unwrap_or(0.0);
        } else if let Some(rest) =
            line.strip_prefix("weir_operator_reconcile_duration_seconds_bucket{le=\"")
        {
            s.buckets
                .push((bucket_bound(rest)?, value().unwrap_or(0.0)));
        } else if let Some(rest) =
            line.strip_prefix("weir_operator_reconcile_queue_seconds_bucket{le=\"")
        {
            s.queue_buckets
                .push((bucket_bound(rest)?, value().unwrap_or(0.0)));
        }
    }
    Ok(s)
}

/// A bucket's upper bound, from the text after `le="`.
fn bucket_bound(rest: &str) -> Result<f64> {
    match rest.split('"').next().unwrap_or("+Inf") {
        "+Inf" => Ok(f64::INFINITY),
        le => Ok(le.parse()?),
    }
}

/// The `q` quantile of a histogram between two snapshots of its cumulative buckets,
/// interpolated in its bucket as Prometheus' histogram_quantile does.
pub(crate) fn quantile(from: &[(f64, f64)], to: &[(f64, f64)], q: f64) -> f64 {
    let counts: Vec<(f64, f64)> = to
        .iter()
        .map(|(le, c)| {
            let before = from.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
            (*le, c - before)
        })
        .collect();
    let total = counts.last().map_or(0.0, |(_, c)| *c);
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, c) in counts {
        if c >= rank {
            if le.is_infinite() {
                return lower.0;
            }
            let width = c - lower.1;
            let into = if width > 0.0 {
                (rank - lower.1) / width
            } else {
                1.0
            };
            return lower.0 + (le - lower.0) * into;
        }
        lower = (le, c);
    }
    lower.0
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}
