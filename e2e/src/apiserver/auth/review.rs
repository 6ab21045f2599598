//! The create-only review APIs: `SelfSubjectAccessReview`, `SubjectAccessReview`,
//! `TokenReview`, and the ServiceAccount `token` subresource (`TokenRequest`).

use super::super::error::ApiError;
use super::super::router::ResourcePath;
use super::super::server::{Body, error_response, json_response, read_body};
use super::super::{Shared, admission};
use super::rbac::{self, Attributes, UserInfo};
use hyper::Response;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::time::Duration;

/// The longest token lifetime handed out (upstream's default maximum is 48 h).
const MAX_TTL: u64 = 48 * 3600;

/// Which review a path addresses, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// `selfsubjectaccessreviews`.
    SelfAccess,
    /// `subjectaccessreviews`.
    Access,
    /// `tokenreviews`.
    Token,
    /// `serviceaccounts/{name}/token`.
    TokenRequest,
}

/// The review `rp` addresses.
pub fn review_of(rp: &ResourcePath) -> Option<Review> {
    match (rp.group.as_str(), rp.plural.as_str(), rp.sub.as_deref()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews", None) => Some(Review::SelfAccess),
        ("authorization.k8s.io", "subjectaccessreviews", None) => Some(Review::Access),
        ("authentication.k8s.io", "tokenreviews", None) => Some(Review::Token),
        ("", "serviceaccounts", Some("token")) => Some(Review::TokenRequest),
        _ => None,
    }
}

/// Reads `spec.resourceAttributes` or `spec.nonResourceAttributes` of an access review.
pub fn review_attributes(spec: &Value) -> Result<Attributes, ApiError> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes::Resource {
            verb: s(&r["verb"]),
            group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes::NonResource {
            verb: s(&n["verb"]),
            path: s(&n["path"]),
        });
    }
    Err(ApiError::invalid(
        "SelfSubjectAccessReview.authorization.k8s.io",
        "authorization.k8s.io",
        "",
        vec![super::super::error::Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            field: "spec.resourceAttributes".into(),
        }],
    ))
}

/// Serves a review for `user`.
pub async fn handle(
    shared: &Shared,
    user: &UserInfo,
    review: Review,
    rp: &ResourcePath,
    method: &http::Method,
    content_type: &str,
    body: Incoming,
) -> Response<Body> {
    if *method != http::Method::POST || (rp.name.is_some() && review != Review::TokenRequest) {
        return error_response(&ApiError::method_not_allowed());
    }
    let body = match read_body(body, shared.opts.max_body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let obj: Value = if content_type.contains("protobuf") {
        match super::proto::decode_review(&body) {
            Some(v) => v,
            None => {
                return error_response(&ApiError::bad_request(
                    "error decoding the protobuf body: not a review this server answers",
                ));
            }
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(&ApiError::bad_request(format!(
                    "error decoding the body: {e}"
                )));
            }
        }
    };
    match answer(shared, user, review, rp, obj) {
        Ok(v) => json_response(201, &v),
        Err(e) => error_response(&e),
    }
}

fn answer(
    shared: &Shared,
    user: &UserInfo,
    review: Review,
    rp: &ResourcePath,
    mut obj: Value,
) -> Result<Value, ApiError> {
    let status = match review {
        Review::SelfAccess | Review::Access => {
            let attrs = review_attributes(&obj["spec"])?;
            let subject = if review == Review::SelfAccess {
                user.clone()
            } else {
                let spec = &obj["spec"];
                UserInfo {
                    name: spec["user"].as_str().unwrap_or_default().into(),
                    groups: spec["groups"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|g| g.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            };
            let policy = super::current_policy(shared);
            let d = rbac::authorize(&policy, &subject, &attrs);
            if d.allowed {
                json!({"allowed": true, "reason": d.reason})
            } else {
                json!({"allowed": false})
            }
        }
        Review::Token => {
            let token = obj["spec"]["token"].as_str().unwrap_or_default();
            match super::user_of_token(shared, token) {
                Some(u) => json!({"authenticated": true,
                    "user": {"username": u.name, "groups": u.groups}}),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        Review::TokenRequest => token_request(shared, rp, &obj)?,
    };
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), status);
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if review == Review::TokenRequest {
            meta["name"] = json!(rp.name.clone().unwrap_or_default());
            meta["namespace"] = json!(rp.namespace.clone().unwrap_or_default());
            meta["creationTimestamp"] = json!(admission::now());
        }
    }
    Ok(obj)
}

fn token_request(shared: &Shared, rp: &ResourcePath, req: &Value) -> Result<Value, ApiError> {
    let ns = rp.namespace.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let sa = shared
        .state
        .lock()
        .store
        .get(&(String::new(), "serviceaccounts".into()), &ns, &name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?;
    let uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
    let ttl = req["spec"]["expirationSeconds"]
        .as_u64()
        .unwrap_or(3600)
        .clamp(600, MAX_TTL);
    let token = shared
        .tokens
        .issue(&ns, &name, uid, Duration::from_secs(ttl));
    let expires = chrono::Utc::now() + chrono::Duration::seconds(ttl as i64);
    Ok(json!({"token": token,
        "expirationTimestamp": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_reviews_read_resource_or_path_attributes() {
        let a = review_attributes(&json!({"resourceAttributes": {"verb": "patch",
            "group": "weir.dev", "resource": "rollouts", "subresource": "status",
            "namespace": "demo", "name": "r"}}))
        .unwrap();
        assert_eq!(
            a,
            Attributes::Resource {
                verb: "patch".into(),
                group: "weir.dev".into(),
                resource: "rollouts".into(),
                subresource: "status".into(),
                namespace: "demo".into(),
                name: "r".into()
            }
        );
        let p = review_attributes(&json!({"nonResourceAttributes": {"verb": "get", "path": "/x"}}))
            .unwrap();
        assert_eq!(
            p,
            Attributes::NonResource {
                verb: "get".into(),
                path: "/x".into()
            }
        );
        assert_eq!(review_attributes(&json!({})).unwrap_err().code, 422);
    }
}
