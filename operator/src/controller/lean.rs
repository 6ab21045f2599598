//! What the controller drops from an object before caching it: every field that no
//! reconcile reads. At 1,000 Rollouts the watch caches are most of the operator's memory.
//! (Deployments are cached in their own cut-down shape: [`super::cached`].)

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
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

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
