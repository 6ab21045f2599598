//! The Deployment and ReplicaSet controllers' decisions, as pure functions:
//! which ReplicaSet is new, how far each ReplicaSet is scaled, which Pods go,
//! and what the status says. `now` is always an argument.
//!
//! ```text
//!   Deployment web ──owns──► ReplicaSet web-<hash> ──owns──► Pod web-<hash>-<5>
//!                   └─owns──► ReplicaSet web-<old>  (scaled down as new pods get ready)
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::names;

/// Label carrying a ReplicaSet's template hash, on it and its Pods.
pub const HASH_LABEL: &str = "pod-template-hash";
/// Annotation carrying a ReplicaSet's revision number.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Whether `meta` has a controller ownerReference to the object `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// `spec.replicas`, defaulting to 1.
pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1).max(0)
}

/// The revision recorded on a ReplicaSet, 0 when absent.
pub fn revision(rs: &ReplicaSet) -> u64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn with_hash(labels: Option<&BTreeMap<String, String>>, hash: &str) -> BTreeMap<String, String> {
    let mut labels = labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.into());
    labels
}

/// The ReplicaSet for the Deployment's current template, named
/// `<deploy>-<hash>`, owned by the Deployment, at `revision`.
pub fn new_replica_set(d: &Deployment, hash: &str, revision: u64) -> Option<ReplicaSet> {
    let spec = &d.spec;
    let name = names::replica_set_name(d.metadata.name.as_deref()?, hash);
    let mut template = spec.template.clone();
    let mut tmeta = template.metadata.take().unwrap_or_default();
    tmeta.labels = Some(with_hash(tmeta.labels.as_ref(), hash));
    template.metadata = Some(tmeta);
    let mut selector = spec.selector.clone();
    selector.match_labels = Some(with_hash(selector.match_labels.as_ref(), hash));
    Some(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: d.metadata.namespace.clone(),
            labels: Some(with_hash(
                spec.template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.as_ref()),
                hash,
            )),
            annotations: Some([(REVISION_ANNOTATION.to_string(), revision.to_string())].into()),
            owner_references: controller_ref("apps/v1", "Deployment", &d.metadata).map(|o| vec![o]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(desired_replicas(d)),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    })
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// Target replicas for the old ReplicaSets (`(name, current)`, newest
/// first): they keep only as many pods as the new one still lacks ready
/// ones, so serving capacity never drops during a replacement.
pub fn scale_old(d: &Deployment, new_ready: i32, old: &[(String, i32)]) -> Vec<(String, i32)> {
    let mut budget = if is_recreate(d) {
        0
    } else {
        (desired_replicas(d) - new_ready).max(0)
    };
    old.iter()
        .map(|(name, current)| {
            let keep = (*current).min(budget).max(0);
            budget -= keep;
            (name.clone(), keep)
        })
        .collect()
}

/// Whether a pod is live: not being deleted and not finished.
pub fn pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(cond.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether a pod is ready, and has been for `min_ready_seconds` by `now`.
pub fn pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .checked_add(SignedDuration::from_secs(min_ready_seconds.into()))
            .is_ok_and(|t| t <= now),
    }
}

/// Counts over a set of Pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    /// Live pods.
    pub replicas: i32,
    /// Live pods with condition Ready.
    pub ready: i32,
    /// Ready pods past `minReadySeconds`.
    pub available: i32,
}

// === impl PodCounts ===

impl PodCounts {
    /// Counts the live pods among `pods`.
    pub fn of<'a>(
        pods: impl IntoIterator<Item = &'a Pod>,
        min_ready_seconds: i32,
        now: Timestamp,
    ) -> Self {
        pods.into_iter()
            .filter(|p| pod_active(p))
            .fold(Self::default(), |mut c, p| {
                c.replicas += 1;
                c.ready += i32::from(ready_since(p).is_some());
                c.available += i32::from(pod_available(p, min_ready_seconds, now));
                c
            })
    }

    /// Element-wise sum.
    pub fn plus(self, other: Self) -> Self {
        Self {
            replicas: self.replicas + other.replicas,
            ready: self.ready + other.ready,
            available: self.available + other.available,
        }
    }
}

/// The ReplicaSet status for its live pods.
pub fn replica_set_status(rs: &ReplicaSet, counts: PodCounts) -> ReplicaSetStatus {
    ReplicaSetStatus {
        replicas: counts.replicas,
        fully_labeled_replicas: Some(counts.replicas),
        ready_replicas: Some(counts.ready),
        available_replicas: Some(counts.available),
        observed_generation: rs.metadata.generation,
        ..Default::default()
    }
}

/// The names of `n` pods to delete when scaling down: not-ready ones first,
/// then the newest.
pub fn pods_to_delete<'a>(pods: impl IntoIterator<Item = &'a Pod>, n: usize) -> Vec<String> {
    let mut live: Vec<&Pod> = pods.into_iter().filter(|p| pod_active(p)).collect();
    live.sort_by(|a, b| {
        let ra = ready_since(a).is_some();
        let rb = ready_since(b).is_some();
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        ra.cmp(&rb)
            .then(tb.cmp(&ta))
            .then(b.metadata.name.cmp(&a.metadata.name))
    });
    live.into_iter()
        .take(n)
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

/// A new Pod `name` from a ReplicaSet's template, owned by it; the
/// ServiceAccount defaults to `default`.
pub fn new_pod(rs: &ReplicaSet, name: String) -> Option<Pod> {
    let template: &PodTemplateSpec = rs.spec.template.as_ref()?;
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone()?;
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.service_account_name = Some("default".into());
    }
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            owner_references: controller_ref("apps/v1", "ReplicaSet", &rs.metadata)
                .map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// How many pods a Deployment's unavailability budget allows missing.
fn max_unavailable(d: &Deployment) -> i32 {
    let desired = desired_replicas(d);
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    if is_recreate(d) {
        return 0;
    }
    match ru.and_then(|r| r.max_unavailable.as_ref()) {
        Some(IntOrString::Int(n)) => i32::clamp(*n, 0, desired),
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            i32::try_from(i64::from(desired) * pct / 100)
                .unwrap_or(0)
                .clamp(0, desired)
        }
        None => desired / 4,
    }
}

fn condition(
    prev: Option<&DeploymentStatus>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    let status = if status { "True" } else { "False" };
    let old = prev
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_.as_deref() == Some(type_)));
    let transition = match old {
        Some(o) if o.status.as_deref() == Some(status) => o.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let update = match old {
        Some(o) if o.status.as_deref() == Some(status) && o.reason.as_deref() == Some(reason) => {
            o.last_update_time.clone()
        }
        _ => Some(Time(now)),
    };
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: transition,
        last_update_time: update,
    }
}

/// The Deployment status for the counts of all its pods (`all`) and of
/// the new ReplicaSet's pods (`updated`).
pub fn deployment_status(
    d: &Deployment,
    new_rs: &str,
    all: PodCounts,
    updated: PodCounts,
    now: Timestamp,
) -> DeploymentStatus {
    let prev = d.status.as_ref();
    let desired = desired_replicas(d);
    let available_ok = all.available >= desired - max_unavailable(d);
    let complete =
        updated.replicas == desired && updated.available == desired && all.replicas == desired;
    let available = if available_ok {
        condition(
            prev,
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            prev,
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    let progressing = if complete {
        condition(
            prev,
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_rs}\" has successfully progressed."),
            now,
        )
    } else {
        condition(
            prev,
            "Progressing",
            true,
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_rs}\" is progressing."),
            now,
        )
    };
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.replicas),
        updated_replicas: Some(updated.replicas),
        ready_replicas: Some(all.ready),
        available_replicas: Some(all.available),
        unavailable_replicas: Some((desired - all.available).max(0)),
        conditions: Some(vec![available, progressing]),
        collision_count: prev.and_then(|p| p.collision_count),
        terminating_replicas: None,
    }
}

/// Whether two statuses differ in anything but condition timestamps.
pub fn status_changed(old: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let strip = |s: &DeploymentStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    old.map(strip) != Some(strip(new))
}

#[cfg(test)]
mod tests;
