//! The controller's reflector stores: every read a reconcile makes comes from these
//! watch caches, never from a LIST or GET per reconcile.

use super::cached::CachedDeployment;
use super::split_resource;
use crate::children::{GATEWAY_NAME, MANAGED_BY, ROLLOUT_LABEL};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{ApiResource, DynamicObject};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use weir_crds::Rollout;

/// Read handles on the watch caches the controller keeps.
#[derive(Clone)]
pub struct Stores {
    /// Every Rollout.
    pub rollouts: Store<DeserializeGuard<Rollout>>,
    /// Deployments labelled `app.kubernetes.io/managed-by: weir` (revisions and gateways).
    pub deployments: Store<CachedDeployment>,
    /// Services labelled `app.kubernetes.io/managed-by: weir`.
    pub services: Store<Service>,
    /// TrafficSplits labelled `app.kubernetes.io/managed-by: weir`.
    pub splits: Store<DynamicObject>,
    /// ServiceAccounts labelled `app.kubernetes.io/managed-by: weir` (the gateways').
    pub service_accounts: Store<ServiceAccount>,
    /// The names of each Rollout's cached Deployments and Services.
    pub children: Arc<ChildNames>,
    /// The kinds whose watch has had its first full listing.
    listed: Arc<Mutex<std::collections::HashSet<&'static str>>>,
}

/// How many kinds the controller watches: Rollouts, Deployments, Services, TrafficSplits
/// and ServiceAccounts.
const WATCHED_KINDS: usize = 5;

/// Which cached objects of a kind carry a Rollout's label, so that a reconcile finds its
/// own children without scanning every cached object (a scan per reconcile grows with the
/// square of the number of Rollouts). Fed by the same watch events as the stores. Entries
/// are a superset: a name is dropped when its object is deleted, and a lookup checks each
/// name against the store (an object may since have lost the label).
#[derive(Default)]
pub struct ChildNames(Mutex<HashMap<ChildKey, BTreeSet<String>>>);

/// (kind, namespace, Rollout).
type ChildKey = (&'static str, String, String);

/// The write halves of [`Stores`], handed to the reflectors once.
pub struct Writers {
    /// Feeds [`Stores::rollouts`].
    pub rollouts: Writer<DeserializeGuard<Rollout>>,
    /// Feeds [`Stores::deployments`].
    pub deployments: Writer<CachedDeployment>,
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
        children: Arc::default(),
        listed: Arc::default(),
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
    /// Notes that the watch of `kind` has its first full listing; once all five have, the
    /// operator is ready (`/ready`). Counted from the watch events rather than awaited with
    /// `Store::wait_until_ready`: that future keeps only one waker, and the Controller
    /// waits on the Rollout store's, so a second waiter may never be woken.
    pub fn listed(&self, kind: &'static str, metrics: &crate::metrics::Metrics) {
        let mut listed = self.listed.lock();
        listed.insert(kind);
        if listed.len() == WATCHED_KINDS && !metrics.ready.swap(true, Ordering::Relaxed) {
            tracing::info!("watches are up");
        }
    }

    /// The Deployments of Rollout `name` in `ns`.
    pub fn rollout_deployments(&self, ns: &str, name: &str) -> Vec<Arc<CachedDeployment>> {
        self.children.of(DEPLOYMENT, ns, name, &self.deployments)
    }

    /// The Services of Rollout `name` in `ns`.
    pub fn rollout_services(&self, ns: &str, name: &str) -> Vec<Arc<Service>> {
        self.children.of(SERVICE, ns, name, &self.services)
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
    pub fn gateway(&self, ns: &str) -> Option<Arc<CachedDeployment>> {
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

/// The kind names the child index keeps.
const DEPLOYMENT: &str = "Deployment";
const SERVICE: &str = "Service";

// === impl ChildNames ===

impl ChildNames {
    /// Notes what one watch event of `kind` shows (kinds other than Deployment and Service
    /// are not indexed).
    pub fn observe<K: Resource>(&self, kind: &'static str, event: &watcher::Event<K>) {
        let kind = match kind {
            DEPLOYMENT => DEPLOYMENT,
            SERVICE => SERVICE,
            _ => return,
        };
        let (obj, deleted) = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => (o, false),
            watcher::Event::Delete(o) => (o, true),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let (Some(ns), Some(rollout)) = (obj.namespace(), obj.labels().get(ROLLOUT_LABEL)) else {
            return;
        };
        let key = (kind, ns, rollout.clone());
        let mut map = self.0.lock();
        if deleted {
            if let Some(names) = map.get_mut(&key) {
                names.remove(&obj.name_any());
                if names.is_empty() {
                    map.remove(&key);
                }
            }
        } else {
            map.entry(key).or_default().insert(obj.name_any());
        }
    }

    /// The objects in `store` that carry Rollout `rollout`'s label in `ns`.
    fn of<K>(&self, kind: &'static str, ns: &str, rollout: &str, store: &Store<K>) -> Vec<Arc<K>>
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let key = (kind, ns.to_string(), rollout.to_string());
        let names: Vec<String> = self
            .0
            .lock()
            .get(&key)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default();
        names
            .iter()
            .filter_map(|name| store.get(&ObjectRef::new(name).within(ns)))
            .filter(|obj| belongs_to(obj.labels(), rollout))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn deployment(name: &str, rollout: &str) -> CachedDeployment {
        CachedDeployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(
                    [
                        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                        (ROLLOUT_LABEL.to_string(), rollout.to_string()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..CachedDeployment::default()
        }
    }

    fn names(found: Vec<Arc<CachedDeployment>>) -> Vec<String> {
        let mut names: Vec<String> = found.iter().map(|d| d.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_rollouts_children_are_found_by_label_and_forgotten_when_deleted() {
        let index = ChildNames::default();
        let mut writer: Writer<CachedDeployment> = Writer::default();
        let store = writer.as_reader();
        let mut feed = |event: watcher::Event<CachedDeployment>| {
            index.observe(DEPLOYMENT, &event);
            writer.apply_watcher_event(&event);
        };
        feed(watcher::Event::Init);
        feed(watcher::Event::InitApply(deployment("a-v1", "a")));
        feed(watcher::Event::InitDone);
        feed(watcher::Event::Apply(deployment("a-v2", "a")));
        feed(watcher::Event::Apply(deployment("b-v1", "b")));
        let of = |rollout: &str| names(index.of(DEPLOYMENT, "default", rollout, &store));
        assert_eq!(of("a"), ["a-v1", "a-v2"]);
        assert_eq!(of("b"), ["b-v1"]);
        assert!(index.of(DEPLOYMENT, "other", "a", &store).is_empty());
        // A child relabelled to another Rollout moves with its label.
        feed(watcher::Event::Apply(deployment("a-v2", "b")));
        assert_eq!(of("a"), ["a-v1"]);
        assert_eq!(of("b"), ["a-v2", "b-v1"]);
        feed(watcher::Event::Delete(deployment("a-v1", "a")));
        assert!(of("a").is_empty());
        // Kinds the index does not keep leave it unchanged.
        index.observe(
            "TrafficSplit",
            &watcher::Event::Apply(deployment("c-v1", "c")),
        );
        assert!(
            index
                .0
                .lock()
                .keys()
                .all(|(kind, _, _)| *kind == DEPLOYMENT)
        );
        assert!(of("c").is_empty());
    }
}
