//! Status conditions, following the Kubernetes API conventions: one per type, with
//! `lastTransitionTime` changed only when the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Every condition type a Rollout's status carries: the one place they are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// The revision serving users (stable, or the first) has its pods available.
    Available,
    /// A revision is being rolled out.
    Progressing,
    /// The latest template is stable and takes all traffic.
    Completed,
    /// The rollout waits at a pause, or the spec is paused.
    Paused,
    /// The canary was aborted.
    Aborted,
    /// The canary's metrics could not be read.
    AnalysisError,
    /// The spec is invalid.
    InvalidSpec,
}

impl Type {
    /// The type as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::Progressing => "Progressing",
            Self::Completed => "Completed",
            Self::Paused => "Paused",
            Self::Aborted => "Aborted",
            Self::AnalysisError => "AnalysisError",
            Self::InvalidSpec => "InvalidSpec",
        }
    }
}

/// Sets a condition, keeping its transition time when its status does not change.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: Type,
    value: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
    generation: Option<i64>,
) {
    let status = if value { "True" } else { "False" }.to_string();
    match conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.as_str().to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: Time(now),
            observed_generation: generation,
        }),
    }
}

/// Removes a condition type.
pub fn remove(conditions: &mut Vec<Condition>, type_: Type) {
    conditions.retain(|c| c.type_ != type_.as_str());
}

/// Whether a condition is True with this message.
pub fn is_true_with(conditions: &[Condition], type_: Type, message: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_.as_str() && c.status == "True" && c.message == message)
}

/// The reason of a condition that is True.
pub fn reason_of(conditions: &[Condition], type_: Type) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_.as_str() && c.status == "True")
        .map(|c| c.reason.as_str())
}

/// The reason of a condition, whatever its status.
pub fn reason_of_any(conditions: &[Condition], type_: Type) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_.as_str())
        .map(|c| c.reason.as_str())
}

/// Whether a condition is True.
pub fn is_true(conditions: &[Condition], type_: Type) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_.as_str() && c.status == "True")
}
