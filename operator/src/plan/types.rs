//! The planner's inputs and outputs.

use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use weir_crds::rollout::{AnalysisResult, RolloutStatus};

/// What exists in the cluster for one Rollout, gathered by the controller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The hash of `spec.template` (see [`super::template_hash`]).
    pub template_hash: String,
    /// The Rollout's Deployments, by revision.
    pub revisions: BTreeMap<i64, RevisionState>,
    /// The revisions whose Service `name-vN` exists.
    pub services: BTreeSet<i64>,
    /// Whether the root Service exists.
    pub root_service: bool,
    /// When the root Service exists but belongs to someone else: who (another Rollout, or
    /// a Service Weir does not manage).
    pub root_service_conflict: Option<String>,
    /// The TrafficSplit's backends (Service name, weight), if the split exists.
    pub split: Option<Vec<(String, i32)>>,
    /// A check of the canary made for this reconcile, if one was due.
    pub check: Option<AnalysisResult>,
    /// The Deployment and Service `spec.workloadRef` names (only for a Rollout that adopts).
    pub adoption: Option<super::AdoptObserved>,
}

/// One revision's Deployment as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionState {
    /// The template hash recorded on the Deployment.
    pub template_hash: String,
    /// Desired replicas.
    pub replicas: i32,
    /// Available replicas.
    pub available: i32,
    /// When the Deployment was created: the first revision's progress deadline counts from here.
    pub created_at: Option<Timestamp>,
    /// What the revision's pods report (their containers' waiting reasons), filled in only
    /// when the plan asked for it ([`Plan::inspect_pods`]).
    pub pods: Option<String>,
}

/// A write the controller must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the root Service.
    EnsureRootService,
    /// Create or update revision N's Deployment (from `spec.template`) and its Service.
    EnsureRevision {
        /// The revision.
        revision: i64,
        /// Its replicas.
        replicas: i32,
    },
    /// Re-create revision N's Deployment and Service from its kept template (its
    /// ControllerRevision): for a revision whose template is no longer in the spec.
    RestoreRevision {
        /// The revision.
        revision: i64,
        /// Its replicas.
        replicas: i32,
    },
    /// Scale revision N's existing Deployment.
    ScaleRevision {
        /// The revision.
        revision: i64,
        /// Its replicas.
        replicas: i32,
    },
    /// Write the TrafficSplit with these (Service name, weight) backends.
    WriteSplit {
        /// The backends in order.
        backends: Vec<(String, i32)>,
    },
    /// Delete revision N's Service.
    DeleteService {
        /// The revision.
        revision: i64,
    },
    /// Delete revision N's Deployment.
    DeleteDeployment {
        /// The revision.
        revision: i64,
    },
    /// Label and annotate an existing Deployment's metadata as revision N (never its pod
    /// template or selector, so no pod restarts).
    AdoptDeployment {
        /// The Deployment.
        name: String,
        /// The revision it becomes.
        revision: i64,
        /// Its pod-template hash, recorded as the revision's.
        template_hash: String,
    },
    /// Label an existing Service (the brief's `svc-v1`) as revision N's Service; its
    /// selector is not changed.
    AdoptService {
        /// The Service.
        name: String,
        /// The revision.
        revision: i64,
    },
    /// Create the adopted revision's Service, selecting the adopted pods by their labels.
    EnsureAdoptedService {
        /// The Service's name.
        name: String,
        /// The revision.
        revision: i64,
        /// The adopted pods' labels.
        selector: BTreeMap<String, String>,
    },
    /// Point an existing Service clients call (the common form's `foobar`) to the gateway,
    /// keeping its original selector and ports in an annotation.
    RepointService {
        /// The Service.
        name: String,
    },
}

/// An Event to record for a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Warning rather than Normal.
    pub warning: bool,
    /// A CamelCase reason, such as `WeightChanged`.
    pub reason: &'static str,
    /// What happened, in words.
    pub message: String,
}

/// The outcome of planning: writes to make, the new status, Events, and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The writes, in order.
    pub actions: Vec<Action>,
    /// The sizes of the consecutive runs of [`Plan::actions`] that touch distinct objects
    /// and depend on none of one another, so may be written at once; they sum to its length.
    pub runs: Vec<usize>,
    /// Whether the status may be written at once with the last run: that run only creates,
    /// scales or routes (no teardown, no adoption step, no history to prune), so a status
    /// written without it is completed by the next plan, which writes what differs.
    pub status_with_last_run: bool,
    /// Whether a revision this plan writes may push the ControllerRevision history past its
    /// limit: the controller then lists and prunes it after the writes, before the status.
    pub prune_history: bool,
    /// The status to write.
    pub status: RolloutStatus,
    /// One Event per decision.
    pub events: Vec<PlannedEvent>,
    /// When to reconcile again even if nothing changes.
    pub requeue_after: Option<Duration>,
    /// A revision stuck past its progress deadline whose pods the plan wants described:
    /// the controller reads them into [`RevisionState::pods`] and plans again.
    pub inspect_pods: Option<i64>,
}
