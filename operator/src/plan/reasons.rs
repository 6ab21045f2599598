//! Every reason the operator writes, in a condition or an Event: the one place they are
//! spelled, so a typo is a compile error rather than a new reason (condition types are
//! [`super::conditions::Type`]).

// --- Condition reasons (some also name the Event of the same decision) ---

/// The spec cannot be acted on (condition InvalidSpec, and its Event).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The revision serving users has its pods available.
pub const REVISION_AVAILABLE: &str = "RevisionAvailable";
/// The revision serving users lacks available pods.
pub const REVISION_UNAVAILABLE: &str = "RevisionUnavailable";
/// The latest template is stable and takes all traffic.
pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
/// A revision is being rolled out.
pub const ROLLOUT_PROGRESSING: &str = "RolloutProgressing";
/// The rollout waits at a pause.
pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
/// The canary was aborted.
pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
/// A revision or step waited longer than `spec.progressDeadline` (and its Event).
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// `spec.paused` is set.
pub const PAUSED_BY_USER: &str = "PausedByUser";
/// A `pause: {}` step waits for `kubectl weir promote`.
pub const PAUSED_FOR_PROMOTION: &str = "PausedForPromotion";
/// The metrics source failed (a pause reason, and the Event of each failed check).
pub const ANALYSIS_ERROR: &str = "AnalysisError";
/// The AnalysisError condition: the metrics source failed several times in a row.
pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
/// `kubectl weir abort` aborted the canary.
pub const ABORTED_BY_USER: &str = "AbortedByUser";
/// Analysis failed past its limit (the abort reason, and each failed check's Event).
pub const ANALYSIS_FAILED: &str = "AnalysisFailed";

// --- Event reasons ---

/// The first revision became available.
pub const AVAILABLE: &str = "Available";
/// A new revision was created as the canary.
pub const REVISION_CREATED: &str = "RevisionCreated";
/// The template returned to stable's: the canary was dropped.
pub const CANARY_ABANDONED: &str = "CanaryAbandoned";
/// The template changed during a canary: a newer canary replaced it.
pub const CANARY_SUPERSEDED: &str = "CanarySuperseded";
/// An abort arrived with no canary in progress.
pub const NOTHING_TO_ABORT: &str = "NothingToAbort";
/// The rollout paused.
pub const PAUSED: &str = "Paused";
/// A retired revision's Deployment was deleted.
pub const REVISION_RETIRED: &str = "RevisionRetired";
/// An aborted canary started again.
pub const RETRIED: &str = "Retried";
/// The canary moved past a step, or was promoted to stable.
pub const PROMOTED: &str = "Promoted";
/// `kubectl weir promote --full` took the canary to 100%.
pub const PROMOTED_FULL: &str = "PromotedFull";
/// The split's weights changed.
pub const WEIGHT_CHANGED: &str = "WeightChanged";
/// An analysis check passed.
pub const ANALYSIS_PASSED: &str = "AnalysisPassed";
/// An analysis check had too little traffic to judge.
pub const ANALYSIS_INCONCLUSIVE: &str = "AnalysisInconclusive";
/// Metrics came back after errors.
pub const ANALYSIS_RESUMED: &str = "AnalysisResumed";
/// Analysis failed and the canary was rolled back.
pub const ROLLED_BACK: &str = "RolledBack";
/// The canary was aborted on request.
pub const ABORTED: &str = "Aborted";
/// A stored Rollout cannot be read into the Rollout type.
pub const INVALID_ROLLOUT: &str = "InvalidRollout";
/// The Rollout was deleted and its children removed.
pub const DELETED: &str = "Deleted";

/// Every reason above.
pub const ALL: &[&str] = &[
    INVALID_SPEC,
    REVISION_AVAILABLE,
    REVISION_UNAVAILABLE,
    ROLLOUT_COMPLETE,
    ROLLOUT_PROGRESSING,
    ROLLOUT_PAUSED,
    ROLLOUT_ABORTED,
    PROGRESS_DEADLINE_EXCEEDED,
    PAUSED_BY_USER,
    PAUSED_FOR_PROMOTION,
    ANALYSIS_ERROR,
    METRICS_UNAVAILABLE,
    ABORTED_BY_USER,
    ANALYSIS_FAILED,
    AVAILABLE,
    REVISION_CREATED,
    CANARY_ABANDONED,
    CANARY_SUPERSEDED,
    NOTHING_TO_ABORT,
    PAUSED,
    REVISION_RETIRED,
    RETRIED,
    PROMOTED,
    PROMOTED_FULL,
    WEIGHT_CHANGED,
    ANALYSIS_PASSED,
    ANALYSIS_INCONCLUSIVE,
    ANALYSIS_RESUMED,
    ROLLED_BACK,
    ABORTED,
    INVALID_ROLLOUT,
    DELETED,
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::collections::BTreeSet;

    #[test]
    fn reasons_are_distinct_upper_camel_case_words() {
        let distinct: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(distinct.len(), ALL.len(), "a reason is listed twice");
        for r in ALL {
            // The API's rule for a reason: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, CamelCase by convention.
            assert!(r.starts_with(|c: char| c.is_ascii_uppercase()), "{r}");
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
            assert!(r.len() <= 128, "{r}");
        }
    }
}
