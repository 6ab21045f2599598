//! Authentication and authorisation, as a real kube-apiserver does them.
//!
//! - Authentication: the admin token of the written kubeconfig is `weir-local-admin` in
//!   `system:masters`; a token issued by `TokenRequest` is its ServiceAccount
//!   (`system:serviceaccount:<ns>:<name>`, groups `system:serviceaccounts`,
//!   `system:serviceaccounts:<ns>`, `system:authenticated`) while that ServiceAccount exists
//!   and the token has not expired; an unknown token is 401. A request without credentials is
//!   the admin too: the server speaks plain HTTP, and kubectl (client-go) sends no bearer
//!   token over plain HTTP, so that is how the admin kubeconfig's kubectl arrives. Every
//!   process that presents a token (kube-rs does) is held to RBAC.
//! - Impersonation: `Impersonate-User` and `Impersonate-Group`, allowed when the caller may
//!   `impersonate` the `users`, `serviceaccounts` and `groups` asked for.
//! - Authorisation: [`rbac::authorize`] over the stored RBAC objects; a denial is upstream's
//!   403 `Forbidden` Status.

pub mod bootstrap;
pub mod proto;
pub mod rbac;
pub mod review;

use super::error::{ApiError, group_resource};
use super::router::{ResourcePath, Route};
use super::{Shared, State};
use rbac::{Attributes, Binding, Policy, Role, UserInfo};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A ServiceAccount a token was issued for.
#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: Instant,
}

/// Tokens issued by `TokenRequest`.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: parking_lot::Mutex<HashMap<String, Issued>>,
}

// === impl Tokens ===

impl Tokens {
    /// Issues a token for the ServiceAccount `ns/name` (whose uid is `uid`), valid for `ttl`.
    pub fn issue(&self, ns: &str, name: &str, uid: &str, ttl: Duration) -> String {
        use rand::Rng;
        let bytes: [u8; 24] = rand::rng().random();
        let token = format!(
            "weir-sa.{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut issued = self.issued.lock();
        let now = Instant::now();
        issued.retain(|_, i| i.expires > now);
        issued.insert(
            token.clone(),
            Issued {
                namespace: ns.into(),
                name: name.into(),
                uid: uid.into(),
                expires: now + ttl,
            },
        );
        token
    }
}

/// The user of a ServiceAccount.
pub fn service_account_user(ns: &str, name: &str) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{ns}:{name}"),
        groups: service_account_groups(ns),
    }
}

fn service_account_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        AUTHENTICATED.into(),
    ]
}

fn admin() -> UserInfo {
    UserInfo {
        name: super::kubeconfig::USER.into(),
        groups: vec![rbac::MASTERS.into(), AUTHENTICATED.into()],
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Who presents `token`, or `None` when nobody does.
pub fn user_of_token(shared: &Shared, token: &str) -> Option<UserInfo> {
    if token == super::kubeconfig::TOKEN {
        return Some(admin());
    }
    let issued = shared.tokens.issued.lock().get(token).cloned()?;
    if issued.expires <= Instant::now() {
        return None;
    }
    let sa = shared.state.lock().store.get(
        &(String::new(), "serviceaccounts".into()),
        &issued.namespace,
        &issued.name,
    )?;
    (sa["metadata"]["uid"].as_str() == Some(issued.uid.as_str()))
        .then(|| service_account_user(&issued.namespace, &issued.name))
}

/// Authenticates a request from its `Authorization` header.
pub fn authenticate(shared: &Shared, headers: &http::HeaderMap) -> Result<UserInfo, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(admin());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    user_of_token(shared, token).ok_or_else(unauthorized)
}

/// Applies `Impersonate-User`/`Impersonate-Group`, when the caller may impersonate them.
pub fn impersonate(
    policy: impl Fn() -> Arc<Policy>,
    caller: UserInfo,
    headers: &http::HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    };
    let groups = values("impersonate-group");
    let Some(name) = values("impersonate-user").into_iter().next() else {
        if groups.is_empty() {
            return Ok(caller);
        }
        return Err(ApiError::bad_request(
            "requested [Impersonate-Group] without impersonating a user",
        ));
    };
    let sa = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    let mut checks: Vec<Attributes> = Vec::new();
    let imp = |resource: &str, ns: &str, obj: &str| Attributes::Resource {
        verb: "impersonate".into(),
        group: String::new(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: ns.into(),
        name: obj.into(),
    };
    match sa {
        Some((ns, sa_name)) => checks.push(imp("serviceaccounts", ns, sa_name)),
        None => checks.push(imp("users", "", &name)),
    }
    checks.extend(groups.iter().map(|g| imp("groups", "", g)));
    let p = if caller.groups.iter().any(|g| g == rbac::MASTERS) {
        Arc::new(Policy::default())
    } else {
        policy()
    };
    for attrs in &checks {
        if !rbac::authorize(&p, &caller, attrs).allowed {
            return Err(forbidden(&caller, attrs, ""));
        }
    }
    let mut user_groups = match (sa, groups.is_empty()) {
        (Some((ns, _)), true) => service_account_groups(ns),
        _ => groups,
    };
    if name != ANONYMOUS && !user_groups.iter().any(|g| g == AUTHENTICATED) {
        user_groups.push(AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name,
        groups: user_groups,
    })
}

/// The RBAC objects of `st` as a [`Policy`].
pub fn policy(st: &State) -> Policy {
    let list = |plural: &str| st.store.list(&(RBAC_GROUP.into(), plural.into()), None);
    let ns_of = |v: &serde_json::Value| {
        v["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Policy {
        roles: list("roles")
            .iter()
            .map(|v| (ns_of(v), Role::from_json(v)))
            .collect(),
        cluster_roles: list("clusterroles")
            .iter()
            .map(|v| Role::from_json(v))
            .collect(),
        role_bindings: list("rolebindings")
            .iter()
            .map(|v| (ns_of(v), Binding::from_json(v)))
            .collect(),
        cluster_role_bindings: list("clusterrolebindings")
            .iter()
            .map(|v| Binding::from_json(v))
            .collect(),
    }
}

/// The attributes of a request for a resource, as upstream's `RequestInfo` derives them.
pub fn resource_attributes(
    method: &http::Method,
    rp: &ResourcePath,
    watch_query: bool,
) -> Attributes {
    let named = rp.name.is_some();
    let verb = match *method {
        http::Method::GET | http::Method::HEAD if rp.watch || watch_query => "watch",
        http::Method::GET | http::Method::HEAD if named => "get",
        http::Method::GET | http::Method::HEAD => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "",
    };
    let name = rp.name.clone().unwrap_or_default();
    // `/api/v1/namespaces/foo` is in the namespace `foo`.
    let namespace = match (&rp.namespace, rp.plural.as_str()) {
        (Some(ns), _) => ns.clone(),
        (None, "namespaces") if rp.group.is_empty() => name.clone(),
        (None, _) => String::new(),
    };
    Attributes::Resource {
        verb: verb.into(),
        group: rp.group.clone(),
        resource: rp.plural.clone(),
        subresource: rp.sub.clone().unwrap_or_default(),
        namespace,
        name,
    }
}

/// The attributes of any request.
pub fn attributes(
    method: &http::Method,
    path: &str,
    query: Option<&str>,
    route: &Route,
) -> Attributes {
    match route {
        Route::Resource(rp) => {
            let q = super::router::query(query);
            let watching = q.get("watch").is_some_and(|v| v == "true" || v == "1");
            resource_attributes(method, rp, watching)
        }
        _ => Attributes::NonResource {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.into(),
        },
    }
}

/// Upstream's 403 for a denied request (`reason` is appended when not empty).
pub fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let mut msg = rbac::forbidden_message(user, attrs);
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let mut e = match attrs {
        Attributes::Resource {
            group,
            resource,
            name,
            ..
        } => {
            let gr = group_resource(group, resource);
            let mut e = if name.is_empty() {
                ApiError::new(403, "Forbidden", format!("{gr} is forbidden: {msg}"))
            } else {
                ApiError::new(
                    403,
                    "Forbidden",
                    format!("{gr} \"{name}\" is forbidden: {msg}"),
                )
            };
            e.details = Some(serde_json::json!({"name": name, "group": group, "kind": resource}));
            e
        }
        Attributes::NonResource { .. } => {
            ApiError::new(403, "Forbidden", format!("forbidden: {msg}"))
        }
    };
    if e.details.is_none() {
        e.details = Some(serde_json::json!({}));
    }
    e
}

/// The RBAC policy compiled from the stored objects, kept until an object of the RBAC group
/// changes (as the real authorizer reads its informers' caches, not storage, per request).
#[derive(Debug, Default)]
pub struct PolicyCache(parking_lot::Mutex<Option<(u64, Arc<Policy>)>>);

/// The RBAC policy in force now.
pub fn current_policy(shared: &Shared) -> Arc<Policy> {
    let st = shared.state.lock();
    let rv = st.store.group_rv(RBAC_GROUP);
    let mut cache = shared.policy.0.lock();
    if let Some((cached_rv, policy)) = cache.as_ref()
        && *cached_rv == rv
    {
        return policy.clone();
    }
    let fresh = Arc::new(policy(&st));
    *cache = Some((rv, fresh.clone()));
    fresh
}

/// Authenticates, impersonates and authorises a request: the user it runs as, or the error.
/// `who` is set to the user's name once authenticated, even if the request is then refused.
pub fn check(
    shared: &Shared,
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    route: &Route,
    who: &mut Option<String>,
) -> Result<UserInfo, ApiError> {
    let caller = authenticate(shared, headers)?;
    *who = Some(caller.name.clone());
    let user = impersonate(|| current_policy(shared), caller, headers)?;
    *who = Some(user.name.clone());
    let attrs = attributes(method, uri.path(), uri.query(), route);
    if user.groups.iter().any(|g| g == rbac::MASTERS) {
        return Ok(user);
    }
    let decision = rbac::authorize(&current_policy(shared), &user, &attrs);
    if decision.allowed {
        Ok(user)
    } else {
        tracing::debug!(user = %user.name, ?attrs, "forbidden");
        Err(forbidden(&user, &attrs, &decision.reason))
    }
}
