//! The pure picture of one Rollout that `get`, `status` and their watches render, built
//! from the Rollout, its Deployments, Pods and TrafficSplit, and the live metrics (if any).
//!
//! ```text
//!  Rollout ─┐
//!  Deployments, Pods ─┼─► View::build(Inputs, now) ─► View ─► render::get / -o json
//!  TrafficSplit, live ┘
//! ```

mod live;
mod tree;

pub use live::{LiveRow, figures_from};
pub use tree::{DeploymentView, PodView, RevisionView, Role};

use crate::plan::revision_name;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_crds::Rollout;
use weir_crds::model::{SmiObject, normalise};
use weir_crds::rollout::{AnalysisResult, Phase, Step};

/// Everything a [`View`] is built from; the I/O layer fetches it.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The Rollout.
    pub rollout: Rollout,
    /// Its Deployments (labelled `weir.dev/rollout`).
    pub deployments: Vec<Deployment>,
    /// Its Pods (labelled `weir.dev/rollout`).
    pub pods: Vec<Pod>,
    /// Its TrafficSplit as JSON, if it exists.
    pub split: Option<Value>,
    /// Live metrics per Deployment, or why there are none.
    pub live: LiveInput,
}

/// What the TrafficMetrics API answered.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveInput {
    /// Not asked (for example `list`, or a rollout with no Deployment yet).
    NotAsked,
    /// The API did not answer usefully; the reason in words.
    Unavailable(String),
    /// One answer per Deployment asked: (Deployment name, figures or the error in words).
    Answers(Vec<(String, Result<LiveRow, String>)>),
}

/// One Rollout as the plugin shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The Rollout's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its phase, None before the controller first reports.
    pub phase: Option<Phase>,
    /// The controller's message.
    pub message: Option<String>,
    /// False while the controller has not yet acted on the latest spec (`observedGeneration` behind).
    pub observed: bool,
    /// The current step, if a canary is in progress or all steps are done.
    pub step: Option<StepView>,
    /// The canary weight the controller set (`status.weights.canary`).
    pub set_weight: Option<i32>,
    /// What the TrafficSplit holds now, in percent of traffic per backend.
    pub split: Vec<SplitShare>,
    /// `spec.paused`.
    pub paused: bool,
    /// Requests written by the plugin that the controller has not yet acted on.
    pub pending: Vec<String>,
    /// The stable revision.
    pub stable_revision: Option<i64>,
    /// The canary revision.
    pub canary_revision: Option<i64>,
    /// Revisions → Deployments → Pods, canary first.
    pub revisions: Vec<RevisionView>,
    /// The analysis of the current canary.
    pub analysis: Option<AnalysisView>,
    /// Live traffic figures of stable and canary.
    pub live: LiveView,
    /// The status conditions.
    pub conditions: Vec<ConditionView>,
    /// Seconds since the Rollout was created.
    pub age_seconds: Option<i64>,
}

/// The current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// 1-based number of the step (equal to `total` once complete).
    pub number: usize,
    /// How many steps there are.
    pub total: usize,
    /// What the step does, such as `setWeight 20` or `pause (until promoted)`; `complete` when done.
    pub description: String,
}

/// One backend of the TrafficSplit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitShare {
    /// The backend Service.
    pub service: String,
    /// Its revision, when it is one of this Rollout's `name-vN` Services.
    pub revision: Option<i64>,
    /// Its share of traffic in percent (weight / sum of weights).
    pub percent: f64,
}

/// The analysis state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisView {
    /// Passing checks at the current step.
    pub checks: i32,
    /// Failed checks in this rollout.
    pub failures: i32,
    /// Failed checks tolerated.
    pub failure_limit: Option<i32>,
    /// Metric-source errors in a row.
    pub consecutive_errors: i32,
    /// The latest check, with its figures.
    pub last: Option<AnalysisResult>,
    /// Seconds since the latest check.
    pub last_age_seconds: Option<i64>,
}

/// Live traffic figures, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum LiveView {
    /// Not asked.
    NotAsked,
    /// The metrics API did not answer.
    Unavailable {
        /// Why, in words.
        reason: String,
    },
    /// One row per revision asked.
    Figures {
        /// The rows, canary first.
        rows: Vec<LiveRow>,
    },
}

/// A status condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    /// The type, such as `Paused`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
}

// === impl View ===

impl View {
    /// Builds the view of `inputs` at time `now`.
    pub fn build(inputs: &Inputs, now: Timestamp) -> Self {
        let ro = &inputs.rollout;
        let name = ro.metadata.name.clone().unwrap_or_default();
        let status = ro.status.clone().unwrap_or_default();
        let steps = ro.spec.steps();
        let observed = match (status.observed_generation, ro.metadata.generation) {
            (Some(seen), Some(current)) => seen >= current,
            (None, _) => false,
            (Some(_), None) => true,
        };
        let split = split_shares(&name, inputs.split.as_ref(), ro);
        let revisions = tree::revisions(inputs, &split, now);
        let analysis = status.analysis.as_ref().map(|a| AnalysisView {
            checks: a.checks,
            failures: a.failures,
            failure_limit: ro
                .spec
                .strategy
                .as_ref()
                .and_then(|s| s.analysis.as_ref())
                .map(|a| i32::try_from(a.failure_limit()).unwrap_or(i32::MAX)),
            consecutive_errors: a.consecutive_errors,
            last: a.last_result.clone(),
            last_age_seconds: a
                .last_result
                .as_ref()
                .and_then(|r| r.at.as_ref())
                .map(|t| seconds_since(t, now)),
        });
        Self {
            step: step_view(&steps, status.phase, status.current_step),
            pending: pending(&status),
            set_weight: status.weights.map(|w| w.canary),
            live: live_view(&inputs.live, &revisions),
            conditions: status
                .conditions
                .iter()
                .map(|c| ConditionView {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect(),
            age_seconds: ro
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| seconds_since(t, now)),
            namespace: ro.metadata.namespace.clone().unwrap_or_default(),
            phase: status.phase,
            message: status.message.clone(),
            observed,
            paused: ro.spec.paused,
            stable_revision: status.stable_revision,
            canary_revision: status.canary_revision,
            split,
            revisions,
            analysis,
            name,
        }
    }

    /// The share of traffic the TrafficSplit gives the canary now, in percent.
    pub fn actual_canary_percent(&self) -> Option<f64> {
        let canary = self.canary_revision?;
        Some(
            self.split
                .iter()
                .filter(|s| s.revision == Some(canary))
                .map(|s| s.percent)
                .sum(),
        )
    }

    /// Whether the phase is one `status` stops at: Healthy, Degraded or Aborted (only once
    /// the controller has seen the latest spec).
    pub fn finished(&self) -> bool {
        self.observed
            && matches!(
                self.phase,
                Some(Phase::Healthy | Phase::Degraded | Phase::Aborted)
            )
    }

    /// The view without ages, to tell a real change from time passing.
    pub fn timeless(&self) -> Self {
        let mut v = self.clone();
        v.age_seconds = None;
        if let Some(a) = v.analysis.as_mut() {
            a.last_age_seconds = None;
        }
        for rev in &mut v.revisions {
            for pod in &mut rev.pods {
                pod.age_seconds = None;
            }
        }
        v
    }

    /// The images of the revision with this role.
    pub fn images_of(&self, role: Role) -> Vec<String> {
        self.revisions
            .iter()
            .filter(|r| r.role == role)
            .flat_map(|r| r.images.iter().cloned())
            .collect()
    }
}

/// Whole seconds from `t` to `now` (never negative).
pub fn seconds_since(t: &Time, now: Timestamp) -> i64 {
    now.duration_since(t.0).as_secs().max(0)
}

fn step_view(steps: &[Step], phase: Option<Phase>, index: Option<i32>) -> Option<StepView> {
    let total = steps.len();
    if phase == Some(Phase::Healthy) {
        return Some(StepView {
            number: total,
            total,
            description: "complete".into(),
        });
    }
    let i = usize::try_from(index?).ok()?;
    let Some(step) = steps.get(i) else {
        return Some(StepView {
            number: total,
            total,
            description: "finalising".into(),
        });
    };
    Some(StepView {
        number: i + 1,
        total,
        description: describe_step(step),
    })
}

/// A step in words: `setWeight 20`, `pause 30s`, `pause (until promoted)`, `analysis (2 checks)`.
pub fn describe_step(step: &Step) -> String {
    if let Some(w) = step.set_weight {
        return format!("setWeight {w}");
    }
    if let Some(p) = &step.pause {
        return match &p.duration {
            Some(d) => format!("pause {d}"),
            None => "pause (until promoted)".into(),
        };
    }
    let checks = step.analysis.as_ref().and_then(|a| a.checks).unwrap_or(1);
    let plural = if checks == 1 { "check" } else { "checks" };
    format!("analysis ({checks} {plural})")
}

fn pending(status: &weir_crds::RolloutStatus) -> Vec<String> {
    let mut out = Vec::new();
    if status.abort && status.phase != Some(Phase::Aborted) {
        out.push("abort requested".to_string());
    }
    if status.promote_full {
        out.push("full promotion requested".to_string());
    }
    if let Some(i) = status.promote_step {
        out.push(format!("promotion past step {} requested", i + 1));
    }
    out
}

/// The split's backends as shares of traffic; empty when there is no split or it cannot be read.
fn split_shares(name: &str, split: Option<&Value>, ro: &Rollout) -> Vec<SplitShare> {
    let ns = ro.metadata.namespace.as_deref().unwrap_or("default");
    let Some(Ok(SmiObject::Split(s))) = split.map(|v| normalise(v, ns)) else {
        return Vec::new();
    };
    let total: u64 = s.backends.iter().map(|b| b.weight_millis).sum();
    s.backends
        .iter()
        .map(|b| SplitShare {
            revision: revision_of_backend(name, ro, &b.service),
            percent: if total == 0 {
                0.0
            } else {
                b.weight_millis as f64 * 100.0 / total as f64
            },
            service: b.service.clone(),
        })
        .collect()
}

/// The revision whose Service is `service`: `name-vN`, or for a Rollout that adopted,
/// the adopted revision's Service or `<servicePrefix>-vN`.
fn revision_of_backend(name: &str, ro: &Rollout, service: &str) -> Option<i64> {
    let adoption = ro.status.as_ref().and_then(|s| s.adoption.as_ref());
    match adoption {
        Some(a) if a.revision_service == service => Some(a.revision),
        Some(a) => revision_of_service(&a.service_prefix, service),
        None => revision_of_service(name, service),
    }
}

/// N when `service` is `name-vN`.
pub fn revision_of_service(name: &str, service: &str) -> Option<i64> {
    let n: i64 = service
        .strip_prefix(name)?
        .strip_prefix("-v")?
        .parse()
        .ok()?;
    (revision_name(name, n) == service).then_some(n)
}

fn live_view(live: &LiveInput, revisions: &[RevisionView]) -> LiveView {
    match live {
        LiveInput::NotAsked => LiveView::NotAsked,
        LiveInput::Unavailable(reason) => LiveView::Unavailable {
            reason: reason.clone(),
        },
        LiveInput::Answers(answers) => {
            let errors: Vec<&String> = answers
                .iter()
                .filter_map(|(_, r)| r.as_ref().err())
                .collect();
            if !answers.is_empty() && errors.len() == answers.len() {
                let mut reasons: Vec<&String> = errors.clone();
                reasons.dedup();
                let reason = reasons
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                return LiveView::Unavailable { reason };
            }
            let mut rows = Vec::new();
            for rev in revisions {
                let Some(d) = &rev.deployment else { continue };
                if let Some((_, answer)) = answers.iter().find(|(name, _)| name == &d.name) {
                    let mut row = match answer {
                        Ok(row) => row.clone(),
                        Err(e) => LiveRow::missing(e),
                    };
                    row.role = Some(rev.role);
                    row.revision = Some(rev.revision);
                    row.deployment = d.name.clone();
                    rows.push(row);
                }
            }
            LiveView::Figures { rows }
        }
    }
}

#[cfg(test)]
mod tests;
