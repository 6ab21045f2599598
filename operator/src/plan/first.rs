//! The first revision: it takes all traffic once available, or the Rollout is Degraded
//! when its pods are not available within `progressDeadline`.

use super::*;

impl Planner<'_> {
    /// The first revision has nothing to canary against: it takes all traffic once
    /// available. Pods that are not available within `progressDeadline` of its
    /// Deployment's creation make the Rollout Degraded, saying what the pods report.
    pub(super) fn first_revision(&mut self, settings: &Settings) {
        let revision = self.revision_for_template(0);
        let replicas = self.rollout.spec.replicas;
        self.ensure_revision(revision, replicas);
        self.desired_split = Some(vec![(self.sname(revision), 100)]);
        self.status.weights = Some(StepWeights {
            stable: 100,
            canary: 0,
        });
        if self.available(revision) {
            self.status.stable_revision = Some(revision);
            self.status.stable_template_hash = Some(self.observed.template_hash.clone());
            self.healthy(revision);
            let name = self.dname(revision);
            self.event(
                false,
                reasons::AVAILABLE,
                format!("First revision {name} is available and takes all traffic"),
            );
        } else {
            let msg = self.waiting_message(revision);
            let created = self
                .observed
                .revisions
                .get(&revision)
                .and_then(|r| r.created_at);
            match created.map(|at| after(at, settings.progress_deadline)) {
                Some(deadline) if self.now >= deadline => {
                    self.first_revision_stuck(revision, settings, &msg)
                }
                Some(deadline) => {
                    self.wake_at(deadline);
                    self.progressing(&msg);
                }
                None => self.progressing(&msg),
            }
        }
    }

    /// The first revision missed its deadline: Degraded, as Argo Rollouts does, with the
    /// pods' own account of why (and one Warning Event when it happens).
    pub(super) fn first_revision_stuck(
        &mut self,
        revision: i64,
        settings: &Settings,
        waiting: &str,
    ) {
        self.want_pods(revision);
        let limit = weir_crds::duration::format_duration(settings.progress_deadline);
        let msg = format!("No progress for {limit} (spec.progressDeadline): {waiting}");
        let newly =
            conditions::reason_of_any(&self.before.conditions, conditions::Type::Progressing)
                != Some(reasons::PROGRESS_DEADLINE_EXCEEDED);
        if newly {
            self.event(true, reasons::PROGRESS_DEADLINE_EXCEEDED, msg.clone());
        }
        self.status.phase = Some(Phase::Degraded);
        self.set_condition(
            conditions::Type::Progressing,
            false,
            reasons::PROGRESS_DEADLINE_EXCEEDED,
            &msg,
        );
        self.set_condition(
            conditions::Type::Completed,
            false,
            reasons::PROGRESS_DEADLINE_EXCEEDED,
            &msg,
        );
        conditions::remove(&mut self.status.conditions, conditions::Type::Paused);
        self.status.message = Some(msg);
    }

    /// Asks the controller for what revision's pods report, unless it is already known.
    pub(super) fn want_pods(&mut self, revision: i64) {
        let known = self
            .observed
            .revisions
            .get(&revision)
            .is_some_and(|r| r.pods.is_some());
        if !known {
            self.inspect_pods = Some(revision);
        }
    }
}
