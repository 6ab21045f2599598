//! What happens to an object on its way into the store: metadata, defaults, kind-specific
//! rules, schema enforcement, status isolation and generation.

use super::error::{ApiError, Cause};
use super::resources::ResourceDef;
use super::{cel, schema};
use rand::Rng;
use serde_json::{Value, json};

mod defaults;
pub mod labels;

pub use defaults::{crd_accept, create_defaults};

/// The `fieldValidation` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them with a warning header (the default).
    Warn,
    /// Reject the request.
    Strict,
}

// === impl FieldValidation ===

impl FieldValidation {
    /// Parses the query parameter.
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("Strict") => Self::Strict,
            Some("Ignore") => Self::Ignore,
            _ => Self::Warn,
        }
    }
}

/// The current time as RFC 3339 with second precision.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random UUIDv4 string.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 5-character suffix `generateName` gets.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Checks an RFC 1123 subdomain name; returns the real server's message on failure.
pub fn validate_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()
    })
}

/// Checks an RBAC object's name as upstream's `ValidateRBACName` does (any path segment:
/// `system:auth-delegator` is valid); returns the real server's message on failure.
pub fn validate_path_segment_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("name or generateName is required".into());
    }
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ["/", "%"]
        .iter()
        .find(|bad| name.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
}

fn meta_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj.get_mut("metadata").and_then(Value::as_object_mut)
}

fn invalid(def: &ResourceDef, name: &str, field: &str, reason: &str, message: String) -> ApiError {
    ApiError::invalid(
        &def.kind_group(),
        &def.group,
        name,
        vec![Cause {
            reason: reason.into(),
            message,
            field: field.into(),
        }],
    )
}

/// Enforces a custom resource's schema: prunes, validates; returns warnings.
pub fn enforce_schema(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    fv: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = def.schema.as_ref() else {
        return Ok(vec![]);
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pruned = schema::prune_root(schema, obj);
    schema::apply_defaults(schema, obj);
    if fv == FieldValidation::Strict && !pruned.is_empty() {
        let list: Vec<String> = pruned
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            list.join(", ")
        )));
    }
    let mut errs = schema::validate_root(schema, obj);
    if errs.is_empty() {
        errs = cel::check(schema, obj, old);
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            &def.kind_group(),
            &def.group,
            &name,
            errs,
        ));
    }
    Ok(match fv {
        FieldValidation::Warn => pruned
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect(),
        _ => vec![],
    })
}

/// Sets uid, creationTimestamp and generation on a new object.
pub fn stamp_new(obj: &mut Value, generation: bool) {
    let Some(m) = meta_mut(obj) else { return };
    m.insert("uid".into(), json!(new_uid()));
    m.insert("creationTimestamp".into(), json!(now()));
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    if generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
}

/// Resolves the name (`generateName`) and namespace of an object being created.
pub fn identity(
    def: &ResourceDef,
    obj: &mut Value,
    url_ns: Option<&str>,
) -> Result<(String, String), ApiError> {
    let Some(m) = meta_mut(obj) else {
        return Err(ApiError::bad_request("the object has no metadata"));
    };
    let name = match m
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(n) => n.to_string(),
        None => match m.get("generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{}", random_suffix()),
            None => {
                return Err(invalid(
                    def,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required".into(),
                ));
            }
        },
    };
    m.insert("name".into(), json!(name));
    let ns = if def.namespaced {
        let body_ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let ns = match (url_ns, body_ns) {
            (Some(u), Some(b)) if u != b => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(u), _) => u.to_string(),
            (None, Some(b)) => b,
            (None, None) => "default".into(),
        };
        m.insert("namespace".into(), json!(ns));
        ns
    } else {
        m.remove("namespace");
        String::new()
    };
    let checked = if def.group == "rbac.authorization.k8s.io" {
        validate_path_segment_name(&name)
    } else {
        validate_name(&name)
    };
    if let Some(msg) = checked {
        return Err(invalid(
            def,
            &name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": {msg}"),
        ));
    }
    Ok((name, ns))
}

fn without_meta_status(v: &Value, drop_status: bool) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        if drop_status {
            m.remove("status");
        }
    }
    c
}

/// Builds the object to store for an update of `old` by `new` through `sub` ("" or "status").
pub fn merge_update(def: &ResourceDef, old: &Value, mut new: Value, sub: &str) -> Value {
    if sub == "status" {
        let mut out = old.clone();
        out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if out["status"].is_null()
            && let Some(m) = out.as_object_mut()
        {
            m.remove("status");
        }
        return out;
    }
    if def.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    let om = &old["metadata"];
    let Some(m) = meta_mut(&mut new) else {
        return new;
    };
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
        "managedFields",
    ] {
        match om.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    new
}

/// Bumps `metadata.generation` when anything outside metadata (and status, when it is a
/// subresource) changed.
pub fn bump_generation(def: &ResourceDef, old: &Value, new: &mut Value) {
    if !def.generation {
        return;
    }
    let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let changed = without_meta_status(old, def.status) != without_meta_status(new, def.status);
    if let Some(m) = meta_mut(new) {
        m.insert("generation".into(), json!(if changed { g + 1 } else { g }));
    }
}

/// Whether two objects are equal apart from resourceVersion and managedFields timestamps: a
/// write that only adds a co-owner to managedFields is a change, as on the real server.
pub fn same_content(a: &Value, b: &Value) -> bool {
    if super::apply::managed_signature(a) != super::apply::managed_signature(b) {
        return false;
    }
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        c
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;

    fn def(kind: &str) -> ResourceDef {
        (*builtins().into_iter().find(|d| d.kind == kind).unwrap()).clone()
    }

    #[test]
    fn generation_bumps_only_on_spec_changes() {
        let d = def("Deployment");
        let old = json!({"metadata": {"generation": 3, "labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let mut same = old.clone();
        same["metadata"]["labels"]["a"] = json!("c");
        same["status"]["x"] = json!(2);
        bump_generation(&d, &old, &mut same);
        assert_eq!(same["metadata"]["generation"], 3);
        let mut changed = old.clone();
        changed["spec"]["replicas"] = json!(2);
        bump_generation(&d, &old, &mut changed);
        assert_eq!(changed["metadata"]["generation"], 4);
    }

    #[test]
    fn status_is_isolated_between_main_resource_and_subresource() {
        let d = def("Deployment");
        let old = json!({"metadata": {"name": "a", "uid": "u"}, "spec": {"replicas": 1}, "status": {"ready": 1}});
        let body = json!({"metadata": {"name": "a", "uid": "other"}, "spec": {"replicas": 2}, "status": {"ready": 9}});
        let main = merge_update(&d, &old, body.clone(), "");
        assert_eq!(main["spec"]["replicas"], 2);
        assert_eq!(main["status"]["ready"], 1);
        assert_eq!(main["metadata"]["uid"], "u");
        let st = merge_update(&d, &old, body, "status");
        assert_eq!(st["spec"]["replicas"], 1);
        assert_eq!(st["status"]["ready"], 9);
    }

    #[test]
    fn names_uids_and_base64() {
        assert!(validate_name("foo-1.bar").is_none());
        assert!(validate_name("Foo").is_some());
        assert!(validate_name("-a").is_some());
        assert!(validate_path_segment_name("system:auth-delegator").is_none());
        assert!(validate_path_segment_name("a/b").is_some());
        assert!(validate_path_segment_name("..").is_some());
        assert_eq!(new_uid().len(), 36);
        assert_eq!(random_suffix().len(), 5);
    }
}
