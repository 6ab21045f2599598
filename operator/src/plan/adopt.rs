//! Adoption: a Rollout with `spec.workloadRef` takes over a running Deployment (and
//! Service) as its first revision, with no pod restarted and no request dropped.
//!
//! ```text
//!  brief form:  deploy-v1 + svc-v1 exist ─► label both as revision 1, create root `svc`,
//!               split svc-v1 100; later revisions are deploy-v2 / svc-v2
//!  common form: foobar + foobar exist    ─► label foobar (Deployment) as revision 1, create
//!               Service foobar-v1 for its pods, split foobar-v1 100, and re-point Service
//!               foobar to the gateway once the gateway serves foobar-v1's ready endpoints
//! ```
//!
//! Only metadata is written to the adopted Deployment, never its pod template or selector.
//! What Weir adds is recorded so that deleting the Rollout hands it back: see [`hand_back`].

use super::{Action, Observed, Planner};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;
use weir_crds::Rollout;
pub use weir_crds::rollout::split_version;
use weir_crds::rollout::{AdoptionStatus, RolloutStatus, StepWeights, WorkloadRef};

/// The referenced Deployment and Service as observed (only for a Rollout with `spec.workloadRef`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdoptObserved {
    /// The Deployment `spec.workloadRef.name`, if it exists.
    pub deployment: Option<AdoptedDeployment>,
    /// The Service `spec.workloadRef.serviceName`, if named and it exists.
    pub service: Option<AdoptedService>,
    /// Whether the gateway serves the adopted revision's Service: a gateway pod is ready and
    /// the revision Service has ready endpoints (the common form re-points only then).
    pub gateway_ready: bool,
}

/// The Deployment to adopt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptedDeployment {
    /// The Rollout its `weir.dev/rollout` label names, if any.
    pub owner: Option<String>,
    /// The hash of its pod template (computed as for a Rollout's template).
    pub template_hash: String,
    /// Its pod template's labels: the adopted revision's Service selects on them.
    pub pod_labels: BTreeMap<String, String>,
    /// Desired replicas.
    pub replicas: i32,
    /// Available replicas.
    pub available: i32,
}

/// The Service named in `spec.workloadRef.serviceName`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptedService {
    /// The Rollout its `weir.dev/rollout` label names, if any.
    pub owner: Option<String>,
    /// Whether it already selects the gateway (it was re-pointed).
    pub repointed: bool,
}

/// How often a Rollout that is adopting looks again at what it waits for.
const ADOPTION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The names adoption gives: the adopted revision's number and Service, and the prefixes
/// later revisions follow. Names ending in `-v<N>` are followed, else `<rollout>-v<N>`.
pub fn names(
    rollout: &str,
    workload: &WorkloadRef,
    template_hash: &str,
) -> Result<AdoptionStatus, String> {
    let (deployment_prefix, revision) =
        split_version(&workload.name).map_or((rollout, 1), |(stem, n)| (stem, n));
    let mut status = AdoptionStatus {
        revision,
        deployment: workload.name.clone(),
        revision_service: format!("{rollout}-v{revision}"),
        revision_service_adopted: false,
        repointed_service: None,
        deployment_prefix: deployment_prefix.to_string(),
        service_prefix: rollout.to_string(),
        template_hash: template_hash.to_string(),
    };
    match workload.service_name.as_deref() {
        None => {}
        Some(service) => match split_version(service) {
            Some((stem, n)) if n == revision => {
                status.revision_service = service.to_string();
                status.revision_service_adopted = true;
                status.service_prefix = stem.to_string();
            }
            Some((_, n)) => {
                return Err(format!(
                    "spec.workloadRef names Deployment {} (revision {revision}) and Service {service} (revision {n}); the -v<N> suffixes must agree",
                    workload.name
                ));
            }
            None => status.repointed_service = Some(service.to_string()),
        },
    }
    Ok(status)
}

/// The name of revision N's Deployment: the adopted one, `<prefix>-vN` after adoption,
/// else `<rollout>-vN`.
pub fn deployment_name(rollout: &Rollout, revision: i64) -> String {
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    let adoption = rollout.status.as_ref().and_then(|s| s.adoption.as_ref());
    deployment_name_with(name, adoption, revision)
}

/// The name of revision N's Service (see [`deployment_name`]).
pub fn service_name(rollout: &Rollout, revision: i64) -> String {
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    let adoption = rollout.status.as_ref().and_then(|s| s.adoption.as_ref());
    service_name_with(name, adoption, revision)
}

/// [`deployment_name`] from the Rollout's name and its adoption record.
pub fn deployment_name_with(
    rollout: &str,
    adoption: Option<&AdoptionStatus>,
    revision: i64,
) -> String {
    match adoption {
        Some(a) if a.revision == revision => a.deployment.clone(),
        Some(a) => format!("{}-v{revision}", a.deployment_prefix),
        None => format!("{rollout}-v{revision}"),
    }
}

/// [`service_name`] from the Rollout's name and its adoption record.
pub fn service_name_with(
    rollout: &str,
    adoption: Option<&AdoptionStatus>,
    revision: i64,
) -> String {
    match adoption {
        Some(a) if a.revision == revision => a.revision_service.clone(),
        Some(a) => format!("{}-v{revision}", a.service_prefix),
        None => format!("{rollout}-v{revision}"),
    }
}

/// A write that hands an adopted object back when its Rollout is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandBack {
    /// Restore this Service's original selector and ports (kept in an annotation), and
    /// remove Weir's labels and annotations: clients reach the pods directly again.
    RestoreService(String),
    /// Remove Weir's labels and annotations from this Service (its selector was never changed).
    ReleaseService(String),
    /// Remove Weir's labels and annotations from this Deployment.
    ReleaseDeployment(String),
}

/// What deleting an adopting Rollout hands back, in order: the re-pointed Service first
/// (so clients bypass the gateway before the split goes), then the adopted Service and
/// Deployment, unless they were retired by a promotion (then they are gone).
pub fn hand_back(adoption: &AdoptionStatus, stable: Option<i64>) -> Vec<HandBack> {
    let mut out = Vec::new();
    if let Some(s) = &adoption.repointed_service {
        out.push(HandBack::RestoreService(s.clone()));
    }
    let retired = stable.is_some_and(|s| s != adoption.revision);
    if !retired {
        if adoption.revision_service_adopted {
            out.push(HandBack::ReleaseService(adoption.revision_service.clone()));
        }
        out.push(HandBack::ReleaseDeployment(adoption.deployment.clone()));
    }
    out
}

// === impl Planner (adoption) ===

/// Checks that the referenced Deployment (and Service) can be adopted by this Rollout;
/// returns the adoption's names and the Deployment, or what to fix (InvalidSpec).
pub(super) fn check(
    rollout: &Rollout,
    observed: &Observed,
    status: &RolloutStatus,
    workload: &WorkloadRef,
) -> Result<(AdoptionStatus, AdoptedDeployment), String> {
    let me = rollout.metadata.name.as_deref().unwrap_or_default();
    let found = observed.adoption.clone().unwrap_or_default();
    let Some(deployment) = found.deployment else {
        return Err(format!(
            "spec.workloadRef names Deployment {}, which does not exist in this namespace",
            workload.name
        ));
    };
    if let Some(other) = deployment.owner.as_deref().filter(|o| *o != me) {
        return Err(format!(
            "Deployment {} is already adopted by Rollout {other}; a Deployment can belong to one Rollout only",
            workload.name
        ));
    }
    if let Some(service) = &workload.service_name {
        let Some(found_service) = &found.service else {
            return Err(format!(
                "spec.workloadRef.serviceName names Service {service}, which does not exist in this namespace"
            ));
        };
        if let Some(other) = found_service.owner.as_deref().filter(|o| *o != me) {
            return Err(format!(
                "Service {service} is already adopted by Rollout {other}; a Service can belong to one Rollout only"
            ));
        }
    }
    if deployment.replicas != rollout.spec.replicas {
        return Err(format!(
            "spec.replicas is {} but Deployment {} runs {}; set spec.replicas to {} so that adoption stops no pod",
            rollout.spec.replicas, workload.name, deployment.replicas, deployment.replicas
        ));
    }
    let adoption = match status.adoption.clone() {
        Some(a) if a.deployment == workload.name => a,
        _ => names(me, workload, &deployment.template_hash)?,
    };
    Ok((adoption, deployment))
}

/// Labels the adopted Deployment and Service, makes the revision Service and the split,
/// re-points the user's Service (common form) once the gateway serves the pods, and then
/// records the adopted revision as stable.
pub(super) fn take_over(
    p: &mut Planner<'_>,
    adoption: &AdoptionStatus,
    deployment: &AdoptedDeployment,
) {
    p.status.adoption = Some(adoption.clone());
    let observed = p.observed.adoption.clone().unwrap_or_default();
    let me = p.name().to_string();
    let revision = adoption.revision;
    let labelled = deployment.owner.as_deref() == Some(me.as_str())
        && p.observed.revisions.contains_key(&revision);
    if !labelled {
        p.ensure.push(Action::AdoptDeployment {
            name: adoption.deployment.clone(),
            revision,
            template_hash: adoption.template_hash.clone(),
        });
    }
    let has_service = p.observed.services.contains(&revision);
    if !has_service {
        p.ensure.push(if adoption.revision_service_adopted {
            Action::AdoptService {
                name: adoption.revision_service.clone(),
                revision,
            }
        } else {
            Action::EnsureAdoptedService {
                name: adoption.revision_service.clone(),
                revision,
                selector: deployment.pod_labels.clone(),
            }
        });
    }
    let desired = vec![(adoption.revision_service.clone(), 100)];
    let split_ready = p.observed.split.as_ref() == Some(&desired);
    p.desired_split = Some(desired);
    p.status.weights = Some(StepWeights {
        stable: 100,
        canary: 0,
    });
    let available = deployment.available >= deployment.replicas
        && deployment.replicas == p.rollout.spec.replicas;
    let repointed = observed.service.as_ref().is_some_and(|s| s.repointed);
    let wait = if !labelled || !has_service {
        "labelling it and its Service".to_string()
    } else if !available {
        format!(
            "{}/{} pods available",
            deployment.available, deployment.replicas
        )
    } else if !split_ready {
        "the TrafficSplit".to_string()
    } else if let Some(root) = adoption.repointed_service.as_ref().filter(|_| !repointed) {
        if observed.gateway_ready {
            p.ensure.push(Action::RepointService { name: root.clone() });
            format!("Service {root} to select the gateway")
        } else {
            format!(
                "the gateway to serve {}'s ready endpoints before Service {root} is re-pointed to it",
                adoption.revision_service
            )
        }
    } else {
        String::new()
    };
    if wait.is_empty() {
        p.status.stable_revision = Some(revision);
        p.status.stable_template_hash = Some(adoption.template_hash.clone());
        p.status.scale_down_at = None::<Time>;
        p.healthy(revision);
        p.event(
            false,
            "Adopted",
            format!(
                "Adopted Deployment {} as revision {revision} with no pod restarted; it takes all traffic through {}",
                adoption.deployment, adoption.revision_service
            ),
        );
    } else {
        let message = format!(
            "Adopting Deployment {}: waiting for {wait}",
            adoption.deployment
        );
        p.progressing(&message);
        // What adoption waits for (the adopted pods, the gateway's endpoints) is not owned by
        // the Rollout, so no watch event wakes it: look again soon.
        p.wake_at(super::after(p.now, ADOPTION_POLL));
    }
}
