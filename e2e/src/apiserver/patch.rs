//! Patch formats: JSON merge patch, JSON patch and strategic merge patch (pure functions).

use serde_json::{Map, Value};

mod order;

/// The patch formats the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

// === impl PatchKind ===

impl PatchKind {
    /// Maps a Content-Type to a patch kind.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch; returns a message on failure (the target is untouched).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let p: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut work = target.clone();
    for (i, op) in p.0.into_iter().enumerate() {
        // Like the real server (evanphx/json-patch), a `test` for null passes on a missing
        // path; kube-runtime's finalizer helper relies on it to add the first finalizer.
        if let json_patch::PatchOperation::Test(t) = &op
            && t.value.is_null()
            && work.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut work, &[op]).map_err(|e| format!("operation {i}: {e}"))?;
    }
    *target = work;
    Ok(())
}

/// The merge key of a well-known built-in list field, by its name and parent field.
pub fn merge_key(field: &str, parent: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ports"
            if matches!(
                parent,
                "containers" | "initContainers" | "ephemeralContainers"
            ) =>
        {
            "containerPort"
        }
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "tolerations" | "subsets" | "endpoints" | "args" | "command" => return None,
        _ => return None,
    })
}

/// Primitive lists that merge as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a strategic merge patch for built-in kinds.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    let mut work = target.clone();
    smp_value(&mut work, patch, "", "")?;
    *target = work;
    Ok(())
}

fn smp_value(target: &mut Value, patch: &Value, field: &str, parent: &str) -> Result<(), String> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => smp_map(t, p, field, parent),
        _ => {
            *target = strip_directives(patch);
            Ok(())
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn smp_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    _parent: &str,
) -> Result<(), String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let Value::Object(m) = strip_directives(&Value::Object(patch.clone())) else {
                return Ok(());
            };
            *target = m;
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) if other != "merge" => return Err(format!("unknown patch type: {other}")),
        _ => {}
    }
    for (k, pv) in patch {
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(del)) = (target.get_mut(list), pv.as_array()) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        if let Some(list) = k.strip_prefix("$setElementOrder/") {
            // An order for a list the patch does not otherwise touch: only reorder it.
            if !patch.contains_key(list)
                && let (Some(Value::Array(items)), Some(order)) =
                    (target.get_mut(list), pv.as_array())
            {
                let key = merge_key(list, field);
                let original = items.clone();
                *items = order::normalize(std::mem::take(items), order, &original, key);
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            target.remove(k);
            continue;
        }
        let order = patch
            .get(&format!("$setElementOrder/{k}"))
            .and_then(Value::as_array)
            .map(Vec::as_slice);
        match (target.get_mut(k), pv) {
            (Some(Value::Array(items)), Value::Array(patch_items)) => {
                smp_list(items, patch_items, k, field, order)?;
            }
            (Some(tv @ Value::Object(_)), Value::Object(_)) => smp_value(tv, pv, k, field)?,
            (_, _) => {
                let mut fresh = match pv {
                    Value::Array(a) => Value::Array(
                        a.iter()
                            .filter(|i| i.get("$patch").is_none())
                            .map(strip_directives)
                            .collect(),
                    ),
                    other => strip_directives(other),
                };
                if let Value::Object(m) = &mut fresh {
                    m.retain(|_, v| !v.is_null());
                }
                target.insert(k.clone(), fresh);
            }
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    Ok(())
}

fn smp_list(
    items: &mut Vec<Value>,
    patch: &[Value],
    field: &str,
    parent: &str,
    order: Option<&[Value]>,
) -> Result<(), String> {
    if is_set_list(field) {
        let original = items.clone();
        for p in patch {
            if !items.contains(p) {
                items.push(p.clone());
            }
        }
        let patch_order = order.unwrap_or(patch);
        *items = order::normalize(std::mem::take(items), patch_order, &original, None);
        return Ok(());
    }
    let Some(key) = merge_key(field, parent) else {
        if patch.len() == 1 && patch[0].get("$patch").and_then(Value::as_str) == Some("replace") {
            items.clear();
        } else {
            *items = patch.iter().map(strip_directives).collect();
        }
        return Ok(());
    };
    let directive = |p: &Value| p.get("$patch").and_then(Value::as_str).map(str::to_string);
    if patch
        .iter()
        .any(|p| directive(p).as_deref() == Some("replace"))
    {
        *items = patch
            .iter()
            .filter(|p| directive(p).is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    for p in patch {
        match directive(p).as_deref() {
            Some("delete") => {
                let pk = p.get(key);
                items.retain(|i| pk.is_none() || i.get(key) != pk);
            }
            Some(other) => return Err(format!("unknown patch type: {other}")),
            None => {}
        }
    }
    let original = items.clone();
    let plain: Vec<Value> = patch
        .iter()
        .filter(|p| directive(p).is_none())
        .cloned()
        .collect();
    for p in &plain {
        let pk = p.get(key);
        match pk.and_then(|pk| items.iter().position(|i| i.get(key) == Some(pk))) {
            Some(i) => smp_value(&mut items[i], p, field, parent)?,
            None => items.push(strip_directives(p)),
        }
    }
    let patch_order = order.unwrap_or(&plain);
    *items = order::normalize(std::mem::take(items), patch_order, &original, Some(key));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn json_patch_test_for_null_passes_on_a_missing_path() {
        let mut doc = json!({"metadata": {"name": "x"}});
        json_patch(
            &mut doc,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["weir.dev/cleanup"]}]),
        )
        .unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!(["weir.dev/cleanup"]));
        let mut doc = json!({"metadata": {"finalizers": ["a"]}});
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "test", "path": "/metadata/finalizers", "value": null}])
            )
            .is_err()
        );
    }

    #[test]
    fn json_patch_failure_leaves_target_untouched() {
        let mut t = json!({"a": 1});
        let r = json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}]),
        );
        assert!(r.is_err());
        assert_eq!(t, json!({"a": 1}));
        json_patch(
            &mut t,
            &json!([{"op": "replace", "path": "/a", "value": 3}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": 3}));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_conditions_by_type() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "b", "image": "y:1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let p = json!({"spec": {"containers": [{"name": "b", "image": "y:2"}, {"name": "c", "image": "z"}],
                                  "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        strategic_merge(&mut t, &p).unwrap();
        let cs = t["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["ports"][0]["name"], "http");
        assert_eq!(cs[1]["image"], "y:2");
        assert_eq!(t["status"]["conditions"][0]["status"], "True");
        assert!(t["spec"].get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn strategic_merge_delete_directive_and_atomic_lists() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "args": ["1", "2"]}, {"name": "b"}]},
                          "metadata": {"finalizers": ["x"]}});
        let p = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "a", "args": ["3"]}]},
                        "metadata": {"finalizers": ["y"]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(
            t["spec"]["containers"],
            json!([{"name": "a", "args": ["3"]}])
        );
        assert_eq!(
            t["metadata"]["finalizers"],
            json!(["y", "x"]),
            "items the patch names come before the server's, as upstream orders them"
        );
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(t["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn content_types_map_to_patch_kinds() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml"),
            Some(PatchKind::Apply)
        );
        assert_eq!(PatchKind::from_content_type("text/plain"), None);
    }
}
