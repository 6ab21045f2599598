//! What the controller drops from an object before caching it: every field that no
//! reconcile reads. At 1,000 Rollouts the watch caches are most of the operator's memory,
//! and a revision's Deployment and Services are two thirds of what they hold.

use crate::children::GATEWAY_NAME;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::Service;

/// Drops `managedFields` (often larger than the object's spec) and kubectl's last-applied
/// copy of the whole object.
pub(crate) fn object<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The annotation where `kubectl apply` keeps the whole object it last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A revision's Deployment keeps its metadata, `spec.replicas` and its status counts: the
/// reconcile reads its revision and template hash (labels and annotation), its replicas and
/// available replicas, and its creation and deletion times. The pod template, strategy and
/// status conditions go. The namespace gateway's Deployment is kept whole: it is compared
/// with the one Weir wants ([`crate::children::gateway_differs`]).
pub(crate) fn deployment(d: &mut Deployment) {
    object(d);
    if d.metadata.name.as_deref() == Some(GATEWAY_NAME) {
        return;
    }
    d.spec = DeploymentSpec {
        replicas: d.spec.replicas,
        ..DeploymentSpec::default()
    };
    if let Some(status) = d.status.as_mut() {
        status.conditions = None;
    }
}

/// A Service keeps only its metadata: the reconcile reads which Rollout and revision it
/// belongs to (labels) and whether it is being deleted, never its spec.
pub(crate) fn service(s: &mut Service) {
    object(s);
    s.spec = None;
    s.status = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_named(name: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {"weir.dev/revision": "2"},
                "annotations": {"weir.dev/template-hash": "abc", LAST_APPLIED: "{}"},
                "managedFields": [{"manager": "weir", "operation": "Apply"}],
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "foobar"}},
                "template": {"spec": {"containers": [{"name": "app", "image": "demo:v2"}]}},
            },
            "status": {
                "replicas": 3,
                "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_revision_deployment_keeps_what_a_reconcile_reads_and_drops_its_template() {
        let mut d = deployment_named("foobar-v2");
        deployment(&mut d);
        let spec = &d.spec;
        let status = d.status.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(status.available_replicas, Some(2));
        assert_eq!(d.metadata.labels.unwrap()["weir.dev/revision"], "2");
        let annotations = d.metadata.annotations.unwrap();
        assert_eq!(annotations["weir.dev/template-hash"], "abc");
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(d.metadata.managed_fields, None);
        assert_eq!(spec.template, Default::default());
        assert_eq!(status.conditions, None);
    }

    #[test]
    fn the_gateway_deployment_keeps_its_pod_template() {
        let mut d = deployment_named(GATEWAY_NAME);
        deployment(&mut d);
        let pod = d.spec.template.spec.unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some("demo:v2"));
        assert_eq!(d.metadata.managed_fields, None);
    }

    #[test]
    fn a_service_keeps_only_its_metadata() {
        let mut s: Service = serde_json::from_value(json!({
            "metadata": {"name": "foobar-v2", "labels": {"weir.dev/rollout": "foobar"},
                "managedFields": [{"manager": "weir"}]},
            "spec": {"selector": {"app": "foobar"}, "ports": [{"port": 80}]},
        }))
        .unwrap();
        service(&mut s);
        assert_eq!(s.spec, None);
        assert_eq!(s.metadata.managed_fields, None);
        assert_eq!(s.metadata.labels.unwrap()["weir.dev/rollout"], "foobar");
    }
}
