//! Revisions' Deployments: ensure, keep, scale, and retire the ones no longer needed.

use super::*;

impl Planner<'_> {
    /// Ensures a revision built from `spec.template` runs with `replicas`.
    pub(super) fn ensure_revision(&mut self, revision: i64, replicas: i32) {
        let current = self.observed.revisions.get(&revision);
        let hash_ok = current.is_some_and(|r| r.template_hash == self.observed.template_hash);
        if !hash_ok
            || current.is_some_and(|r| r.replicas != replicas)
            || !self.observed.services.contains(&revision)
        {
            self.ensure
                .push(Action::EnsureRevision { revision, replicas });
        }
    }

    /// Keeps a revision whose template is no longer in the spec running with `replicas`:
    /// re-creates it (Deployment and Service) from its kept template when its Deployment
    /// is gone, else scales it.
    pub(super) fn keep_revision(&mut self, revision: i64, replicas: i32) {
        if !self.observed.revisions.contains_key(&revision) {
            self.ensure
                .push(Action::RestoreRevision { revision, replicas });
        } else {
            self.scale_revision(revision, replicas);
        }
    }

    /// Scales an existing revision (one whose template is no longer in the spec).
    pub(super) fn scale_revision(&mut self, revision: i64, replicas: i32) {
        if self
            .observed
            .revisions
            .get(&revision)
            .is_some_and(|r| r.replicas != replicas)
        {
            let action = Action::ScaleRevision { revision, replicas };
            if replicas == 0 {
                self.teardown.push(action);
            } else {
                self.ensure.push(action);
            }
        }
    }

    pub(super) fn schedule_scale_down_now(&mut self) {
        let delay = self
            .rollout
            .spec
            .scale_down_delay()
            .unwrap_or(Duration::from_secs(30));
        self.status.scale_down_at = Some(Time(after(self.now, delay)));
    }

    /// Removes revisions that are neither stable nor canary: their Services at once (they
    /// are out of the split), their Deployments at `scaleDownAt`.
    pub(super) fn retire(&mut self, settings: &Settings) {
        let keep: BTreeSet<i64> = [self.status.stable_revision, self.status.canary_revision]
            .into_iter()
            .flatten()
            .collect();
        let in_split: BTreeSet<String> = self
            .desired_split
            .iter()
            .flatten()
            .map(|(svc, _)| svc.clone())
            .collect();
        let old_services: Vec<i64> = self
            .observed
            .services
            .iter()
            .copied()
            .filter(|r| !keep.contains(r) && !in_split.contains(&self.sname(*r)))
            .collect();
        for revision in old_services {
            self.teardown.push(Action::DeleteService { revision });
        }
        let old_deployments: Vec<i64> = self
            .observed
            .revisions
            .keys()
            .copied()
            .filter(|r| !keep.contains(r))
            .collect();
        if old_deployments.is_empty() || self.status.stable_revision.is_none() {
            self.status.scale_down_at = None;
            return;
        }
        let at = match &self.status.scale_down_at {
            Some(t) => t.0,
            None => {
                let at = after(self.now, settings.scale_down_delay);
                self.status.scale_down_at = Some(Time(at));
                at
            }
        };
        if self.now >= at {
            for revision in old_deployments {
                let name = self.dname(revision);
                self.event(
                    false,
                    reasons::REVISION_RETIRED,
                    format!("Deleted the Deployment of retired revision {name}"),
                );
                self.teardown.push(Action::DeleteDeployment { revision });
            }
            self.status.scale_down_at = None;
        } else {
            self.wake_at(at);
        }
    }
}
