//! Runs one check: picks the Rollout's source, gathers the evidence, and judges it.

use super::prometheus::PrometheusSource;
use super::{Evidence, MetricsSource, QueryOutcome, SampleQuery, SourceError, Target};
use crate::controller::chain;
use crate::plan::{deployment_name, judge};
use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::{AnalysisResult, AnalysisSpec, Verdict};

/// How long one source call may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Chooses each Rollout's metrics source and turns what it returns into a verdict.
pub struct Analyst {
    default: Arc<dyn MetricsSource>,
    forced: bool,
    timeout: Duration,
    prometheus: Mutex<HashMap<String, Arc<PrometheusSource>>>,
}

// === impl Analyst ===

impl Analyst {
    /// Uses `default` (normally the TrafficMetrics API) unless a Rollout names a Prometheus.
    pub fn new(default: Arc<dyn MetricsSource>, timeout: Duration) -> Self {
        Self {
            default,
            forced: false,
            timeout,
            prometheus: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `source` for every Rollout, whatever its spec names (tests inject sources this way).
    pub fn only(source: Arc<dyn MetricsSource>) -> Self {
        Self {
            forced: true,
            ..Self::new(source, DEFAULT_TIMEOUT)
        }
    }

    fn source_for(&self, spec: &AnalysisSpec) -> Result<Arc<dyn MetricsSource>, String> {
        let prometheus = spec.source.as_ref().and_then(|s| s.prometheus.as_ref());
        let Some(p) = prometheus.filter(|_| !self.forced) else {
            return Ok(self.default.clone());
        };
        let mut cache = self.prometheus.lock();
        if let Some(s) = cache.get(&p.address) {
            return Ok(s.clone());
        }
        let source =
            Arc::new(PrometheusSource::new(&p.address, self.timeout).map_err(|e| chain(&e))?);
        cache.insert(p.address.clone(), source.clone());
        Ok(source)
    }

    async fn bounded<T>(
        &self,
        source: &dyn MetricsSource,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout {
                source_name: source.describe(),
                after: self.timeout,
            }),
        }
    }

    /// Checks canary revision `canary` of `rollout` against stable revision `stable` at `now`.
    pub async fn check(
        &self,
        rollout: &Rollout,
        canary: i64,
        stable: Option<i64>,
        now: Timestamp,
    ) -> AnalysisResult {
        let error = |message: String| AnalysisResult {
            verdict: Some(Verdict::Error),
            message: Some(message),
            at: Some(Time(now)),
            ..AnalysisResult::default()
        };
        let Some(spec) = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.analysis.as_ref())
        else {
            return error(
                "spec.strategy.analysis is not set: nothing to judge the canary by".into(),
            );
        };
        let window = match spec.window() {
            Ok(w) => w,
            Err(e) => return error(e.to_string()),
        };
        let source = match self.source_for(spec) {
            Ok(s) => s,
            Err(e) => return error(format!("cannot use the metrics source: {e}")),
        };
        let ns = rollout.namespace().unwrap_or_default();
        let canary_name = deployment_name(rollout, canary);
        let query = |deployment: &str| SampleQuery {
            target: Target::deployment(&ns, deployment),
            window,
            at: now,
        };
        let canary_query = query(&canary_name);
        let baseline_query = spec
            .baseline
            .as_ref()
            .and(stable)
            .map(|s| query(&deployment_name(rollout, s)));
        let canary_figures = self.bounded(&*source, source.sample(&canary_query));
        let baseline_figures = async {
            match &baseline_query {
                Some(q) => Some(self.bounded(&*source, source.sample(q)).await),
                None => None,
            }
        };
        let queries = join_all(spec.queries.iter().map(|q| {
            let source = source.clone();
            let promql = super::prometheus::substitute(&q.promql, &ns, &canary_name, window);
            async move {
                QueryOutcome {
                    name: q.name.clone(),
                    value: self.bounded(&*source, source.scalar(&promql, now)).await,
                }
            }
        }));
        let (canary_figures, baseline_figures, queries) =
            futures::join!(canary_figures, baseline_figures, queries);
        let evidence = Evidence {
            at: now,
            window,
            step_started: rollout
                .status
                .as_ref()
                .and_then(|s| s.step_started_at.as_ref())
                .map(|t| t.0),
            source: format!("{} {}", source.describe(), canary_query.target),
            canary: canary_figures,
            baseline: baseline_figures,
            queries,
        };
        judge(&evidence, spec)
    }
}
