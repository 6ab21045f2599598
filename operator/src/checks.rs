//! Where the canary's verdicts come from: a trait, so the analysis sources (mesh
//! scrape, Prometheus) plug in, and tests can script verdicts.

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use weir_crds::Rollout;
use weir_crds::rollout::{AnalysisResult, Verdict};

/// Judges the canary of a Rollout over its analysis window.
pub trait CheckSource: Send + Sync + 'static {
    /// Checks the canary Service `canary_service` of `rollout` at `now`.
    fn check<'a>(
        &'a self,
        rollout: &'a Rollout,
        canary_service: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, AnalysisResult>;
}

/// The source used until a metrics source is configured: every check is an error,
/// because a missing metric is never a pass.
#[derive(Debug, Clone, Default)]
pub struct NoMetrics;

impl CheckSource for NoMetrics {
    fn check<'a>(
        &'a self,
        _: &'a Rollout,
        canary_service: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, AnalysisResult> {
        Box::pin(async move {
            AnalysisResult {
                verdict: Some(Verdict::Error),
                message: Some(format!(
                    "Error: no metrics source is available to judge {canary_service}"
                )),
                at: Some(Time(now)),
                ..AnalysisResult::default()
            }
        })
    }
}

/// A source that returns one fixed verdict, for tests and demos.
#[derive(Debug, Clone)]
pub struct FixedVerdict(pub Verdict);

impl CheckSource for FixedVerdict {
    fn check<'a>(
        &'a self,
        _: &'a Rollout,
        canary_service: &'a str,
        now: Timestamp,
    ) -> BoxFuture<'a, AnalysisResult> {
        Box::pin(async move {
            AnalysisResult {
                verdict: Some(self.0),
                message: Some(format!("{:?}: fixed verdict for {canary_service}", self.0)),
                requests: Some(100),
                at: Some(Time(now)),
                ..AnalysisResult::default()
            }
        })
    }
}
