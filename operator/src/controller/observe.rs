//! Gathers what exists for a Rollout into the planner's `Observed`.

use super::{Context, Error, kube_err};
use crate::children::{REVISION_LABEL, ROLLOUT_LABEL, TEMPLATE_HASH_ANNOTATION, split_name};
use crate::plan::{Observed, RevisionState, check_due, template_hash};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use weir_crds::Rollout;
use weir_crds::model::{SmiObject, normalise};

/// Reads the Rollout's children and split from the watch caches, and runs a check when
/// one is due. The only request it may make is a GET of the root Service when the cache
/// has no Weir Service of that name (to tell a conflict from a missing Service).
pub async fn gather(
    rollout: &Rollout,
    ctx: &Context,
    ns: &str,
    now: Timestamp,
) -> Result<Observed, Error> {
    let name = rollout.name_any();
    let status = rollout.status.clone().unwrap_or_default();
    // Only while adopting (no stable revision yet): the referenced objects are read directly,
    // since they are not Weir's and so not in the caches until labelled.
    let adoption = match status.stable_revision {
        None => {
            let revision_service = status
                .adoption
                .as_ref()
                .map(|a| a.revision_service.as_str());
            super::adopt::gather(rollout, ctx, ns, revision_service).await?
        }
        Some(_) => None,
    };
    // A Rollout that adopts has no template: its revision's template is the adopted one's.
    let hash = match (&rollout.spec.template, &status.adoption, &adoption) {
        (Some(t), _, _) => template_hash(t),
        (None, Some(a), _) => a.template_hash.clone(),
        (None, None, Some(found)) => found
            .deployment
            .as_ref()
            .map(|d| d.template_hash.clone())
            .unwrap_or_default(),
        (None, None, None) => String::new(),
    };
    let mut observed = Observed {
        template_hash: hash,
        adoption,
        ..Observed::default()
    };
    for d in ctx.stores.rollout_deployments(ns, &name) {
        let Some(revision) = revision_of(&d.labels().get(REVISION_LABEL).cloned()) else {
            continue;
        };
        if d.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let state = RevisionState {
            template_hash: d
                .annotations()
                .get(TEMPLATE_HASH_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
            replicas: d.replicas.unwrap_or(1),
            available: d.available_replicas.unwrap_or(0),
            created_at: d.metadata.creation_timestamp.as_ref().map(|t| t.0),
            pods: None,
        };
        observed.revisions.insert(revision, state);
    }
    let root = rollout.root_service_name();
    for s in ctx.stores.rollout_services(ns, &name) {
        if s.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if s.name_any() == root {
            observed.root_service = true;
        } else if let Some(revision) = revision_of(&s.labels().get(REVISION_LABEL).cloned()) {
            observed.services.insert(revision);
        }
    }
    if !observed.root_service {
        let other = match ctx.stores.service(ns, &root) {
            Some(svc) => Some(svc),
            None => {
                let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
                services
                    .get_opt(&root)
                    .await
                    .map_err(kube_err("get the root Service"))?
                    .map(std::sync::Arc::new)
            }
        };
        // The Service the Rollout adopts (common form) is its root: not a conflict.
        let adopted = rollout
            .spec
            .workload_ref
            .as_ref()
            .and_then(|w| w.service_name.as_deref())
            .or(status
                .adoption
                .as_ref()
                .and_then(|a| a.repointed_service.as_deref()))
            == Some(root.as_str());
        if adopted && other.is_some() {
            observed.root_service = true;
        } else if let Some(svc) = other {
            // It is not this Rollout's: another Rollout's, or not Weir's at all.
            observed.root_service = true;
            observed.root_service_conflict = Some(match svc.labels().get(ROLLOUT_LABEL) {
                Some(other) => format!("Rollout {other}"),
                None => "a Service that Weir does not manage".to_string(),
            });
        }
    }
    if let Some(split) = ctx.stores.split(ns, &split_name(rollout)) {
        observed.split = split_backends(&split, ns);
    }
    if check_due(rollout, now)
        && let Some(canary) = rollout.status.as_ref().and_then(|s| s.canary_revision)
    {
        let stable = rollout.status.as_ref().and_then(|s| s.stable_revision);
        observed.check = Some(ctx.analyst.check(rollout, canary, stable, now).await);
    }
    Ok(observed)
}

/// Reads what revision `revision`'s pods report into `observed` (the plan asked, because the
/// revision is stuck past its progress deadline). This LIST is the one read outside the
/// caches, made only for a stuck revision, so a healthy Rollout never pays for it.
pub async fn pod_report(
    rollout: &Rollout,
    ctx: &Context,
    ns: &str,
    revision: i64,
    observed: &mut Observed,
) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!(
        "{ROLLOUT_LABEL}={},{REVISION_LABEL}={revision}",
        rollout.name_any()
    );
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err(format!("list the pods of revision {revision}")))?;
    let report = crate::plan::pods::describe(&list.items);
    if let Some(state) = observed.revisions.get_mut(&revision) {
        state.pods = Some(report);
    }
    Ok(())
}

fn revision_of(label: &Option<String>) -> Option<i64> {
    label.as_deref().and_then(|v| v.parse().ok())
}

/// The split's backends in percent; a split that is not whole percents reads as (-1) so it is rewritten.
fn split_backends(split: &DynamicObject, ns: &str) -> Option<Vec<(String, i32)>> {
    let value = serde_json::to_value(split).ok()?;
    match normalise(&value, ns) {
        Ok(SmiObject::Split(s)) => Some(
            s.backends
                .iter()
                .map(|b| {
                    let whole = b.weight_millis % 1000 == 0;
                    let w = i32::try_from(b.weight_millis / 1000)
                        .ok()
                        .filter(|_| whole)
                        .unwrap_or(-1);
                    (b.service.clone(), w)
                })
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}
