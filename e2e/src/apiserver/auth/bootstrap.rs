//! The bootstrap RBAC policy a fresh cluster has (a subset of upstream's
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): `cluster-admin` for
//! `system:masters`; discovery, public info and self-reviews for everyone signed in; the
//! aggregated `admin`, `edit` and `view` roles with their built-in parts; and
//! `system:auth-delegator`.

use serde_json::{Value, json};

const AGG: &str = "rbac.authorization.k8s.io/aggregate-to-";

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": with_bootstrap(labels),
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules})
}

fn aggregated(name: &str, target: &str, labels: Value) -> Value {
    let mut role = cluster_role(name, labels, json!([]));
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {format!("{AGG}{target}"): "true"}}]});
    role
}

fn with_bootstrap(mut labels: Value) -> Value {
    if let Some(m) = labels.as_object_mut() {
        m.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    }
    labels
}

fn binding(name: &str, role: &str, kind: &str, subject: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": with_bootstrap(json!({})),
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]})
}

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 7] = [
    "create",
    "delete",
    "deletecollection",
    "patch",
    "update",
    "get",
    "list",
];

/// The ClusterRoles a fresh cluster has.
pub fn cluster_roles() -> Vec<Value> {
    let core_view = [
        "pods",
        "services",
        "endpoints",
        "configmaps",
        "serviceaccounts",
        "events",
    ];
    let apps = ["deployments", "replicasets", "controllerrevisions"];
    vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        cluster_role(
            "system:discovery",
            json!({}),
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                                        "/livez", "/openapi", "/openapi/*", "/readyz",
                                        "/version", "/version/"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        ),
        cluster_role(
            "system:auth-delegator",
            json!({}),
            json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
                    "verbs": ["create"]},
                   {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
                    "verbs": ["create"]}]),
        ),
        aggregated("admin", "admin", json!({})),
        aggregated("edit", "edit", json!({format!("{AGG}admin"): "true"})),
        aggregated("view", "view", json!({format!("{AGG}edit"): "true"})),
        cluster_role(
            "system:aggregate-to-view",
            json!({format!("{AGG}view"): "true"}),
            json!([{"apiGroups": [""], "resources": core_view, "verbs": READ},
                   {"apiGroups": ["apps"], "resources": apps, "verbs": READ},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
                   {"apiGroups": ["apps"], "resources": ["deployments/status", "deployments/scale"],
                    "verbs": READ}]),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            json!({format!("{AGG}edit"): "true"}),
            json!([{"apiGroups": [""], "resources": ["pods", "services", "configmaps", "secrets",
                                                   "serviceaccounts", "endpoints"], "verbs": WRITE},
                   {"apiGroups": ["apps"], "resources": ["deployments", "replicasets",
                                                       "deployments/scale"], "verbs": WRITE}]),
        ),
        cluster_role(
            "system:aggregate-to-admin",
            json!({format!("{AGG}admin"): "true"}),
            json!([{"apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["roles", "rolebindings"], "verbs": WRITE},
                   {"apiGroups": ["authorization.k8s.io"],
                    "resources": ["localsubjectaccessreviews"], "verbs": ["create"]}]),
        ),
    ]
}

/// The namespaced Roles a fresh cluster has, as (namespace, Role).
pub fn roles() -> Vec<(&'static str, Value)> {
    vec![(
        "kube-system",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "extension-apiserver-authentication-reader",
                         "namespace": "kube-system", "labels": with_bootstrap(json!({})),
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                       "resourceNames": ["extension-apiserver-authentication"],
                       "verbs": ["get", "list", "watch"]}]}),
    )]
}

/// The ClusterRoleBindings a fresh cluster has.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", "Group", "system:masters"),
        binding(
            "system:discovery",
            "system:discovery",
            "Group",
            "system:authenticated",
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            "Group",
            "system:authenticated",
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "Group",
            "system:unauthenticated",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::rbac::{Attributes, Binding, Policy, Role, authorize};
    use super::*;

    fn policy() -> Policy {
        Policy {
            cluster_roles: cluster_roles().iter().map(Role::from_json).collect(),
            cluster_role_bindings: cluster_role_bindings()
                .iter()
                .map(Binding::from_json)
                .collect(),
            ..Policy::default()
        }
    }

    #[test]
    fn view_is_inside_edit_and_edit_inside_admin() {
        let p = policy();
        let names = |role: &str| -> Vec<String> {
            p.cluster_role_rules(role)
                .into_iter()
                .flat_map(|r| r.resources)
                .collect()
        };
        let (view, edit, admin) = (names("view"), names("edit"), names("admin"));
        assert!(view.contains(&"pods".to_string()));
        assert!(
            !view.contains(&"secrets".to_string()),
            "view never reads Secrets"
        );
        assert!(view.iter().all(|r| edit.contains(r)));
        assert!(edit.iter().all(|r| admin.contains(r)));
        assert!(admin.contains(&"rolebindings".to_string()));
        assert!(!edit.contains(&"rolebindings".to_string()));
    }

    #[test]
    fn everyone_signed_in_may_discover_and_review_themselves() {
        let p = policy();
        let u = super::super::service_account_user("ns", "x");
        let path = |p: &str| Attributes::NonResource {
            verb: "get".into(),
            path: p.into(),
        };
        assert!(authorize(&p, &u, &path("/apis/weir.dev/v1alpha1")).allowed);
        assert!(!authorize(&p, &u, &path("/metrics")).allowed);
        let ssar = Attributes::Resource {
            verb: "create".into(),
            group: "authorization.k8s.io".into(),
            resource: "selfsubjectaccessreviews".into(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
        };
        assert!(authorize(&p, &u, &ssar).allowed);
    }
}
