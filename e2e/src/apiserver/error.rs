//! Errors: the library's own [`Error`] and the API-level [`ApiError`] rendered as a `Status`.

use serde_json::{Value, json};
use std::path::PathBuf;

/// Errors from starting or running the local API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("binding the API server to {addr}")]
    Bind {
        /// The address that was asked for.
        addr: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig file could not be written.
    #[error("writing kubeconfig {path}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A kube client for the server could not be built.
    #[error("building a kube client for the local API server")]
    Client {
        /// The kube error.
        #[source]
        source: kube::Error,
    },
    /// The kubeconfig could not be read back.
    #[error("reading the local kubeconfig")]
    ReadKubeconfig {
        /// The kubeconfig error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The aggregation layer's front-proxy certificates could not be generated.
    #[error("generating the front-proxy certificates")]
    FrontProxy {
        /// The certificate error.
        #[source]
        source: rcgen::Error,
    },
    /// A token was asked for a ServiceAccount that does not exist.
    #[error("ServiceAccount {namespace}/{name} not found")]
    NoServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A kubeconfig could not be serialised.
    #[error("serialising the kubeconfig")]
    Serialize {
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
}

/// One field-level cause of an `Invalid` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// The cause type, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// The human message (already prefixed as the real server does).
    pub message: String,
    /// The field path, e.g. `spec.replicas`.
    pub field: String,
}

/// An error returned to a client as a `meta/v1 Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The `reason` field (`NotFound`, `Conflict`...).
    pub reason: &'static str,
    /// The `message` field.
    pub message: String,
    /// Optional `details`.
    pub details: Option<Value>,
}

// === impl ApiError ===

impl ApiError {
    /// A bare error with a code, a reason and a message.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for an object of a resource (`group_resource` like `rollouts.weir.dev`).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let gr = group_resource(group, plural);
        let mut e = Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"));
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 404 for a path that serves nothing.
    pub fn no_route(path: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(
            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}")}]}),
        );
        e
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let gr = group_resource(group, plural);
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        let gr = group_resource(group, plural);
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {gr} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": plural}));
        e
    }

    /// 422 Invalid with field causes; `kind_group` is like `Rollout.weir.dev`.
    pub fn invalid(kind_group: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let msgs: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if msgs.len() == 1 {
            msgs.join("")
        } else {
            format!("[{}]", msgs.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind_group} \"{name}\" is invalid: {joined}"),
        );
        let kind = kind_group.split('.').next().unwrap_or(kind_group);
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        e.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}));
        e
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"
            ),
        )
    }

    /// 415 UnsupportedMediaType, saying why this body in `ct` cannot be read.
    pub fn unsupported_media_type_because(ct: &str, why: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request ({ct}) cannot be decoded: {why}"),
        )
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 410 Expired (too old resource version).
    pub fn gone(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Renders the error as a `Status` object.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(d), Some(m)) = (&self.details, v.as_object_mut()) {
            m.insert("details".into(), d.clone());
        }
        v
    }
}

/// `plural.group`, or `plural` for the core group.
pub fn group_resource(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// `Kind.group`, or `Kind` for the core group.
pub fn kind_group(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_matches_real_server_shape() {
        let e = ApiError::invalid(
            "Rollout.weir.dev",
            "weir.dev",
            "foo",
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: 150: spec.x in body should be less than or equal to 100"
                    .into(),
                field: "spec.x".into(),
            }],
        );
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .starts_with("Rollout.weir.dev \"foo\" is invalid: spec.x: Invalid value: 150")
        );
        assert_eq!(e.to_status()["details"]["causes"][0]["field"], "spec.x");
    }
}
