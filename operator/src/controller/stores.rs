//! The controller's reflector stores: every read a reconcile makes comes from these
//! watch caches, never from a LIST or GET per reconcile.

use super::split_resource;
use crate::children::{GATEWAY_NAME, MANAGED_BY, ROLLOUT_LABEL};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{ApiResource, DynamicObject};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use weir_crds::Rollout;

/// Read handles on the watch caches the controller keeps.
#[derive(Clone)]
pub struct Stores {
    /// Every Rollout.
    pub rollouts: Store<DeserializeGuard<Rollout>>,
    /// Deployments labelled `app.kubernetes.io/managed-by: weir` (revisions and gateways).
    pub deployments: Store<Deployment>,
    /// Services labelled `app.kubernetes.io/managed-by: weir`.
    pub services: Store<Service>,
    /// TrafficSplits labelled `app.kubernetes.io/managed-by: weir`.
    pub splits: Store<DynamicObject>,
    /// ServiceAccounts labelled `app.kubernetes.io/managed-by: weir` (the gateways').
    pub service_accounts: Store<ServiceAccount>,
}

/// The write halves of [`Stores`], handed to the reflectors once.
pub struct Writers {
    /// Feeds [`Stores::rollouts`].
    pub rollouts: Writer<DeserializeGuard<Rollout>>,
    /// Feeds [`Stores::deployments`].
    pub deployments: Writer<Deployment>,
    /// Feeds [`Stores::services`].
    pub services: Writer<Service>,
    /// Feeds [`Stores::splits`].
    pub splits: Writer<DynamicObject>,
    /// Feeds [`Stores::service_accounts`].
    pub service_accounts: Writer<ServiceAccount>,
}

/// Empty stores and the writers that fill them.
pub fn new() -> (Stores, Writers) {
    let rollouts = Writer::default();
    let deployments = Writer::default();
    let services = Writer::default();
    let split_type: ApiResource = split_resource();
    let splits = Writer::new(split_type);
    let service_accounts = Writer::default();
    let stores = Stores {
        rollouts: rollouts.as_reader(),
        deployments: deployments.as_reader(),
        services: services.as_reader(),
        splits: splits.as_reader(),
        service_accounts: service_accounts.as_reader(),
    };
    let writers = Writers {
        rollouts,
        deployments,
        services,
        splits,
        service_accounts,
    };
    (stores, writers)
}

fn belongs_to(labels: &std::collections::BTreeMap<String, String>, rollout: &str) -> bool {
    labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
        && labels.get(ROLLOUT_LABEL).map(String::as_str) == Some(rollout)
}

// === impl Stores ===

impl Stores {
    /// Waits until every store holds its first full listing.
    pub async fn wait_until_ready(&self) -> bool {
        self.rollouts.wait_until_ready().await.is_ok()
            && self.deployments.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.splits.wait_until_ready().await.is_ok()
            && self.service_accounts.wait_until_ready().await.is_ok()
    }

    /// The Deployments of Rollout `name` in `ns`.
    pub fn rollout_deployments(&self, ns: &str, name: &str) -> Vec<Arc<Deployment>> {
        self.deployments
            .state_filter(|d| d.namespace().as_deref() == Some(ns) && belongs_to(d.labels(), name))
    }

    /// The Services of Rollout `name` in `ns`.
    pub fn rollout_services(&self, ns: &str, name: &str) -> Vec<Arc<Service>> {
        self.services
            .state_filter(|s| s.namespace().as_deref() == Some(ns) && belongs_to(s.labels(), name))
    }

    /// The Service `name` in `ns`, if Weir manages it.
    pub fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(ns))
    }

    /// The TrafficSplit `name` in `ns`, if Weir manages it.
    pub fn split(&self, ns: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.splits
            .get(&ObjectRef::new_with(name, split_resource()).within(ns))
    }

    /// The cached resourceVersion of `kind` `name` in `ns` (the kinds the controller
    /// writes for a Rollout: Rollout, Deployment, Service, TrafficSplit).
    pub fn resource_version(&self, kind: &str, ns: &str, name: &str) -> Option<String> {
        let at = |meta: &kube::api::ObjectMeta| meta.resource_version.clone();
        match kind {
            "Rollout" => self
                .rollouts
                .get(&ObjectRef::new(name).within(ns))
                .and_then(|r| at(r.meta())),
            "Deployment" => self
                .deployments
                .get(&ObjectRef::new(name).within(ns))
                .and_then(|d| at(d.meta())),
            "Service" => self.service(ns, name).and_then(|s| at(s.meta())),
            "TrafficSplit" => self.split(ns, name).and_then(|s| at(s.meta())),
            _ => None,
        }
    }

    /// The namespace gateway's Deployment, if it exists.
    pub fn gateway(&self, ns: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&ObjectRef::new(GATEWAY_NAME).within(ns))
    }

    /// The namespace gateway's ServiceAccount, if it exists.
    pub fn gateway_service_account(&self, ns: &str) -> Option<Arc<ServiceAccount>> {
        self.service_accounts
            .get(&ObjectRef::new(GATEWAY_NAME).within(ns))
    }

    /// The Rollouts in `ns` other than `name` that are not being deleted.
    pub fn other_live_rollouts(&self, ns: &str, name: &str) -> usize {
        self.rollouts
            .state_filter(|r| {
                r.namespace().as_deref() == Some(ns)
                    && r.name_any() != name
                    && r.meta().deletion_timestamp.is_none()
            })
            .len()
    }
}
