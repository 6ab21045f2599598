//! Kind-specific defaults and checks applied on create: Services, Secrets, Pods, CRDs...

use super::{invalid, now};
use crate::apiserver::State;
use crate::apiserver::defaulting::{self, service};
use crate::apiserver::error::ApiError;
use crate::apiserver::resources::ResourceDef;
use serde_json::{Value, json};

/// Kind-specific defaults and checks on create.
pub fn create_defaults(
    state: &mut State,
    def: &ResourceDef,
    obj: &mut Value,
    name: &str,
) -> Result<(), ApiError> {
    if def.status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        ("", "Pod") => {
            defaulting::pod_admission(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("", "Service") => service::allocate(state, obj, None),
        ("apps", "Deployment" | "ReplicaSet") => {
            obj["status"] = json!({});
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd_accept(def, obj, name)?,
        ("apiregistration.k8s.io", "APIService") => {
            obj["status"] = json!({"conditions": [{"type": "Available", "status": "True",
                "lastTransitionTime": now(), "reason": "Local", "message": "served by the local aggregator"}]});
        }
        _ => {}
    }
    Ok(())
}

/// Checks a CRD and sets its accepted names and Established/NamesAccepted conditions.
pub fn crd_accept(def: &ResourceDef, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let want = format!("{plural}.{group}");
    if group.is_empty() || plural.is_empty() || spec["names"]["kind"].as_str().is_none() {
        return Err(invalid(
            def,
            name,
            "spec.names",
            "FieldValueRequired",
            "Required value: group, names.plural and names.kind are required".into(),
        ));
    }
    if name != want {
        return Err(invalid(
            def,
            name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            def,
            name,
            "spec.versions",
            "FieldValueRequired",
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    if storage.len() != 1 {
        return Err(invalid(
            def,
            name,
            "spec.versions",
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let mut names = spec["names"].clone();
    if names["singular"].is_null() {
        names["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if names["listKind"].is_null() {
        names["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    let t = now();
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": storage,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ]
    });
    Ok(())
}
