//! Before a reconcile plans: its Rollout's writes are all in the caches, it plans from the
//! store's latest version, and the cleanup finalizer is in place.

use super::act::expect_version;
use super::{Context, Error, kube_err};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use std::time::Duration;
use weir_crds::Rollout;

/// How soon a Rollout whose writes the caches have not shown yet is looked at again, at the
/// latest. The watch event that shows a write wakes the Rollout sooner (the Rollout's own, or
/// an owned child's); this is the fallback for an object no watch maps to its Rollout.
const UNSETTLED_RETRY: Duration = Duration::from_secs(1);

/// The Rollout to plan from, or `None` while a write it made is not in the caches yet (a
/// cache that has not seen the last status write would repeat its decisions and Events).
/// `queued` was taken from the store when the reconcile was queued to start; the watch event
/// that settled the last write may have come since, so the store's version now is returned.
pub fn settled_rollout(queued: &Rollout, ctx: &Context, ns: &str) -> Option<Rollout> {
    let name = queued.name_any();
    if !ctx
        .expectations
        .settled(ns, &name, tokio::time::Instant::now())
    {
        return None;
    }
    let latest = ctx.stores.rollouts.get(&ObjectRef::new(&name).within(ns));
    let latest = latest.as_deref().and_then(|guard| guard.0.as_ref().ok());
    Some(latest.unwrap_or(queued).clone())
}

/// The answer to a reconcile whose Rollout has unseen writes.
pub fn unsettled() -> Action {
    Action::requeue(UNSETTLED_RETRY)
}

/// Adds the cleanup finalizer (a JSON patch that first tests the list it extends, so a stale
/// copy fails instead of overwriting) and expects its version in the cache before planning.
pub async fn add_finalizer(
    rollout: &Rollout,
    api: &Api<Rollout>,
    ctx: &Context,
    ns: &str,
) -> Result<Action, Error> {
    let current = rollout.finalizers();
    let (tested, added) = if current.is_empty() {
        (
            Value::Null,
            json!({"op": "add", "path": "/metadata/finalizers", "value": [super::FINALIZER]}),
        )
    } else {
        (
            json!(current),
            json!({"op": "add", "path": "/metadata/finalizers/-", "value": super::FINALIZER}),
        )
    };
    let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": tested}, added]);
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|source| Error::Json {
        what: "the finalizer patch".into(),
        source,
    })?;
    let written = api
        .patch(
            &rollout.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .map_err(kube_err("add the finalizer"))?;
    expect_version(ctx, ns, &rollout.name_any(), "Rollout", &written);
    Ok(unsettled())
}
