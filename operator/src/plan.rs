//! The pure Rollout planner: `plan(&Rollout, &Observed, now) -> Plan`.
//!
//! ```text
//!  Rollout (spec + status) ─┐
//!  Observed (children,      ├─► plan ─► Plan { actions, status, events, requeue_after }
//!   split, latest check) ───┤
//!  now ─────────────────────┘
//! ```
//!
//! Everything the controller decides lives here, with no client, socket or clock.
//! The plan is idempotent: the desired children follow from `status`, so planning
//! again after the actions were applied yields no further action, and a restarted
//! controller resumes from `status` alone.

mod adopt;
mod canary;
pub mod conditions;
mod first;
mod judge;
pub mod pods;
pub mod reasons;
mod revisions;
mod types;
mod validate;

pub use adopt::{
    AdoptObserved, AdoptedDeployment, AdoptedService, HandBack, deployment_name,
    deployment_name_with, hand_back, service_name, service_name_with, split_version,
};
pub use judge::judge;
pub use types::{Action, Observed, Plan, PlannedEvent, RevisionState};
pub use validate::{Settings, template_hash};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::BTreeSet;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::{AnalysisResult, Phase, RolloutStatus, StepWeights, Verdict};

/// Plans one reconcile of `rollout` given what exists, at time `now` (an example is in
/// the crate documentation).
pub fn plan(rollout: &Rollout, observed: &Observed, now: Timestamp) -> Plan {
    let mut p = Planner::new(rollout, observed, now);
    let conflict = observed.root_service_conflict.as_ref().map(|owner| {
        format!(
            "the root Service {} already exists and belongs to {owner}; set spec.service.name to a free name",
            rollout.root_service_name()
        )
    });
    match conflict.map_or_else(|| validate::settings(rollout), Err) {
        Err(message) => p.invalid(message),
        Ok(settings) => p.run(&settings),
    }
    p.finish()
}

/// The name of revision N's Deployment and Service: `name-vN`.
pub fn revision_name(rollout: &str, revision: i64) -> String {
    format!("{rollout}-v{revision}")
}

/// Whether an analysis check of the canary is due now (the controller then fetches metrics).
pub fn check_due(rollout: &Rollout, now: Timestamp) -> bool {
    canary::check_due(rollout, now)
}

/// The working state of one planning pass.
struct Planner<'a> {
    rollout: &'a Rollout,
    observed: &'a Observed,
    now: Timestamp,
    status: RolloutStatus,
    before: RolloutStatus,
    ensure: Vec<Action>,
    teardown: Vec<Action>,
    desired_split: Option<Vec<(String, i32)>>,
    split_first: bool,
    fresh_canary: bool,
    events: Vec<PlannedEvent>,
    wake_at: Option<Timestamp>,
    inspect_pods: Option<i64>,
}

// === impl Planner ===

impl<'a> Planner<'a> {
    fn new(rollout: &'a Rollout, observed: &'a Observed, now: Timestamp) -> Self {
        let status = rollout.status.clone().unwrap_or_default();
        Self {
            rollout,
            observed,
            now,
            before: status.clone(),
            status,
            ensure: Vec::new(),
            teardown: Vec::new(),
            desired_split: None,
            split_first: false,
            fresh_canary: false,
            events: Vec::new(),
            wake_at: None,
            inspect_pods: None,
        }
    }

    fn name(&self) -> &str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }

    /// Revision N's Deployment name (an adopted one keeps its own name).
    fn dname(&self, revision: i64) -> String {
        adopt::deployment_name_with(self.name(), self.status.adoption.as_ref(), revision)
    }

    /// Revision N's Service name (an adopted one keeps its own name).
    fn sname(&self, revision: i64) -> String {
        adopt::service_name_with(self.name(), self.status.adoption.as_ref(), revision)
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.events.push(PlannedEvent {
            warning,
            reason,
            message: message.into(),
        });
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn invalid(&mut self, message: String) {
        let changed = !conditions::is_true_with(
            &self.status.conditions,
            conditions::Type::InvalidSpec,
            &message,
        );
        self.set_condition(
            conditions::Type::InvalidSpec,
            true,
            reasons::INVALID_SPEC,
            &message,
        );
        if changed {
            self.event(
                true,
                reasons::INVALID_SPEC,
                format!("Invalid spec: {message}"),
            );
        }
        self.status.phase = Some(Phase::Degraded);
        self.status.message = Some(format!("Invalid spec: {message}"));
        self.status.observed_generation = self.rollout.metadata.generation;
    }

    fn set_condition(&mut self, type_: conditions::Type, value: bool, reason: &str, message: &str) {
        let generation = self.rollout.metadata.generation;
        conditions::set(
            &mut self.status.conditions,
            type_,
            value,
            reason,
            message,
            self.now,
            generation,
        );
    }

    fn run(&mut self, settings: &Settings) {
        let adopting = match (
            &self.status.stable_revision,
            &self.rollout.spec.workload_ref,
        ) {
            (None, Some(workload)) => {
                match adopt::check(self.rollout, self.observed, &self.status, workload) {
                    Ok(found) => Some(found),
                    Err(message) => return self.invalid(message),
                }
            }
            _ => None,
        };
        conditions::remove(&mut self.status.conditions, conditions::Type::InvalidSpec);
        self.status.observed_generation = self.rollout.metadata.generation;
        self.status.replicas = Some(self.rollout.spec.replicas);
        self.status.selector = Some(validate::selector_string(&self.rollout.spec.selector));
        if !self.observed.root_service {
            self.ensure.push(Action::EnsureRootService);
        }
        match self.status.stable_revision {
            None => match adopting {
                Some((adoption, deployment)) => adopt::take_over(self, &adoption, &deployment),
                None => self.first_revision(settings),
            },
            Some(stable) => {
                self.choose_canary(stable);
                match self.status.canary_revision {
                    Some(canary) => canary::run(self, settings, stable, canary),
                    None => self.steady(stable),
                }
            }
        }
        self.retire(settings);
    }

    /// Starts, continues, supersedes or abandons the canary according to the template.
    fn choose_canary(&mut self, stable: i64) {
        let hash = self.observed.template_hash.clone();
        let stable_hash = self.status.stable_template_hash.clone().unwrap_or_default();
        let old = self.status.canary_revision;
        if hash == stable_hash {
            if let Some(old) = old {
                let name = self.dname(old);
                self.event(false, reasons::CANARY_ABANDONED, format!(
                    "The template matches stable revision {} again: canary {name} abandoned, all traffic on stable",
                    self.dname(stable)
                ));
                self.clear_canary();
                self.schedule_scale_down_now();
            }
            return;
        }
        if self.status.canary_template_hash.as_deref() == Some(hash.as_str()) && old.is_some() {
            return;
        }
        let revision = self.revision_for_template(stable.max(old.unwrap_or(0)));
        let name = self.dname(revision);
        match old {
            Some(old) => self.event(false, reasons::CANARY_SUPERSEDED, format!(
                "The template changed during the rollout: canary {} superseded by {name}, starting over from stable",
                self.dname(old)
            )),
            None => self.event(false, reasons::REVISION_CREATED, format!("New revision {name}: the canary starts at 0% of traffic")),
        }
        if old.is_some() {
            self.schedule_scale_down_now();
        }
        self.clear_canary();
        self.fresh_canary = true;
        self.status.canary_revision = Some(revision);
        self.status.canary_template_hash = Some(hash);
        self.status.current_step = Some(0);
        self.status.step_started_at = Some(Time(self.now));
    }

    fn clear_canary(&mut self) {
        let s = &mut self.status;
        s.canary_revision = None;
        s.canary_template_hash = None;
        s.current_step = None;
        s.step_progress = None;
        s.step_started_at = None;
        s.weights = Some(StepWeights {
            stable: 100,
            canary: 0,
        });
        s.analysis = None;
        s.abort = false;
        s.aborted_at = None;
        s.promote_full = false;
        s.promote_step = None;
        conditions::remove(&mut s.conditions, conditions::Type::Aborted);
        conditions::remove(&mut s.conditions, conditions::Type::AnalysisError);
        conditions::remove(&mut s.conditions, conditions::Type::Paused);
    }

    /// The steady state: the stable revision alone takes all traffic.
    fn steady(&mut self, stable: i64) {
        if self.status.abort {
            self.status.abort = false;
            self.event(
                false,
                reasons::NOTHING_TO_ABORT,
                "Abort requested, but no canary is in progress",
            );
        }
        self.status.promote_full = false;
        self.status.promote_step = None;
        let replicas = self.rollout.spec.replicas;
        self.ensure_revision(stable, replicas);
        self.desired_split = Some(vec![(self.sname(stable), 100)]);
        self.status.weights = Some(StepWeights {
            stable: 100,
            canary: 0,
        });
        if self.available(stable) {
            self.healthy(stable);
        } else {
            let msg = self.waiting_message(stable);
            self.status.phase = Some(Phase::Degraded);
            self.set_condition(
                conditions::Type::Available,
                false,
                reasons::REVISION_UNAVAILABLE,
                &msg,
            );
            self.status.message = Some(msg);
        }
    }

    fn healthy(&mut self, stable: i64) {
        let name = self.dname(stable);
        let msg = format!("Revision {name} takes all traffic");
        self.status.phase = Some(Phase::Healthy);
        // Every step is behind a Healthy rollout, so the STEP column reads `n/n`.
        let n = self.rollout.spec.steps().len();
        self.status.step_progress = Some(format!("{n}/{n}"));
        self.set_condition(
            conditions::Type::Available,
            true,
            reasons::REVISION_AVAILABLE,
            &msg,
        );
        self.set_condition(
            conditions::Type::Progressing,
            false,
            reasons::ROLLOUT_COMPLETE,
            &msg,
        );
        self.set_condition(
            conditions::Type::Completed,
            true,
            reasons::ROLLOUT_COMPLETE,
            &msg,
        );
        conditions::remove(&mut self.status.conditions, conditions::Type::Paused);
        self.status.message = Some(msg);
    }

    fn progressing(&mut self, message: &str) {
        self.status.phase = Some(Phase::Progressing);
        self.set_condition(
            conditions::Type::Progressing,
            true,
            reasons::ROLLOUT_PROGRESSING,
            message,
        );
        self.set_condition(
            conditions::Type::Completed,
            false,
            reasons::ROLLOUT_PROGRESSING,
            message,
        );
        conditions::remove(&mut self.status.conditions, conditions::Type::Paused);
        self.status.message = Some(message.to_string());
    }

    fn paused(&mut self, reason: &str, message: &str) {
        // An analysis pause's message counts the errors; one Event when it starts is enough
        // (each failed check has its own AnalysisError Event).
        let still_analysis_error = reason == reasons::ANALYSIS_ERROR
            && self.before.phase == Some(Phase::Paused)
            && conditions::reason_of(&self.before.conditions, conditions::Type::Paused)
                == Some(reason);
        if !still_analysis_error
            && (self.before.phase != Some(Phase::Paused)
                || !conditions::is_true_with(
                    &self.before.conditions,
                    conditions::Type::Paused,
                    message,
                ))
        {
            self.event(false, reasons::PAUSED, message.to_string());
        }
        self.status.phase = Some(Phase::Paused);
        self.set_condition(conditions::Type::Paused, true, reason, message);
        if reason != reasons::PROGRESS_DEADLINE_EXCEEDED {
            self.set_condition(
                conditions::Type::Progressing,
                true,
                reasons::ROLLOUT_PAUSED,
                message,
            );
        }
        self.set_condition(
            conditions::Type::Completed,
            false,
            reasons::ROLLOUT_PAUSED,
            message,
        );
        self.status.message = Some(message.to_string());
    }

    /// Reuses a revision above `floor` whose Deployment already has this template (one
    /// written before a crash lost the status write), else takes the next number after
    /// every known revision. Revision numbers only grow.
    fn revision_for_template(&self, floor: i64) -> i64 {
        let hash = &self.observed.template_hash;
        if let Some((rev, _)) = self
            .observed
            .revisions
            .iter()
            .find(|(rev, r)| &r.template_hash == hash && **rev > floor)
        {
            return *rev;
        }
        let max_seen = self.observed.revisions.keys().copied().max().unwrap_or(0);
        floor.max(max_seen) + 1
    }

    fn available(&self, revision: i64) -> bool {
        let want = self.rollout.spec.replicas;
        self.observed
            .revisions
            .get(&revision)
            .is_some_and(|r| r.replicas == want && r.available >= want)
    }

    fn waiting_message(&self, revision: i64) -> String {
        let available = self
            .observed
            .revisions
            .get(&revision)
            .map_or(0, |r| r.available);
        let mut msg = format!(
            "Waiting for {}: {available}/{} pods available",
            self.dname(revision),
            self.rollout.spec.replicas
        );
        if let Some(pods) = self
            .observed
            .revisions
            .get(&revision)
            .and_then(|r| r.pods.as_deref())
        {
            msg.push_str("; ");
            msg.push_str(pods);
        }
        msg
    }

    fn finish(mut self) -> Plan {
        let mut actions = Vec::new();
        let split_action = self.desired_split.take().and_then(|desired| {
            (self.observed.split.as_ref() != Some(&desired))
                .then_some(Action::WriteSplit { backends: desired })
        });
        let mut runs = Vec::new();
        if self.split_first {
            runs.extend(split_action.iter().map(|_| 1));
            actions.extend(split_action.clone());
        }
        let ensure = std::mem::take(&mut self.ensure);
        let at_once = independent(&ensure);
        let mut together = if at_once {
            vec![ensure.len()]
        } else {
            vec![1; ensure.len()]
        };
        actions.extend(ensure);
        if !self.split_first
            && let Some(split) = split_action
        {
            if at_once && self.split_joins_ensure(&split, &actions) {
                together[0] += 1;
            } else {
                together.push(1);
            }
            actions.push(split);
        }
        runs.extend(together.into_iter().filter(|n| *n > 0));
        let prune_history = actions.iter().any(|a| {
            matches!(a, Action::EnsureRevision { revision, .. }
                if crate::children::history_may_overflow(*revision))
        });
        let status_with_last_run = self.teardown.is_empty()
            && !prune_history
            && actions[actions.len() - runs.last().copied().unwrap_or(0)..]
                .iter()
                .all(|a| {
                    matches!(
                        a,
                        Action::EnsureRootService
                            | Action::EnsureRevision { .. }
                            | Action::RestoreRevision { .. }
                            | Action::ScaleRevision { .. }
                            | Action::WriteSplit { .. }
                    )
                });
        runs.extend(self.teardown.iter().map(|_| 1));
        actions.append(&mut self.teardown);
        let requeue_after = self.wake_at.map(|at| {
            let wait = at.duration_since(self.now).max(SignedDuration::ZERO);
            Duration::try_from(wait).unwrap_or(Duration::ZERO)
        });
        Plan {
            actions,
            status: self.status,
            events: self.events,
            requeue_after,
            inspect_pods: self.inspect_pods,
            runs,
            status_with_last_run,
            prune_history,
        }
    }

    /// Whether `split` may be written at once with the ensure actions already in `actions`:
    /// it sends no traffic to a Service they create, or no split exists yet (nothing is
    /// routed by it, as for a first revision).
    fn split_joins_ensure(&self, split: &Action, actions: &[Action]) -> bool {
        let Action::WriteSplit { backends } = split else {
            return false;
        };
        let created: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::EnsureRevision { revision, .. }
                | Action::RestoreRevision { revision, .. } => Some(self.sname(*revision)),
                _ => None,
            })
            .collect();
        self.observed.split.is_none()
            || backends
                .iter()
                .all(|(service, weight)| *weight == 0 || !created.contains(service))
    }
}

/// Whether ensure actions touch distinct objects with no order between them: the root
/// Service, and the revisions' objects, each revision at most once. Adoption steps are
/// ordered (label, then repoint), so a plan holding any is written one action at a time.
fn independent(ensure: &[Action]) -> bool {
    let mut revisions = std::collections::BTreeSet::new();
    ensure.iter().all(|a| match a {
        Action::EnsureRootService => true,
        Action::EnsureRevision { revision, .. }
        | Action::RestoreRevision { revision, .. }
        | Action::ScaleRevision { revision, .. } => revisions.insert(*revision),
        _ => false,
    })
}

/// `t + d`, saturating at the largest timestamp.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// The verdict of a check, defaulting to Error when it has none (a missing verdict is never a pass).
fn verdict_of(check: &AnalysisResult) -> Verdict {
    check.verdict.unwrap_or(Verdict::Error)
}

#[cfg(test)]
mod tests;
