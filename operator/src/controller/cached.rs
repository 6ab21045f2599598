//! The shape in which the controller caches Deployments: only what a reconcile reads. A
//! k8s-openapi `Deployment` is about 2.4 KB before any of its strings, most of it an empty
//! pod template; at 1,000 Rollouts the revision Deployments were the largest of the caches.

use crate::children::GATEWAY_NAME;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ObjectMeta;
use serde::{Deserialize, Deserializer};

/// A cached Deployment: its metadata, replica counts and, for the namespace gateway only, the
/// whole Deployment (compared with the one Weir wants by [`crate::children::gateway_differs`]).
/// A revision's reconcile reads its revision and template hash (labels and annotation), its
/// replicas and available replicas, and its creation and deletion times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CachedDeployment {
    /// The metadata, without `managedFields` and kubectl's last-applied copy.
    pub metadata: ObjectMeta,
    /// `spec.replicas`.
    pub replicas: Option<i32>,
    /// `status.availableReplicas`.
    pub available_replicas: Option<i32>,
    /// The whole Deployment, kept for the gateway only.
    pub gateway: Option<Box<Deployment>>,
}

impl From<Deployment> for CachedDeployment {
    fn from(mut d: Deployment) -> Self {
        super::lean::object(&mut d);
        let replicas = d.spec.replicas;
        let available_replicas = d.status.as_ref().and_then(|s| s.available_replicas);
        // Only the gateway's metadata is needed twice.
        let (metadata, gateway) = if d.metadata.name.as_deref() == Some(GATEWAY_NAME) {
            (d.metadata.clone(), Some(Box::new(d)))
        } else {
            (d.metadata, None)
        };
        Self {
            metadata,
            replicas,
            available_replicas,
            gateway,
        }
    }
}

/// Read as a whole Deployment, then cut down: the watch never holds more than one full
/// Deployment at a time.
impl<'de> Deserialize<'de> for CachedDeployment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Deployment::deserialize(deserializer).map(Self::from)
    }
}

impl k8s_openapi::Resource for CachedDeployment {
    const API_VERSION: &'static str = <Deployment as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Deployment as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Deployment as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Deployment as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Deployment as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <Deployment as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for CachedDeployment {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::lean::LAST_APPLIED;
    use serde_json::json;

    fn deployment_named(name: &str) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
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
            "status": {"replicas": 3, "availableReplicas": 2},
        })
    }

    #[test]
    fn a_revision_deployment_keeps_what_a_reconcile_reads_and_nothing_else() {
        let d: CachedDeployment = serde_json::from_value(deployment_named("foobar-v2")).unwrap();
        assert_eq!((d.replicas, d.available_replicas), (Some(3), Some(2)));
        assert_eq!(d.metadata.labels.unwrap()["weir.dev/revision"], "2");
        let annotations = d.metadata.annotations.unwrap();
        assert_eq!(annotations["weir.dev/template-hash"], "abc");
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(d.metadata.managed_fields, None);
        assert_eq!(d.gateway, None, "no pod template is kept");
    }

    #[test]
    fn the_gateway_deployment_is_kept_whole() {
        let d: CachedDeployment = serde_json::from_value(deployment_named(GATEWAY_NAME)).unwrap();
        let whole = d.gateway.unwrap();
        let pod = whole.spec.template.spec.unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some("demo:v2"));
        assert_eq!(whole.metadata.managed_fields, None);
    }

    #[test]
    fn it_is_addressed_as_an_apps_v1_deployment() {
        use kube::Resource;
        assert_eq!(CachedDeployment::kind(&()), "Deployment");
        assert_eq!(CachedDeployment::api_version(&()), "apps/v1");
        assert_eq!(CachedDeployment::plural(&()), "deployments");
    }
}
