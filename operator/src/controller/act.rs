//! Carries a plan out: server-side apply of children, deletes, Events and the status.

use super::expect::Want;
use super::write::Writer;
use super::{Context, Error, FIELD_MANAGER, adopt, kube_err, observe, split_resource};
use crate::children;
use crate::plan::{Plan, plan, revision_name};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};
use std::time::Duration;
use weir_crds::Rollout;

/// Observes, plans and acts for a Rollout that exists and carries the finalizer.
pub async fn reconcile_apply(rollout: &Rollout, ctx: &Context) -> Result<Action, Error> {
    let ns = rollout.namespace().ok_or(Error::NoNamespace)?;
    if ctx.config.gateway {
        ensure_gateway(ctx, &ns).await?;
    }
    let now = Timestamp::now();
    let mut observed = observe::gather(rollout, ctx, &ns, now).await?;
    let mut p = plan(rollout, &observed, now);
    if let Some(revision) = p.inspect_pods {
        observe::pod_report(rollout, ctx, &ns, revision, &mut observed).await?;
        p = plan(rollout, &observed, now);
    }
    if let Some(check) = &observed.check {
        let verdict = check
            .verdict
            .map_or("Missing".to_string(), |v| format!("{v:?}"));
        let labels = crate::metrics::PhaseLabels {
            namespace: ns.clone(),
            rollout: rollout.name_any(),
            phase: verdict,
        };
        ctx.metrics.checks.get_or_create(&labels).inc();
    }
    execute(rollout, ctx, &ns, &p).await?;
    let phase = p
        .status
        .phase
        .map_or("Unknown".to_string(), |ph| format!("{ph:?}"));
    let weight = p.status.weights.map_or(0, |w| w.canary);
    ctx.metrics
        .record_rollout(&ns, &rollout.name_any(), &phase, weight);
    let wait = p
        .requeue_after
        .unwrap_or(ctx.config.resync)
        .clamp(Duration::from_millis(200), ctx.config.resync);
    Ok(Action::requeue(wait))
}

/// Writes the plan's actions in order, each run of independent ones at once, then the
/// status (at once with the last run when the plan allows it), then queues its Events.
async fn execute(rollout: &Rollout, ctx: &Context, ns: &str, p: &Plan) -> Result<(), Error> {
    let w = Writer::new(rollout, ctx, ns, p);
    let mut runs = Vec::with_capacity(p.runs.len());
    let mut rest = p.actions.as_slice();
    for n in &p.runs {
        let (run, after) = rest.split_at((*n).min(rest.len()));
        runs.push(run);
        rest = after;
    }
    runs.extend(rest.chunks(1));
    let with_status = if p.status_with_last_run {
        runs.pop()
    } else {
        None
    };
    for run in runs {
        futures::future::try_join_all(run.iter().map(|a| w.write(a))).await?;
    }
    match with_status {
        // The planner never lets the status go with a run when history needs pruning.
        Some(run) => {
            futures::try_join!(
                futures::future::try_join_all(run.iter().map(|a| w.write(a))),
                write_status(rollout, ctx, ns, p)
            )?;
        }
        None => {
            if p.prune_history {
                let revisions: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
                prune(&revisions, rollout, p).await?;
            }
            write_status(rollout, ctx, ns, p).await?;
        }
    }
    let reference = rollout.object_ref(&());
    for e in &p.events {
        let event = Event {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.into(),
            note: Some(e.message.clone()),
            action: event_action(e.reason, &e.message),
            secondary: None,
        };
        tracing::info!(reason = e.reason, message = %e.message, "event");
        ctx.recorder.record(event, reference.clone()).await;
    }
    Ok(())
}

/// Deletes the ControllerRevisions beyond the history limit (never stable's or canary's).
async fn prune(
    revisions: &Api<ControllerRevision>,
    rollout: &Rollout,
    p: &Plan,
) -> Result<(), Error> {
    let selector = ListParams::default().labels(&format!(
        "{}={}",
        children::ROLLOUT_LABEL,
        rollout.name_any()
    ));
    let kept: Vec<i64> = revisions
        .list(&selector)
        .await
        .map_err(kube_err("list ControllerRevisions"))?
        .items
        .iter()
        .filter_map(|r| r.revision)
        .collect();
    let keep: Vec<i64> = [p.status.stable_revision, p.status.canary_revision]
        .into_iter()
        .flatten()
        .collect();
    for revision in children::history_to_prune(&kept, &keep) {
        delete_opt(revisions, &revision_name(&rollout.name_any(), revision)).await?;
    }
    Ok(())
}

/// The Event's `action`: the reason plus a hash of the message. The recorder folds Events
/// with the same action into one series, so only repeats of the same message are folded.
fn event_action(reason: &str, message: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in message.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{reason}-{hash:08x}")
}

async fn write_status(rollout: &Rollout, ctx: &Context, ns: &str, p: &Plan) -> Result<(), Error> {
    let json_err = |source| Error::Json {
        what: "status".into(),
        source,
    };
    let old = serde_json::to_value(rollout.status.clone().unwrap_or_default()).map_err(json_err)?;
    let new = serde_json::to_value(&p.status).map_err(json_err)?;
    let Some(diff) = merge_diff(&old, &new) else {
        return Ok(());
    };
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), ns);
    let written = api
        .patch_status(
            &rollout.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": diff })),
        )
        .await
        .map_err(kube_err("patch the Rollout status"))?;
    expect_version(ctx, ns, &rollout.name_any(), "Rollout", &written);
    Ok(())
}

/// The JSON merge patch that turns `old` into `new` (None when equal). Only changed keys are
/// sent, so a field the plugin wrote meanwhile survives unless the controller changed it too.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ => (old != new).then(|| new.clone()),
    }
}

/// Records that the cache should come to show `written`, the answer to a write.
pub(super) fn expect_version<K: Resource>(
    ctx: &Context,
    ns: &str,
    rollout: &str,
    kind: &'static str,
    written: &K,
) {
    if let Some(rv) = written.meta().resource_version.clone() {
        let name = written.meta().name.clone().unwrap_or_default();
        ctx.expectations
            .expect(ns, rollout, kind, &name, Want::Version(rv.clone()));
        // Checked after recording, so an event that passes meanwhile is caught either here
        // or by the watch: else the Rollout would wait out the expectation's TTL.
        if ctx.stores.resource_version(kind, ns, &name).as_deref() == Some(rv.as_str()) {
            ctx.expectations.already_seen(ns, rollout, kind, &name, &rv);
        }
    }
}

/// Deletes `name`; true when it existed.
pub(super) async fn delete_opt<K>(api: &Api<K>, name: &str) -> Result<bool, Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(kube_err(format!("delete {name}"))(e)),
    }
}

/// Ensures the namespace's gateway ServiceAccount and Deployment: each is applied only
/// when the cache has none or it differs in a field Weir sets. `replicas` is not among
/// them, so `kubectl scale` or an autoscaler keeps the count it sets.
async fn ensure_gateway(ctx: &Context, ns: &str) -> Result<(), Error> {
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let mut bind = false;
    if ctx.stores.gateway_service_account(ns).is_none() {
        let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
        sas.patch(
            children::GATEWAY_NAME,
            &apply,
            &Patch::Apply(&children::gateway_service_account(ns)),
        )
        .await
        .map_err(kube_err("apply the gateway ServiceAccount"))?;
        bind = true;
    }
    let want = children::gateway_deployment(ns, &ctx.config.gateway_image);
    let current = ctx.stores.gateway(ns);
    let live = current.as_ref().and_then(|c| c.gateway.as_deref());
    if live.is_none_or(|live| children::gateway_differs(live, &want)) {
        bind = true;
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
        deployments
            .patch(children::GATEWAY_NAME, &apply, &Patch::Apply(&want))
            .await
            .map_err(kube_err("apply the gateway Deployment"))?;
    }
    // The RoleBinding is not cached: it is applied with the ServiceAccount or the
    // Deployment, so that a settled namespace makes no write.
    if bind {
        ensure_gateway_access(ctx, ns, &apply).await?;
    }
    Ok(())
}

/// Binds the gateway's read-only ClusterRole to its ServiceAccount in `ns`.
async fn ensure_gateway_access(ctx: &Context, ns: &str, apply: &PatchParams) -> Result<(), Error> {
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(ctx.client.clone(), ns);
    bindings
        .patch(
            children::GATEWAY_NAME,
            apply,
            &Patch::Apply(&crate::access::gateway_role_binding(ns)),
        )
        .await
        .map_err(kube_err("apply the gateway RoleBinding"))?;
    Ok(())
}

/// Removes the namespace's gateway (Deployment, ServiceAccount and RoleBinding).
async fn remove_gateway(ctx: &Context, ns: &str) -> Result<(), Error> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    delete_opt(&deployments, children::GATEWAY_NAME).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    delete_opt(&sas, children::GATEWAY_NAME).await?;
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(ctx.client.clone(), ns);
    delete_opt(&bindings, children::GATEWAY_NAME).await?;
    Ok(())
}

/// Removes the TrafficSplit and the Services of a deleted Rollout (Deployments go by
/// garbage collection), its metric series, and the namespace's gateway when it was the
/// namespace's last Rollout.
pub async fn cleanup(rollout: &Rollout, ctx: &Context) -> Result<Action, Error> {
    let ns = rollout.namespace().ok_or(Error::NoNamespace)?;
    let name = rollout.name_any();
    // Adopted objects go back first: a re-pointed Service selects its pods again before
    // the split and the gateway go.
    let status = rollout.status.clone().unwrap_or_default();
    let kept = match &status.adoption {
        Some(adoption) => {
            let steps = crate::plan::hand_back(adoption, status.stable_revision);
            adopt::hand_back(ctx, &ns, &steps).await?;
            adopt::adopted_names(adoption)
        }
        None => Vec::new(),
    };
    let splits: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &split_resource());
    delete_opt(&splits, &children::split_name(rollout)).await?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for s in ctx.stores.rollout_services(&ns, &name) {
        if !kept.contains(&s.name_any()) {
            delete_opt(&services, &s.name_any()).await?;
        }
    }
    if ctx.config.gateway && ctx.stores.other_live_rollouts(&ns, &name) == 0 {
        remove_gateway(ctx, &ns).await?;
    }
    ctx.expectations.forget(&ns, &name);
    ctx.metrics.forget_rollout(&ns, &name);
    let reference = rollout.object_ref(&());
    let event = Event {
        type_: EventType::Normal,
        reason: crate::plan::reasons::DELETED.into(),
        note: Some("Removed the TrafficSplit and Services of the deleted Rollout".into()),
        action: "Cleanup".into(),
        secondary: None,
    };
    ctx.recorder.record(event, reference).await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_actions_differ_by_message_and_repeat_for_the_same_one() {
        let a = event_action("WeightChanged", "Canary weight 0 → 20 (step 1/6)");
        let b = event_action("WeightChanged", "Canary weight 20 → 50 (step 3/6)");
        assert_ne!(a, b);
        assert_eq!(
            a,
            event_action("WeightChanged", "Canary weight 0 → 20 (step 1/6)")
        );
        assert!(a.starts_with("WeightChanged-") && a.len() <= 128);
    }

    #[test]
    fn merge_diff_sends_only_changes_and_nulls_removed_keys() {
        let old = json!({"phase": "Paused", "promoteStep": 3, "analysis": {"checks": 1, "lastResult": {"verdict": "Pass"}}});
        let new = json!({"phase": "Progressing", "analysis": {"checks": 1}});
        let diff = merge_diff(&old, &new).unwrap();
        assert_eq!(
            diff,
            json!({"phase": "Progressing", "promoteStep": null, "analysis": {"lastResult": null}})
        );
        assert_eq!(merge_diff(&new, &new), None);
    }
}
