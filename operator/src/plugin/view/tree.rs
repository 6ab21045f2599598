//! The tree of revisions → Deployments → Pods.

use super::{Inputs, SplitShare, seconds_since};
use crate::children::REVISION_LABEL;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a revision is to the Rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// The canary being delivered.
    Canary,
    /// The stable revision.
    Stable,
    /// A revision out of the split, waiting for its Deployment to be deleted.
    Retired,
}

/// One revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    /// The revision number.
    pub revision: i64,
    /// Canary, stable or retired.
    pub role: Role,
    /// `container=image` of its pod template.
    pub images: Vec<String>,
    /// Its share of traffic in the TrafficSplit, in percent (None when not in the split).
    pub traffic_percent: Option<f64>,
    /// Its Deployment, if it exists.
    pub deployment: Option<DeploymentView>,
    /// Its Pods.
    pub pods: Vec<PodView>,
}

/// A revision's Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    /// Its name, `name-vN`.
    pub name: String,
    /// Desired replicas.
    pub desired: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Available replicas.
    pub available: i32,
}

/// A Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    /// Its name.
    pub name: String,
    /// What kubectl shows in STATUS: Running, Pending, Terminating, a waiting reason…
    pub status: String,
    /// Ready containers / containers.
    pub ready: String,
    /// Container restarts.
    pub restarts: i32,
    /// The pod IP.
    pub ip: Option<String>,
    /// Seconds since it was created.
    pub age_seconds: Option<i64>,
}

/// The revisions of `inputs`, canary first, then stable, then retired ones newest first.
pub fn revisions(inputs: &Inputs, split: &[SplitShare], now: Timestamp) -> Vec<RevisionView> {
    let ro = &inputs.rollout;
    let status = ro.status.clone().unwrap_or_default();
    let mut numbers: BTreeSet<i64> = inputs
        .deployments
        .iter()
        .filter_map(|d| label_revision(d.metadata.labels.as_ref()))
        .collect();
    numbers.extend(status.stable_revision);
    numbers.extend(status.canary_revision);
    numbers.extend(split.iter().filter_map(|s| s.revision));
    let mut out: Vec<RevisionView> = numbers
        .into_iter()
        .map(|revision| {
            // Before the first revision is available nothing is stable yet; the revision
            // the split sends traffic to is the one becoming stable.
            let becoming_stable = status.stable_revision.is_none()
                && split
                    .iter()
                    .any(|s| s.revision == Some(revision) && s.percent > 0.0);
            let role = if Some(revision) == status.canary_revision {
                Role::Canary
            } else if Some(revision) == status.stable_revision || becoming_stable {
                Role::Stable
            } else {
                Role::Retired
            };
            let deployment_name = crate::plan::deployment_name(ro, revision);
            let deployment = inputs
                .deployments
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(deployment_name.as_str()));
            // The canary's template is the spec's, even before its Deployment exists.
            let template = deployment.map(|d| &d.spec.template).or(ro
                .spec
                .template
                .as_ref()
                .filter(|_| role == Role::Canary));
            let share: Vec<f64> = split
                .iter()
                .filter(|s| s.revision == Some(revision))
                .map(|s| s.percent)
                .collect();
            let mut pods: Vec<PodView> = inputs
                .pods
                .iter()
                .filter(|p| label_revision(p.metadata.labels.as_ref()) == Some(revision))
                .map(|p| pod_view(p, now))
                .collect();
            pods.sort_by(|a, b| a.name.cmp(&b.name));
            RevisionView {
                revision,
                role,
                images: template.map(images).unwrap_or_default(),
                traffic_percent: (!share.is_empty()).then(|| share.iter().sum()),
                deployment: deployment.map(deployment_view),
                pods,
            }
        })
        .collect();
    out.sort_by_key(|r| (r.role, std::cmp::Reverse(r.revision)));
    out
}

fn label_revision(labels: Option<&BTreeMap<String, String>>) -> Option<i64> {
    labels?.get(REVISION_LABEL)?.parse().ok()
}

fn images(template: &PodTemplateSpec) -> Vec<String> {
    template
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("<no image>")))
        .collect()
}

fn deployment_view(d: &Deployment) -> DeploymentView {
    let status = d.status.clone().unwrap_or_default();
    DeploymentView {
        name: d.metadata.name.clone().unwrap_or_default(),
        desired: d.spec.replicas.unwrap_or(1),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
    }
}

/// The STATUS kubectl would show: Terminating, a container's waiting or terminated reason, else the phase.
fn pod_view(p: &Pod, now: Timestamp) -> PodView {
    let status = p.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let total = p
        .spec
        .as_ref()
        .map_or(containers.len(), |s| s.containers.len());
    let ready = containers.iter().filter(|c| c.ready).count();
    let reason = containers.iter().find_map(|c| {
        let state = c.state.as_ref()?;
        state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
    });
    let shown = if p.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        reason
            .or(status.phase.clone())
            .unwrap_or_else(|| "Unknown".into())
    };
    PodView {
        name: p.metadata.name.clone().unwrap_or_default(),
        status: shown,
        ready: format!("{ready}/{total}"),
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        ip: status.pod_ip.clone(),
        age_seconds: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| seconds_since(t, now)),
    }
}
