//! Validation of built-in kinds with upstream's field paths and messages (`pkg/apis/core/
//! validation`, `pkg/apis/apps/validation`, `ValidateObjectMetaUpdate`), as of Kubernetes 1.32.
//!
//! Two layers, as upstream has them:
//! - [`decode`]: what fails when the body is decoded into the Go type (a Secret's `data` that
//!   is not base64, a Lease time that is not a `MicroTime`). Upstream answers 400 for create
//!   and update, and 422 on the `patch` field for patches;
//! - [`validate`]: field validation, a 422 `Invalid` whose causes carry the field paths.

use super::error::Cause;
use super::resources::ResourceDef;
use serde_json::Value;

mod apps;
mod core;
pub mod go;

fn cause(reason: &str, field: String, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field,
    }
}

/// `field.Required`.
fn required(field: impl Into<String>) -> Cause {
    cause("FieldValueRequired", field.into(), "Required value".into())
}

/// `field.Invalid` with an already rendered value.
fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
    cause(
        "FieldValueInvalid",
        field.into(),
        format!("Invalid value: {value}: {detail}"),
    )
}

/// `field.Forbidden`.
fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    cause(
        "FieldValueForbidden",
        field.into(),
        format!("Forbidden: {detail}"),
    )
}

/// Checks that fail while decoding the body; returns the decoder's message.
pub fn decode(def: &ResourceDef, obj: &Value) -> Result<(), String> {
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Secret") => core::secret_data(obj),
        ("coordination.k8s.io", "Lease") => {
            for f in ["acquireTime", "renewTime"] {
                core::micro_time(&obj["spec"][f])?;
            }
            Ok(())
        }
        ("", "Event") | ("events.k8s.io", "Event") => {
            core::micro_time(&obj["eventTime"])?;
            core::micro_time(&obj["series"]["lastObservedTime"])
        }
        _ => Ok(()),
    }
}

/// Field validation of a create (`old` is `None`) or an update; empty when valid.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = vec![];
    if let Some(old) = old {
        out.extend(meta_update(&obj["metadata"], &old["metadata"]));
    }
    if def.custom {
        return out;
    }
    out.extend(match (def.group.as_str(), def.kind.as_str()) {
        ("", "ConfigMap") => core::config_map(obj),
        ("", "Secret") => core::secret(obj),
        ("", "Service") => core::service(obj, old),
        ("coordination.k8s.io", "Lease") => core::lease(obj),
        ("apps", "Deployment" | "ReplicaSet") => apps::workload(def, obj, old),
        _ => vec![],
    });
    out
}

/// Only the metadata rules every kind shares (status subresource writes).
pub fn validate_meta(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    old.map(|o| meta_update(&obj["metadata"], &o["metadata"]))
        .unwrap_or_default()
}

/// `ValidateObjectMetaUpdate`'s rule that an object being deleted takes no new finalizers.
fn meta_update(new: &Value, old: &Value) -> Vec<Cause> {
    if !old["deletionTimestamp"].is_string() {
        return vec![];
    }
    let names = |m: &Value| -> Vec<String> {
        m["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect()
    };
    let before = names(old);
    let mut extra: Vec<String> = names(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if extra.is_empty() {
        return vec![];
    }
    extra.sort();
    extra.dedup();
    let list: Vec<&str> = extra.iter().map(String::as_str).collect();
    vec![forbidden(
        "metadata.finalizers",
        &format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {}",
            go::string_slice(&list)
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_being_deleted_takes_no_new_finalizers() {
        let old = json!({"deletionTimestamp": "t", "finalizers": ["a"]});
        assert!(meta_update(&json!({"finalizers": ["a"]}), &old).is_empty());
        assert!(meta_update(&json!({}), &old).is_empty());
        let c = meta_update(&json!({"finalizers": ["a", "b"]}), &old);
        assert_eq!(c[0].field, "metadata.finalizers");
        assert!(
            c[0].message
                .ends_with("found new finalizers []string{\"b\"}"),
            "{c:?}"
        );
        assert!(meta_update(&json!({"finalizers": ["b"]}), &json!({})).is_empty());
    }
}
