//! `weir.dev/v1alpha1` Rollout: a Deployment whose new versions are delivered progressively.

mod adoption;
mod analysis;
mod status;

pub use adoption::{AdoptionStatus, WorkloadRef, split_version};

pub use analysis::{
    AnalysisSpec, BaselineCheck, LatencyBounds, MeshSource, MetricsSourceSpec, PromQuery,
    PrometheusSource, SuccessRateCheck,
};
pub use status::{
    AnalysisResult, AnalysisStatus, CONDITION_TYPES, Phase, QueryValue, RolloutStatus, StepWeights,
    Verdict,
};

use crate::duration::{DurationError, parse_duration};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The desired state of a Rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(group = "weir.dev", version = "v1alpha1", kind = "Rollout", namespaced)]
#[kube(status = "RolloutStatus", shortname = "ro", category = "weir")]
#[kube(
    doc = "Rollout runs a Deployment whose new revisions are delivered progressively through an SMI TrafficSplit."
)]
#[kube(scale(
    spec_replicas_path = ".spec.replicas",
    status_replicas_path = ".status.replicas",
    label_selector_path = ".status.selector"
))]
#[kube(
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "The rollout's phase"}"#
)]
#[kube(
    printcolumn = r#"{"name": "Step", "type": "string", "jsonPath": ".status.stepProgress", "description": "Current step of the strategy, such as 2/5"}"#
)]
#[kube(
    printcolumn = r#"{"name": "Canary", "type": "integer", "jsonPath": ".status.weights.canary", "description": "Percent of traffic sent to the canary"}"#
)]
#[kube(
    printcolumn = r#"{"name": "Stable", "type": "integer", "jsonPath": ".status.stableRevision", "description": "The stable revision"}"#
)]
#[kube(
    printcolumn = r#"{"name": "Canary-Rev", "type": "integer", "jsonPath": ".status.canaryRevision", "description": "The canary revision, if one is in progress"}"#
)]
#[kube(
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.template) != has(self.workloadRef)").message("set exactly one of template or workloadRef"))]
pub struct RolloutSpec {
    /// The root Service clients use; its name defaults to the Rollout's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<RootService>,
    /// The number of pods of each revision.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Selects the pods of every revision; must match the template's labels.
    pub selector: LabelSelector,
    /// The pod template; a change here starts a new revision. Exactly one of `template` and
    /// `workloadRef` is set: after adoption, replacing `workloadRef` with a template starts
    /// the next revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::pod_template")]
    pub template: Option<PodTemplateSpec>,
    /// An existing Deployment (and Service) to adopt as revision 1, instead of a template;
    /// its pods keep running and no request is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
    /// How traffic moves to a new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// A step stuck longer than this pauses the rollout with a condition (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub progress_deadline: Option<String>,
    /// How long a revision that left the split keeps its pods: the old stable after promotion, the canary after an abort (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub scale_down_delay: Option<String>,
    /// Stops the rollout where it is until set back to false (`kubectl weir pause` / `resume`).
    #[serde(default)]
    pub paused: bool,
}

/// The root Service of a Rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RootService {
    /// The Service's name; defaults to the Rollout's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port clients connect to (default 80).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The container port traffic is sent to (default 8080).
    #[serde(default = "default_target_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: i32,
}

/// The canary strategy: a list of steps and the analysis they use.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.steps) || !self.steps.exists(s, has(s.analysis)) || has(self.analysis)").message("the steps include an analysis gate, so strategy.analysis must say how to judge the canary"))]
pub struct Strategy {
    /// The steps; when absent: setWeight 10, 25, 50, 75, 100, with an analysis gate after each of the
    /// first four when `analysis` is set, and a 30s pause otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// How the canary is judged at `analysis` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
}

/// One step of the strategy: exactly one of `setWeight`, `pause` or `analysis`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1").message("each step sets exactly one of setWeight, pause or analysis"))]
pub struct Step {
    /// Percent of traffic (0 to 100) sent to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,
    /// Waits for a duration, or for `kubectl weir promote` when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    /// A gate: the canary must pass the analysis configured in `strategy.analysis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStep>,
}

/// A pause step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    /// How long to wait; without it the rollout waits for `kubectl weir promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub duration: Option<String>,
}

/// An analysis gate step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStep {
    /// Passing checks needed to move on (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub checks: Option<i32>,
}

fn default_replicas() -> i32 {
    1
}
fn default_port() -> i32 {
    80
}
fn default_target_port() -> i32 {
    8080
}

/// The steps used when a Rollout lists none: analysis gates between weights when
/// `with_analysis`, else 30-second pauses.
pub fn default_steps(with_analysis: bool) -> Vec<Step> {
    let gate = || {
        if with_analysis {
            Step {
                analysis: Some(AnalysisStep::default()),
                ..Step::default()
            }
        } else {
            Step {
                pause: Some(PauseStep {
                    duration: Some("30s".into()),
                }),
                ..Step::default()
            }
        }
    };
    let mut steps = Vec::new();
    for w in [10, 25, 50, 75] {
        steps.push(Step {
            set_weight: Some(w),
            ..Step::default()
        });
        steps.push(gate());
    }
    steps.push(Step {
        set_weight: Some(100),
        ..Step::default()
    });
    steps
}

// === impl RolloutSpec ===

impl RolloutSpec {
    /// The steps to run: the spec's, or [`default_steps`].
    pub fn steps(&self) -> Vec<Step> {
        let strategy = self.strategy.as_ref();
        strategy
            .and_then(|s| s.steps.clone())
            .unwrap_or_else(|| default_steps(strategy.is_some_and(|s| s.analysis.is_some())))
    }

    /// `progressDeadline`, parsed (default 10m).
    pub fn progress_deadline(&self) -> Result<Duration, DurationError> {
        optional_duration(
            "spec.progressDeadline",
            &self.progress_deadline,
            Duration::from_secs(600),
        )
    }

    /// `scaleDownDelay`, parsed (default 30s).
    pub fn scale_down_delay(&self) -> Result<Duration, DurationError> {
        optional_duration(
            "spec.scaleDownDelay",
            &self.scale_down_delay,
            Duration::from_secs(30),
        )
    }
}

// === impl Rollout ===

impl Rollout {
    /// The root Service's name: `spec.service.name`; else, for a Rollout that adopts (see
    /// [`WorkloadRef::service_name`]), the adopted `svc-v1` without its suffix (`svc`) or the
    /// re-pointed `foobar`; else the Rollout's name.
    pub fn root_service_name(&self) -> String {
        let adopted = || {
            let adoption = self.status.as_ref().and_then(|s| s.adoption.as_ref());
            let named = match adoption {
                Some(a) if a.revision_service_adopted => Some(a.revision_service.clone()),
                Some(a) => a.repointed_service.clone(),
                None => self
                    .spec
                    .workload_ref
                    .as_ref()
                    .and_then(|w| w.service_name.clone()),
            }?;
            Some(split_version(&named).map_or(named.clone(), |(stem, _)| stem.to_string()))
        };
        self.spec
            .service
            .as_ref()
            .and_then(|s| s.name.clone())
            .or_else(adopted)
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// Parses an optional duration field, falling back to `default`.
pub(crate) fn optional_duration(
    field: &str,
    value: &Option<String>,
    default: Duration,
) -> Result<Duration, DurationError> {
    value
        .as_deref()
        .map_or(Ok(default), |v| parse_duration(field, v))
}
