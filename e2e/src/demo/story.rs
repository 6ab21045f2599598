//! The demo's story in pure code: the Rollout and its three revisions, what one progress
//! line shows, and whether the story happened (v2 promoted, v3 rolled back).

use crate::install::metric;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;
use weir_crds::rollout::{Phase, RolloutStatus};

/// The namespace everything of the story lives in.
pub const NAMESPACE: &str = "default";
/// The Rollout's name.
pub const ROLLOUT: &str = "foobar";

/// The Rollout `foobar` at v1: 2 replicas, 20% → analysis (3 checks) → 50% → analysis
/// (2 checks) → 80% → a 2 s pause → 100%, each check over the last 4 s of live traffic
/// from the TrafficMetrics API (success rate ≥ 95%, p99 ≤ 300 ms, at least 20 requests).
pub fn rollout_yaml() -> String {
    rollout_yaml_reading(None)
}

/// [`rollout_yaml`], its analysis reading the Prometheus at `prometheus` when given.
pub fn rollout_yaml_reading(prometheus: Option<std::net::SocketAddr>) -> String {
    let source = super::source::source_yaml(prometheus);
    format!(
        r#"apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: {ROLLOUT}, namespace: {NAMESPACE}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {ROLLOUT}}}}}
  template:
    metadata: {{labels: {{app: {ROLLOUT}}}}}
    spec: {{containers: [{{name: app, image: "weir-demo:v1", ports: [{{containerPort: 8080}}]}}]}}
  scaleDownDelay: 2s
  strategy:
    steps:
    - setWeight: 20
    - analysis: {{checks: 3}}
    - setWeight: 50
    - analysis: {{checks: 2}}
    - setWeight: 80
    - pause: {{duration: 2s}}
    analysis:
      interval: 1s
      window: 4s
      minRequests: 20
      failureLimit: 1
      successRate: {{min: 95}}
      latency: {{p99: 300ms}}
{source}"#
    )
}

/// The merge patch that makes the template `weir-demo:<version>`, failing `error_rate` of
/// its requests (0 for none).
pub fn revision_patch(version: &str, error_rate: f64) -> Value {
    let env = if error_rate > 0.0 {
        json!([{"name": "ERROR_RATE", "value": error_rate.to_string()}])
    } else {
        json!([])
    };
    json!({"spec": {"template": {"spec": {"containers": [{"name": "app",
        "image": format!("weir-demo:{version}"), "env": env,
        "ports": [{"containerPort": 8080}]}]}}}})
}

/// The TrafficMetrics API path of Deployment `foobar-v<revision>` over `window`.
pub fn metrics_path(revision: i64, window: &str) -> String {
    format!(
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/{NAMESPACE}/deployments/{ROLLOUT}-v{revision}?t={window}"
    )
}

/// One revision's live figures, from a TrafficMetrics document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Requests in the window.
    pub requests: f64,
    /// Percent of them that succeeded; `None` without requests.
    pub success_rate: Option<f64>,
    /// The 99th percentile latency in milliseconds, when the API has one.
    pub p99_ms: Option<f64>,
}

/// The figures of a TrafficMetrics document; `None` unless it has both counts.
pub fn figures(doc: &Value) -> Option<Figures> {
    let ok = metric(doc, "success_count")?;
    let failed = metric(doc, "failure_count")?;
    let requests = ok + failed;
    Some(Figures {
        requests,
        success_rate: (requests > 0.0).then(|| 100.0 * ok / requests),
        p99_ms: metric(doc, "p99_response_latency").map(|s| s * 1000.0),
    })
}

/// What the client pods saw over the last second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSecond {
    /// 2xx answers.
    pub ok: u64,
    /// Answers of any other status.
    pub non_2xx: u64,
    /// Requests with no answer (connection errors, timeouts).
    pub errors: u64,
    /// Answers by version (`v1`, `v2`, …).
    pub by_version: Vec<(String, u64)>,
}

/// Everything one progress line shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Time since the demo started.
    pub elapsed: Duration,
    /// The Rollout's status.
    pub status: RolloutStatus,
    /// What the clients saw over the last second.
    pub clients: ClientSecond,
    /// The stable revision's figures.
    pub stable: Option<Figures>,
    /// The canary revision's figures.
    pub canary: Option<Figures>,
}

fn show_figures(out: &mut String, label: &str, revision: Option<i64>, f: Option<&Figures>) {
    let Some(revision) = revision else { return };
    let _ = write!(out, " | {label} v{revision} ");
    match f {
        Some(Figures {
            success_rate: Some(rate),
            p99_ms,
            requests,
        }) => {
            let _ = write!(out, "{rate:5.1}% ok");
            match p99_ms {
                Some(p99) => {
                    let _ = write!(out, " p99 {p99:.1}ms");
                }
                None => out.push_str(" p99 -"),
            }
            let _ = write!(out, " ({requests:.0} req/5s)");
        }
        _ => out.push_str("no traffic yet"),
    }
}

/// One progress line: time, phase, step, weights, the clients' last second, and the stable
/// and canary figures.
pub fn progress_line(s: &Snapshot) -> String {
    let st = &s.status;
    let phase = st
        .phase
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "-".into());
    let mut out = format!(
        "[{:6.1}s] {phase:<11} step {:<5}",
        s.elapsed.as_secs_f64(),
        st.step_progress.as_deref().unwrap_or("-")
    );
    match (st.weights, st.stable_revision, st.canary_revision) {
        (Some(w), Some(stable), Some(canary)) => {
            let _ = write!(
                out,
                " weights v{stable} {:>3}% / v{canary} {:>3}%",
                w.stable, w.canary
            );
        }
        (_, Some(stable), _) => {
            let _ = write!(out, " weights v{stable} 100%");
        }
        _ => out.push_str(" weights -"),
    }
    let c = &s.clients;
    let versions: Vec<String> = c
        .by_version
        .iter()
        .map(|(v, n)| format!("{v}:{n}"))
        .collect();
    let _ = write!(
        out,
        " | clients {} ok {} non-2xx {} errors [{}]",
        c.ok,
        c.non_2xx,
        c.errors,
        versions.join(" ")
    );
    show_figures(&mut out, "stable", st.stable_revision, s.stable.as_ref());
    show_figures(&mut out, "canary", st.canary_revision, s.canary.as_ref());
    out
}

/// How one update of the story ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The canary became stable at this revision.
    Promoted(i64),
    /// The canary was abandoned; this revision stayed stable. The message says why.
    RolledBack {
        /// The stable revision after the rollback.
        stable: i64,
        /// The Rollout's message.
        message: String,
    },
    /// Neither within the time allowed; what the status said last.
    Unfinished(String),
}

/// How an update ended, from the Rollout's status, once it ended: Healthy with `revision` as
/// stable is a promotion, Aborted a rollback; anything else has not ended.
pub fn ending(status: &RolloutStatus, revision: i64) -> Option<Ending> {
    match status.phase {
        Some(Phase::Healthy) if status.stable_revision == Some(revision) => {
            Some(Ending::Promoted(revision))
        }
        Some(Phase::Aborted) => Some(Ending::RolledBack {
            stable: status.stable_revision.unwrap_or(0),
            message: status.message.clone().unwrap_or_default(),
        }),
        _ => None,
    }
}

/// The story's verdict: the problems, empty when v2 was promoted and v3 was rolled back to v2.
pub fn verdict(v2: &Ending, v3: &Ending) -> Vec<String> {
    let mut problems = Vec::new();
    if *v2 != Ending::Promoted(2) {
        problems.push(format!("v2 (healthy) was not promoted: {v2:?}"));
    }
    match v3 {
        Ending::RolledBack { stable: 2, .. } => {}
        other => problems.push(format!(
            "v3 (20% errors) was not rolled back to v2: {other:?}"
        )),
    }
    problems
}

#[cfg(test)]
mod tests;
