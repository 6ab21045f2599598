//! Hand-built Rollouts and a harness that applies plans to a pretend cluster.

use super::super::*;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use weir_crds::RolloutSpec;
use weir_crds::rollout::{
    AnalysisSpec, AnalysisStep, PauseStep, Step, Strategy, SuccessRateCheck, Verdict,
};

pub fn weight(w: i32) -> Step {
    Step {
        set_weight: Some(w),
        ..Step::default()
    }
}
pub fn pause() -> Step {
    Step {
        pause: Some(PauseStep::default()),
        ..Step::default()
    }
}
pub fn pause_for(d: &str) -> Step {
    Step {
        pause: Some(PauseStep {
            duration: Some(d.into()),
        }),
        ..Step::default()
    }
}
pub fn analysis() -> Step {
    Step {
        analysis: Some(AnalysisStep::default()),
        ..Step::default()
    }
}
pub fn analysis_checks(k: i32) -> Step {
    Step {
        analysis: Some(AnalysisStep { checks: Some(k) }),
        ..Step::default()
    }
}
pub fn steps_basic() -> Vec<Step> {
    vec![weight(10), analysis(), weight(100)]
}
pub fn split(b: &[(&str, i32)]) -> Vec<(String, i32)> {
    b.iter().map(|(s, w)| (s.to_string(), *w)).collect()
}

pub fn template(version: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), "foobar".to_string())].into()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some(format!("weir-demo:{version}")),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

pub fn rollout(steps: Vec<Step>) -> Rollout {
    let mut ro = Rollout::new(
        "foobar",
        RolloutSpec {
            service: None,
            replicas: 3,
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), "foobar".to_string())].into()),
                ..LabelSelector::default()
            },
            template: Some(template("v1")),
            workload_ref: None,
            strategy: Some(Strategy {
                steps: Some(steps),
                analysis: Some(AnalysisSpec {
                    success_rate: Some(SuccessRateCheck { min: 99.0 }),
                    ..AnalysisSpec::default()
                }),
            }),
            progress_deadline: None,
            scale_down_delay: None,
            paused: false,
        },
    );
    ro.metadata.namespace = Some("default".into());
    ro.metadata.generation = Some(1);
    ro
}

/// A Rollout, a pretend cluster, and a clock.
pub struct Harness {
    pub rollout: Rollout,
    pub obs: Observed,
    pub now: Timestamp,
    /// Whether Deployments become available as soon as they are written.
    pub available_on_create: bool,
}

impl Harness {
    pub fn new(steps: Vec<Step>) -> Self {
        let rollout = rollout(steps);
        let obs = Observed {
            template_hash: template_hash(rollout.spec.template.as_ref().unwrap()),
            ..Observed::default()
        };
        Self {
            rollout,
            obs,
            now: Timestamp::from_second(1_700_000_000).unwrap(),
            available_on_create: true,
        }
    }

    /// A Rollout whose first revision is Healthy.
    pub fn healthy(steps: Vec<Step>) -> Self {
        let mut h = Self::new(steps);
        h.step();
        h.step();
        assert_eq!(h.phase(), Phase::Healthy);
        h
    }

    /// A Rollout whose canary v2 has been created and taken to its first waiting step.
    pub fn in_canary(steps: Vec<Step>) -> Self {
        let mut h = Self::healthy(steps);
        h.change_template("v2");
        h.step();
        h.step();
        h
    }

    /// One reconcile as the controller runs it: plans, applies the actions and the status,
    /// and plans again while the plan asks to continue at once (a weight change yields).
    /// Returns every action and Event made, with the last status and requeue.
    pub fn step(&mut self) -> Plan {
        let mut all: Option<Plan> = None;
        for _ in 0..20 {
            let p = plan(&self.rollout, &self.obs, self.now);
            self.apply_actions_only(&p);
            self.rollout.status = Some(p.status.clone());
            self.obs.check = None;
            let again = p.requeue_after == Some(Duration::ZERO);
            all = Some(match all {
                None => p,
                Some(mut acc) => {
                    acc.actions.extend(p.actions);
                    acc.events.extend(p.events);
                    acc.status = p.status;
                    acc.requeue_after = p.requeue_after;
                    acc
                }
            });
            if !again {
                break;
            }
        }
        all.unwrap()
    }

    /// Applies a plan's writes to the pretend cluster, as if the status write was lost.
    pub fn apply_actions_only(&mut self, p: &Plan) {
        for a in &p.actions {
            match a {
                Action::EnsureRootService => self.obs.root_service = true,
                Action::EnsureRevision { revision, replicas } => {
                    let running = self
                        .obs
                        .revisions
                        .get(revision)
                        .filter(|r| r.template_hash == self.obs.template_hash);
                    let already = running.map_or(0, |r| r.available.min(*replicas));
                    let available = if self.available_on_create {
                        *replicas
                    } else {
                        already
                    };
                    let created_at = running.map_or(Some(self.now), |r| r.created_at);
                    let state = RevisionState {
                        template_hash: self.obs.template_hash.clone(),
                        replicas: *replicas,
                        available,
                        created_at,
                        pods: None,
                    };
                    self.obs.revisions.insert(*revision, state);
                    self.obs.services.insert(*revision);
                }
                Action::RestoreRevision { revision, replicas } => {
                    let state = RevisionState {
                        template_hash: self.status().stable_template_hash.unwrap_or_default(),
                        replicas: *replicas,
                        available: if self.available_on_create {
                            *replicas
                        } else {
                            0
                        },
                        created_at: Some(self.now),
                        pods: None,
                    };
                    self.obs.revisions.insert(*revision, state);
                    self.obs.services.insert(*revision);
                }
                Action::ScaleRevision { revision, replicas } => {
                    if let Some(r) = self.obs.revisions.get_mut(revision) {
                        r.replicas = *replicas;
                        r.available = r.available.min(*replicas);
                        if self.available_on_create {
                            r.available = *replicas;
                        }
                    }
                }
                Action::WriteSplit { backends } => self.obs.split = Some(backends.clone()),
                Action::DeleteService { revision } => {
                    self.obs.services.remove(revision);
                }
                Action::DeleteDeployment { revision } => {
                    self.obs.revisions.remove(revision);
                }
                Action::AdoptDeployment {
                    revision,
                    template_hash,
                    ..
                } => {
                    let me = self.rollout.metadata.name.clone();
                    let adoption = self.obs.adoption.as_mut().unwrap();
                    let d = adoption.deployment.as_mut().unwrap();
                    d.owner = me;
                    let state = RevisionState {
                        template_hash: template_hash.clone(),
                        replicas: d.replicas,
                        available: d.available,
                        created_at: None,
                        pods: None,
                    };
                    self.obs.revisions.insert(*revision, state);
                }
                Action::AdoptService { revision, .. } => {
                    let me = self.rollout.metadata.name.clone();
                    let adoption = self.obs.adoption.as_mut().unwrap();
                    adoption.service.as_mut().unwrap().owner = me;
                    self.obs.services.insert(*revision);
                }
                Action::EnsureAdoptedService { revision, .. } => {
                    self.obs.services.insert(*revision);
                }
                Action::RepointService { .. } => {
                    let me = self.rollout.metadata.name.clone();
                    let adoption = self.obs.adoption.as_mut().unwrap();
                    let s = adoption.service.as_mut().unwrap();
                    s.owner = me;
                    s.repointed = true;
                }
            }
        }
    }

    pub fn status(&self) -> RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }
    /// The status condition of this type; panics when there is none.
    pub fn condition(
        &self,
        type_: &str,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        let found = self
            .status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_);
        found.unwrap_or_else(|| panic!("no {type_} condition in {:?}", self.status().conditions))
    }
    pub fn phase(&self) -> Phase {
        self.status().phase.unwrap()
    }
    pub fn split(&self) -> Vec<(String, i32)> {
        self.obs.split.clone().unwrap()
    }
    pub fn tick(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap();
    }
    pub fn change_template(&mut self, version: &str) {
        self.rollout.spec.template = Some(template(version));
        self.obs.template_hash = template_hash(self.rollout.spec.template.as_ref().unwrap());
    }
    pub fn make_available(&mut self, revision: i64) {
        let r = self.obs.revisions.get_mut(&revision).unwrap();
        r.available = r.replicas;
    }
    pub fn check(&mut self, verdict: Verdict) {
        self.check_with(Some(verdict));
    }
    pub fn check_with(&mut self, verdict: Option<Verdict>) {
        let message = match verdict {
            Some(Verdict::Fail) => "Halt: success rate 91.2% < 99%".to_string(),
            other => format!("{other:?}"),
        };
        self.obs.check = Some(AnalysisResult {
            success_rate: Some(99.5),
            requests: Some(100),
            verdict,
            message: Some(message),
            at: Some(Time(self.now)),
            ..AnalysisResult::default()
        });
    }
    pub fn promote(&mut self) {
        let step = self.status().current_step;
        self.set_status(|s| s.promote_step = step);
    }
    pub fn set_status(&mut self, f: impl FnOnce(&mut RolloutStatus)) {
        let mut s = self.status();
        f(&mut s);
        self.rollout.status = Some(s);
    }
}
