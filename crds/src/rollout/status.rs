//! The observed state of a Rollout, and the commands the plugin writes into it.
//!
//! The plugin talks to the controller through `status` (as Argo Rollouts does):
//! `abort`, `promoteFull` and `promoteStep` are requests; everything else is the
//! controller's report. A restarted controller resumes from `status` alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The condition types a Rollout reports.
pub const CONDITION_TYPES: [&str; 7] = [
    "Available",
    "Progressing",
    "Paused",
    "Completed",
    "Aborted",
    "InvalidSpec",
    "AnalysisError",
];

/// The observed state of a Rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The rollout's phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The revision receiving traffic as stable (`foobar-v{N}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<i64>,
    /// The revision being delivered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<i64>,
    /// The pod-template hash of the stable revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_template_hash: Option<String>,
    /// The pod-template hash of the canary revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_template_hash: Option<String>,
    /// The index of the current step, 0-based (`stepProgress` shows it 1-based); `promoteStep` names the same index.
    #[serde(
        rename = "currentStepIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_step: Option<i32>,
    /// The current step as `n/total` for display (1-based); `total/total` once Healthy, and the step it stopped at once Aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_progress: Option<String>,
    /// When the current step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// What the TrafficSplit says now, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<StepWeights>,
    /// The analysis of the current step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    /// Request from the plugin: put all traffic back on stable and stop (`kubectl weir abort`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    /// When the rollout was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    /// Request from the plugin: skip to 100% and finalise (`kubectl weir promote --full`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_full: bool,
    /// Request from the plugin: move past the step with this index (`kubectl weir promote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_step: Option<i32>,
    /// When the Deployments of revisions no longer in the split are deleted (`scaleDownDelay` after they left it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_at: Option<Time>,
    /// Pods of the current revision (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The label selector of the pods, as a string (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// What the Rollout adopted (`spec.workloadRef`) and the names its later revisions follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<super::AdoptionStatus>,
    /// Conditions: Available, Progressing, Paused, Completed, Aborted, InvalidSpec, AnalysisError.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// A human-readable summary of the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The phase of a Rollout.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// One revision serves all traffic and nothing is in progress.
    Healthy,
    /// A canary is being delivered.
    Progressing,
    /// Waiting for a person, or for `spec.paused` to clear.
    Paused,
    /// Something is wrong that the controller cannot fix alone.
    Degraded,
    /// The canary was abandoned; stable serves all traffic.
    Aborted,
}

/// Traffic percentages written to the TrafficSplit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepWeights {
    /// Percent to the stable revision.
    pub stable: i32,
    /// Percent to the canary revision.
    pub canary: i32,
}

/// The analysis state of the current step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// Passing checks so far at this step.
    #[serde(default)]
    pub checks: i32,
    /// Failed checks so far in this rollout.
    #[serde(default)]
    pub failures: i32,
    /// Metric-source errors in a row.
    #[serde(default)]
    pub consecutive_errors: i32,
    /// The latest check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<AnalysisResult>,
}

/// One analysis check's figures and verdict.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    /// Percent of non-5xx responses in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Median latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// 90th-percentile latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// 99th-percentile latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// Requests in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<i64>,
    /// The window the figures cover, such as `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Where the figures came from, such as `TrafficMetrics deployments/foobar-v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The stable revision's success rate over the same window (with `baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_success_rate: Option<f64>,
    /// The stable revision's requests over the same window (with `baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_requests: Option<i64>,
    /// The custom queries' values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryValue>,
    /// The verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The verdict in words, such as `success rate 79.6% < 99% over 412 requests (1m)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the check ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

/// The value of one custom query in a check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueryValue {
    /// The query's name.
    pub name: String,
    /// Its value; absent when the query failed or returned nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The outcome of one analysis check.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every threshold held.
    Pass,
    /// A threshold was broken.
    Fail,
    /// Too little traffic to judge; counts neither way.
    Inconclusive,
    /// The metrics source failed or returned nothing; never a pass.
    Error,
}
