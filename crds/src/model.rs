//! One version-free model of the SMI objects, and the pure normalisation into it.
//!
//! ```text
//!   TrafficSplit v1alpha1..4 ─┐                    ┌─► Split          (milli-unit weights)
//!   HTTPRouteGroup v1alpha1..4├─► normalise(json) ─┼─► HttpRouteGroup (compiled, anchored regexes)
//!   TCPRoute v1alpha1..4      │   (by shape, not   ├─► TcpRoute
//!   TrafficTarget v1alpha1..3─┘    apiVersion)     └─► TrafficTarget ─► AccessPolicy::check
//! ```
//!
//! Normalisation reads the JSON of a whole object, because with a union schema and
//! conversion `None` an object read through one version may have been written
//! through another. Every error names the object and the field at fault.

mod access;
mod routes;
mod split;

pub use access::{
    AccessDecision, AccessPolicy, AccessRequest, DenyKind, RouteKind, ServiceAccountRef,
    TargetRule, TrafficTarget,
};
pub use routes::{HeaderMatch, HttpMatch, HttpRouteGroup, MethodMatch, TcpRoute};
pub use split::{RouteGroupRef, Split, SplitBackend};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind, namespace and name of the object an error concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    /// The object's kind, such as `TrafficSplit`.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Why an SMI object could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {reason}")]
pub struct NormaliseError {
    /// The object at fault.
    pub object: ObjectId,
    /// The path of the field at fault, such as `spec.backends[1].weight`.
    pub field: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// Any SMI object Weir understands, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SmiObject {
    /// A TrafficSplit of any version.
    Split(Split),
    /// An HTTPRouteGroup of any version.
    HttpRouteGroup(HttpRouteGroup),
    /// A TCPRoute of any version.
    TcpRoute(TcpRoute),
    /// A TrafficTarget of any version.
    TrafficTarget(TrafficTarget),
}

/// Normalises one SMI object given as JSON; `default_namespace` applies when it has none.
///
/// A v1alpha1 TrafficSplit with quantity weights, as the brief's stage 2 writes it:
///
/// ```
/// use weir_crds::model::{SmiObject, normalise};
///
/// let split = serde_json::json!({
///     "apiVersion": "split.smi-spec.io/v1alpha1",
///     "kind": "TrafficSplit",
///     "metadata": {"name": "foobar-rollout"},
///     "spec": {"service": "foobar", "backends": [
///         {"service": "foobar-v1", "weight": 1},
///         {"service": "foobar-v2", "weight": "500m"},
///     ]},
/// });
/// let SmiObject::Split(split) = normalise(&split, "default")? else {
///     panic!("not a split");
/// };
/// assert_eq!(split.id.namespace, "default");
/// let weights: Vec<u64> = split.backends.iter().map(|b| b.weight_millis).collect();
/// assert_eq!(weights, [1000, 500]);
///
/// // A bad weight names the object and the field.
/// let bad = serde_json::json!({
///     "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
///     "metadata": {"name": "s", "namespace": "shop"},
///     "spec": {"service": "foobar", "backends": [{"service": "v1", "weight": -5}]},
/// });
/// let err = normalise(&bad, "default").unwrap_err().to_string();
/// assert!(err.starts_with("TrafficSplit shop/s: spec.backends[0].weight"), "{err}");
/// # Ok::<(), weir_crds::model::NormaliseError>(())
/// ```
pub fn normalise(object: &Value, default_namespace: &str) -> Result<SmiObject, NormaliseError> {
    let id = object_id(object, default_namespace);
    let group = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default();
    match (group, id.kind.as_str()) {
        ("split.smi-spec.io", "TrafficSplit") => Split::normalise(object, id).map(SmiObject::Split),
        ("specs.smi-spec.io", "HTTPRouteGroup") => {
            HttpRouteGroup::normalise(object, id).map(SmiObject::HttpRouteGroup)
        }
        ("specs.smi-spec.io", "TCPRoute") => {
            TcpRoute::normalise(object, id).map(SmiObject::TcpRoute)
        }
        ("access.smi-spec.io", "TrafficTarget") => {
            TrafficTarget::normalise(object, id).map(SmiObject::TrafficTarget)
        }
        _ => Err(NormaliseError {
            field: "apiVersion".into(),
            reason: format!(
                "not an SMI object Weir understands (apiVersion {:?}, kind {:?})",
                object
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                id.kind
            ),
            object: id,
        }),
    }
}

/// Reads kind, namespace and name from an object's JSON.
pub fn object_id(object: &Value, default_namespace: &str) -> ObjectId {
    let text = |ptr: &str| {
        object
            .pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ObjectId {
        kind: text("/kind").unwrap_or_default(),
        namespace: text("/metadata/namespace").unwrap_or_else(|| default_namespace.to_string()),
        name: text("/metadata/name").unwrap_or_default(),
    }
}

/// Deserialises the value at `field` (a dotted path for messages) into `T`.
fn field<T: serde::de::DeserializeOwned>(
    id: &ObjectId,
    value: Option<&Value>,
    field: &str,
) -> Result<T, NormaliseError> {
    let value = value.cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| NormaliseError {
        object: id.clone(),
        field: field.to_string(),
        reason: plain_serde_message(&e.to_string()),
    })
}

/// Replaces the names of Weir's internal wire structs in serde messages with plain words.
fn plain_serde_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("struct ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "struct ".len()..];
        let end = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        out.push_str("an object");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Builds an error about `field` of `id`.
fn invalid(id: &ObjectId, field: impl Into<String>, reason: impl Into<String>) -> NormaliseError {
    NormaliseError {
        object: id.clone(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Compiles a user regex so that it must match the whole subject.
fn anchored_regex(
    id: &ObjectId,
    field_path: &str,
    pattern: &str,
) -> Result<regex::Regex, NormaliseError> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| invalid(id, field_path, format!("invalid regex {pattern:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_hide_wire_struct_names() {
        assert_eq!(
            plain_serde_message("invalid type: string \"x\", expected struct SpecWire"),
            "invalid type: string \"x\", expected an object"
        );
        assert_eq!(
            plain_serde_message("missing field `a`"),
            "missing field `a`"
        );
    }
}
