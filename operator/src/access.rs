//! The API calls the operator and `kubectl weir` make, as (API group, resource, verbs): what `config/rbac` must grant.
//!
//! The operator checks its own lists at start ([`preflight`]) and logs what it may not do;
//! the RBAC coverage test checks `config/rbac` grants each entry and nothing with `*`. The
//! gateway's calls come from `weir_proxy::source::kube` (list and watch of every kind).

use kube::Client;
use kube::api::{Api, PostParams};

/// Verbs on one resource (`resource/subresource` for a subresource) of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// API group ("" for core).
    pub group: &'static str,
    /// Plural resource, or `resource/subresource`.
    pub resource: &'static str,
    /// The verbs used.
    pub verbs: &'static [&'static str],
    /// Object names the calls are limited to (empty = any).
    pub names: &'static [&'static str],
}

const fn any(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
) -> Access {
    Access {
        group,
        resource,
        verbs,
        names: &[],
    }
}

/// The ClusterRole the gateway's RoleBinding refers to (see `config/rbac/gateway.yaml`).
pub const GATEWAY_CLUSTER_ROLE: &str = "weir-gateway";

/// What the controller does in every namespace it manages Rollouts in.
pub const OPERATOR: &[Access] = &[
    any("weir.dev", "rollouts", &["get", "list", "watch", "patch"]),
    any("weir.dev", "rollouts/status", &["patch"]),
    any(
        "apps",
        "deployments",
        &["get", "list", "watch", "patch", "delete"],
    ),
    any("", "services", &["get", "list", "watch", "patch", "delete"]),
    any(
        "split.smi-spec.io",
        "trafficsplits",
        &["get", "list", "watch", "patch", "delete"],
    ),
    any(
        "apps",
        "controllerrevisions",
        &["get", "list", "patch", "delete"],
    ),
    any("events.k8s.io", "events", &["create", "patch"]),
    // The namespace gateway: its ServiceAccount, and the RoleBinding of its read-only role.
    any("", "serviceaccounts", &["list", "watch", "patch", "delete"]),
    any(
        "rbac.authorization.k8s.io",
        "rolebindings",
        &["patch", "delete"],
    ),
    Access {
        group: "rbac.authorization.k8s.io",
        resource: "clusterroles",
        verbs: &["bind"],
        names: &[GATEWAY_CLUSTER_ROLE],
    },
    // The TrafficMetrics API: the objects it describes and the pods it scrapes.
    any("", "pods", &["get", "list", "watch"]),
    any("", "namespaces", &["get", "list", "watch"]),
    // Adoption re-points a Service to the gateway only once its revision Service has ready endpoints.
    any("discovery.k8s.io", "endpointslices", &["list"]),
    // The analysis reads the canary Deployment's figures through the aggregated API.
    any("metrics.smi-spec.io", "deployments", &["get"]),
];

/// Leader election, in the Lease's namespace.
pub const LEADER_ELECTION: &[Access] = &[any(
    "coordination.k8s.io",
    "leases",
    &["get", "create", "patch"],
)];

/// The TrafficMetrics API server's front-proxy configuration, in `kube-system`.
pub const METRICS_API_AUTH: &[Access] = &[Access {
    group: "",
    resource: "configmaps",
    verbs: &["get"],
    names: &["extension-apiserver-authentication"],
}];

/// The Secret of the metrics API's managed serving certificate (`--serving-cert-secret`,
/// `config/operator`), in the operator's namespace. `create` cannot be limited by name.
pub const SERVING_CERT_SECRET: &[Access] = &[
    Access {
        group: "",
        resource: "secrets",
        verbs: &["get", "update"],
        names: &["weir-metrics-tls"],
    },
    any("", "secrets", &["create"]),
];

/// The APIService whose `caBundle` the operator writes (`--api-service`).
pub const API_SERVICE: &[Access] = &[Access {
    group: "apiregistration.k8s.io",
    resource: "apiservices",
    verbs: &["get", "patch"],
    names: &["v1alpha1.metrics.smi-spec.io"],
}];

/// What `kubectl weir` reads (`weir-rollout-viewer`).
pub const PLUGIN_VIEW: &[Access] = &[
    any("weir.dev", "rollouts", &["get", "list", "watch"]),
    any("apps", "deployments", &["get", "list", "watch"]),
    any("apps", "controllerrevisions", &["get", "list"]),
    any("", "pods", &["get", "list", "watch"]),
    any(
        "split.smi-spec.io",
        "trafficsplits",
        &["get", "list", "watch"],
    ),
    any("coordination.k8s.io", "leases", &["get", "list"]),
    // The TrafficMetrics API (`metrics.smi-spec.io`), one resource per kind it describes.
    any("metrics.smi-spec.io", "namespaces", &["get", "list"]),
    any("metrics.smi-spec.io", "pods", &["get", "list"]),
    any("metrics.smi-spec.io", "deployments", &["get", "list"]),
    any("metrics.smi-spec.io", "services", &["get", "list"]),
    any("metrics.smi-spec.io", "trafficsplits", &["get", "list"]),
];

/// What `kubectl weir promote/abort/pause/resume/undo` write (`weir-rollout-operator`).
pub const PLUGIN_OPERATE: &[Access] = &[
    any("weir.dev", "rollouts/status", &["patch"]),
    any("weir.dev", "rollouts", &["patch"]),
];

/// The entries of `wanted` this client may not do in `namespace` ("" = cluster-wide), as
/// `verb resource.group` strings, asked of the API server with SelfSubjectAccessReviews.
pub async fn preflight(
    client: &Client,
    namespace: &str,
    wanted: &[Access],
) -> Result<Vec<String>, kube::Error> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for a in wanted {
        let (resource, sub) = match a.resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (a.resource, None),
        };
        for verb in a.verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(a.group.into()),
                        resource: Some(resource.into()),
                        subresource: sub.clone(),
                        verb: Some((*verb).into()),
                        namespace: Some(namespace.into()),
                        name: a.names.first().map(|n| n.to_string()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api.create(&PostParams::default(), &review).await?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(format!("{verb} {}.{}", a.resource, a.group));
            }
        }
    }
    Ok(missing)
}

/// The RoleBinding that grants the namespace gateway's ServiceAccount the read-only
/// [`GATEWAY_CLUSTER_ROLE`] in `namespace` only.
pub fn gateway_role_binding(namespace: &str) -> k8s_openapi::api::rbac::v1::RoleBinding {
    use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let name = crate::children::GATEWAY_NAME;
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(
                [(
                    crate::children::MANAGED_BY.0.to_string(),
                    crate::children::MANAGED_BY.1.to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: GATEWAY_CLUSTER_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_binding_names_its_service_account_and_role() {
        let b = gateway_role_binding("demo");
        assert_eq!(b.metadata.namespace.as_deref(), Some("demo"));
        assert_eq!(b.role_ref.kind, "ClusterRole");
        assert_eq!(b.role_ref.name, GATEWAY_CLUSTER_ROLE);
        let s = &b.subjects.unwrap_or_default()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            (
                "ServiceAccount",
                crate::children::GATEWAY_NAME,
                Some("demo")
            )
        );
    }

    #[test]
    fn no_list_uses_a_wildcard() {
        for a in OPERATOR
            .iter()
            .chain(LEADER_ELECTION)
            .chain(METRICS_API_AUTH)
            .chain(PLUGIN_VIEW)
            .chain(PLUGIN_OPERATE)
        {
            assert!(!a.resource.contains('*') && !a.group.contains('*'), "{a:?}");
            assert!(a.verbs.iter().all(|v| *v != "*"), "{a:?}");
        }
    }
}
