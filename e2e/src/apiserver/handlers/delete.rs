//! DELETE of one object and of a collection, with the real server's answers.
//!
//! An object removed at once is answered with a `Status` (`status: Success`, `details` naming
//! it), except for the kinds whose storage returns the deleted object (Pods, Services,
//! ServiceAccounts). An object kept for finalizers is answered with the object, carrying its
//! `deletionTimestamp`. Both are 200; 202 only when `orphanDependents=false` was asked for and
//! the object is kept, as upstream's delete handler does.

use super::{Call, list_objects};
use crate::apiserver::Shared;
use crate::apiserver::error::{ApiError, Cause};
use crate::apiserver::gc::{self, Propagation};
use crate::apiserver::ops;
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::server::{Body, json_response};
use hyper::Response;
use serde_json::{Value, json};

/// The parsed `DeleteOptions`: body fields and query parameters.
#[derive(Debug, Clone, Default)]
struct DeleteOptions {
    policy: Option<Propagation>,
    orphan_dependents: Option<bool>,
    preconditions: Value,
}

fn unsupported_policy(name: &str, value: &str) -> ApiError {
    ApiError::invalid(
        "DeleteOptions.meta.k8s.io",
        "meta.k8s.io",
        name,
        vec![Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"Foreground\", \"Background\", \"Orphan\"",
                crate::apiserver::validation::go::quote(value)
            ),
            field: "propagationPolicy".into(),
        }],
    )
}

fn delete_options(call: &Call, body: &[u8], name: &str) -> Result<DeleteOptions, ApiError> {
    let raw = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let policy_str = call
        .query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| raw["propagationPolicy"].as_str().map(str::to_string));
    let orphan_dependents = match call.query.get("orphanDependents") {
        Some(v) => Some(v == "true"),
        None => raw["orphanDependents"].as_bool(),
    };
    let policy = match policy_str.as_deref() {
        None | Some("") => None,
        Some(p) => Some(Propagation::parse(p).ok_or_else(|| unsupported_policy(name, p))?),
    };
    if policy.is_some() && orphan_dependents.is_some() {
        return Err(ApiError::invalid(
            "DeleteOptions.meta.k8s.io",
            "meta.k8s.io",
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {}: orphanDependents and deletionPropagation cannot be both set",
                    orphan_dependents.unwrap_or_default()
                ),
                field: "propagationPolicy".into(),
            }],
        ));
    }
    let policy = policy.or(match orphan_dependents {
        Some(true) => Some(Propagation::Orphan),
        Some(false) => Some(Propagation::Background),
        None => None,
    });
    Ok(DeleteOptions {
        policy,
        orphan_dependents,
        preconditions: raw["preconditions"].clone(),
    })
}

/// Whether the kind's storage answers a delete with the deleted object instead of a Status
/// (`ReturnDeletedObject` upstream).
fn returns_deleted_object(def: &ResourceDef) -> bool {
    def.group.is_empty() && matches!(def.plural.as_str(), "pods" | "services" | "serviceaccounts")
}

/// The `Status` a delete answers with when the object went at once.
pub fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = json!({
        "name": obj["metadata"]["name"],
        "kind": def.plural,
        "uid": obj["metadata"]["uid"],
    });
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn answer(call: &Call, opts: &DeleteOptions, obj: &Value, removed: bool) -> Response<Body> {
    let def = &call.def;
    if removed {
        if returns_deleted_object(def) {
            return json_response(200, &ops::present(def, obj));
        }
        return json_response(200, &success_status(def, obj));
    }
    let code = if opts.orphan_dependents == Some(false) {
        202
    } else {
        200
    };
    json_response(code, &ops::present(def, obj))
}

/// Deletes one object.
pub(super) fn delete(
    shared: &Shared,
    call: &Call,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let name = call.rp.name.clone().unwrap_or_default();
    let opts = delete_options(call, body, &name)?;
    let dry_run = call.dry_run("DeleteOptions", &name)?;
    let ns = call.ns();
    let def = &call.def;
    let mut st = shared.state.lock();
    let cur = st
        .store
        .get(&def.storage, &ns, &name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, &name))?;
    let pre = &opts.preconditions;
    if let Some(uid) = pre["uid"].as_str()
        && Some(uid) != cur["metadata"]["uid"].as_str()
    {
        return Err(ApiError::conflict(&def.group, &def.plural, &name));
    }
    if let Some(rv) = pre["resourceVersion"].as_str()
        && Some(rv) != cur["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(&def.group, &def.plural, &name));
    }
    let is_namespace = def.group.is_empty() && def.plural == "namespaces";
    let protected = ["default", "kube-system", "kube-public"];
    if is_namespace && protected.contains(&name.as_str()) {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    if dry_run {
        return Ok(match gc::would_mark(&cur, opts.policy) {
            Some(marked) => answer(call, &opts, &marked, false),
            None if is_namespace => answer(call, &opts, &cur, false),
            None => answer(call, &opts, &cur, true),
        });
    }
    let outcome = if is_namespace {
        gc::delete_namespace(&mut st, &name).map(|o| (o, false))
    } else {
        gc::delete(&mut st, &def.storage, &ns, &name, opts.policy)
    };
    drop(st);
    match outcome {
        Some((obj, removed)) => Ok(answer(call, &opts, &obj, removed)),
        None => Err(ApiError::not_found(&def.group, &def.plural, &name)),
    }
}

/// Deletes every object a list with the same selectors would return; answers with the list of
/// what was deleted.
pub(super) fn delete_collection(
    shared: &Shared,
    call: &Call,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(call, body, "")?;
    let dry_run = call.dry_run("DeleteOptions", "")?;
    let (items, rv) = list_objects(shared, call)?;
    let mut st = shared.state.lock();
    let mut out = vec![];
    for o in items {
        let (ns, name) = (
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if dry_run {
            out.push(o);
            continue;
        }
        if let Some((obj, _)) = gc::delete(&mut st, &call.def.storage, &ns, &name, opts.policy) {
            out.push(ops::present(&call.def, &obj));
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", call.def.kind), "apiVersion": call.def.api_version(),
            "metadata": {"resourceVersion": rv.to_string()}, "items": out,
        }),
    ))
}
