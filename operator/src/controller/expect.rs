//! Expectations: the writes a reconcile made that the watch caches have not shown yet.
//!
//! A reconcile plans from the reflector stores. Right after it writes, a store may still
//! hold the object as it was, and planning from it would repeat the write's decisions (and
//! its Events). So each write is recorded here (the resourceVersion it produced, or that the
//! object goes), every watch event passing through a reflector ticks off what it shows, and
//! a Rollout with writes not yet seen is not planned again until they are (or until
//! [`EXPECTATION_TTL`] passes, in case an event was missed).

use crate::children::ROLLOUT_LABEL;
use kube::ResourceExt;
use kube::runtime::watcher;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long an unseen write holds back its Rollout at most.
pub const EXPECTATION_TTL: Duration = Duration::from_secs(5);

/// What a write should look like in the watch cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The object at this resourceVersion (or its watch event) has been seen.
    Version(String),
    /// The object's deletion has been seen.
    Gone,
}

/// (namespace, Rollout name).
type Owner = (String, String);
/// (kind, object name).
type Item = (&'static str, String);

/// Unseen writes, by the Rollout that made them.
#[derive(Default)]
pub struct Expectations(Mutex<HashMap<Owner, Pending>>);

/// One Rollout's unseen writes and when each was made.
type Pending = HashMap<Item, (Want, Instant)>;

// === impl Expectations ===

impl Expectations {
    /// Records that Rollout `ns/rollout` wrote `kind` `name` and expects to see `want`.
    pub fn expect(&self, ns: &str, rollout: &str, kind: &'static str, name: &str, want: Want) {
        self.0
            .lock()
            .entry((ns.to_string(), rollout.to_string()))
            .or_default()
            .insert((kind, name.to_string()), (want, Instant::now()));
    }

    /// Ticks off `kind` `name` of `ns/rollout` if `rv` is the version it waits for: the
    /// cache already showed the write (its watch event passed before the write was recorded,
    /// or the write changed nothing and makes no event at all).
    pub fn already_seen(&self, ns: &str, rollout: &str, kind: &'static str, name: &str, rv: &str) {
        let mut map = self.0.lock();
        let key = (ns.to_string(), rollout.to_string());
        let Some(items) = map.get_mut(&key) else {
            return;
        };
        let item = (kind, name.to_string());
        if matches!(items.get(&item), Some((Want::Version(v), _)) if v == rv) {
            items.remove(&item);
            if items.is_empty() {
                map.remove(&key);
            }
        }
    }

    /// Whether every write of `ns/rollout` has been seen (expired ones count as seen).
    pub fn settled(&self, ns: &str, rollout: &str, now: Instant) -> bool {
        let mut map = self.0.lock();
        let key = (ns.to_string(), rollout.to_string());
        let Some(items) = map.get_mut(&key) else {
            return true;
        };
        items.retain(|_, (_, since)| now.duration_since(*since) < EXPECTATION_TTL);
        let settled = items.is_empty();
        if settled {
            map.remove(&key);
        }
        settled
    }

    /// Forgets everything `ns/rollout` expected (it is gone).
    pub fn forget(&self, ns: &str, rollout: &str) {
        self.0.lock().remove(&(ns.to_string(), rollout.to_string()));
    }

    /// Ticks off what one watch event shows. `owner_of` names the Rollout an object
    /// belongs to. A relist (`InitDone`) replaces the store with a fresh listing, so it
    /// clears every expectation of that kind.
    pub fn observe<K: kube::Resource>(
        &self,
        kind: &'static str,
        event: &watcher::Event<K>,
        owner_of: impl Fn(&K) -> Option<String>,
    ) {
        let (obj, deleted) = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => (o, false),
            watcher::Event::Delete(o) => (o, true),
            watcher::Event::Init => return,
            watcher::Event::InitDone => {
                let mut map = self.0.lock();
                for items in map.values_mut() {
                    items.retain(|(k, _), _| *k != kind);
                }
                map.retain(|_, items| !items.is_empty());
                return;
            }
        };
        let (Some(ns), Some(owner)) = (obj.namespace(), owner_of(obj)) else {
            return;
        };
        let mut map = self.0.lock();
        let key = (ns, owner);
        let Some(items) = map.get_mut(&key) else {
            return;
        };
        let item = (kind, obj.name_any());
        let gone = deleted || obj.meta().deletion_timestamp.is_some();
        let seen = match items.get(&item) {
            Some((Want::Gone, _)) => gone,
            Some((Want::Version(rv), _)) => gone || obj.resource_version().as_ref() == Some(rv),
            None => false,
        };
        if seen {
            items.remove(&item);
            if items.is_empty() {
                map.remove(&key);
            }
        }
    }
}

/// The Rollout a child belongs to, from its `weir.dev/rollout` label.
pub fn child_owner<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.labels().get(ROLLOUT_LABEL).cloned()
}

/// A Rollout belongs to itself.
pub fn self_owner<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.meta().name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::ObjectMeta;

    fn deployment(name: &str, rv: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                resource_version: Some(rv.into()),
                labels: Some([(ROLLOUT_LABEL.to_string(), "foobar".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        }
    }

    #[test]
    fn a_write_holds_its_rollout_until_its_event_passes() {
        let e = Expectations::default();
        let now = Instant::now();
        assert!(e.settled("default", "foobar", now));
        e.expect(
            "default",
            "foobar",
            "Deployment",
            "foobar-v2",
            Want::Version("7".into()),
        );
        e.expect("default", "foobar", "Deployment", "foobar-v1", Want::Gone);
        assert!(!e.settled("default", "foobar", now));
        assert!(e.settled("default", "other", now));
        // An older version of the object does not count; its own version does.
        e.observe(
            "Deployment",
            &watcher::Event::Apply(deployment("foobar-v2", "6")),
            child_owner,
        );
        assert!(!e.settled("default", "foobar", now));
        e.observe(
            "Deployment",
            &watcher::Event::Apply(deployment("foobar-v2", "7")),
            child_owner,
        );
        assert!(!e.settled("default", "foobar", now));
        // An update of an object expected gone is not its deletion.
        e.observe(
            "Deployment",
            &watcher::Event::Apply(deployment("foobar-v1", "8")),
            child_owner,
        );
        assert!(!e.settled("default", "foobar", now));
        e.observe(
            "Deployment",
            &watcher::Event::Delete(deployment("foobar-v1", "8")),
            child_owner,
        );
        assert!(e.settled("default", "foobar", now));
    }

    #[test]
    fn a_write_the_cache_already_shows_holds_nothing() {
        let e = Expectations::default();
        let want = Want::Version("7".into());
        e.expect("default", "foobar", "Deployment", "foobar-v2", want);
        // Another version in the cache, or another object, leaves it waiting.
        e.already_seen("default", "foobar", "Deployment", "foobar-v2", "6");
        e.already_seen("default", "foobar", "Deployment", "foobar-v1", "7");
        assert!(!e.settled("default", "foobar", Instant::now()));
        e.already_seen("default", "foobar", "Deployment", "foobar-v2", "7");
        assert!(e.settled("default", "foobar", Instant::now()));
    }

    #[test]
    fn unseen_writes_expire_and_a_relist_clears_its_kind() {
        let e = Expectations::default();
        e.expect(
            "default",
            "foobar",
            "Deployment",
            "foobar-v2",
            Want::Version("7".into()),
        );
        let later = Instant::now() + EXPECTATION_TTL + Duration::from_millis(1);
        assert!(!e.settled("default", "foobar", Instant::now()));
        assert!(e.settled("default", "foobar", later));
        e.expect(
            "default",
            "foobar",
            "Deployment",
            "foobar-v2",
            Want::Version("7".into()),
        );
        e.expect(
            "default",
            "foobar",
            "Service",
            "foobar-v2",
            Want::Version("9".into()),
        );
        e.observe::<Deployment>("Deployment", &watcher::Event::InitDone, child_owner);
        assert!(!e.settled("default", "foobar", Instant::now()));
        e.observe::<k8s_openapi::api::core::v1::Service>(
            "Service",
            &watcher::Event::InitDone,
            child_owner,
        );
        assert!(e.settled("default", "foobar", Instant::now()));
    }
}
