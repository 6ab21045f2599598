//! The object store: JSON objects keyed by storage resource, namespace and name, one global
//! resourceVersion counter, and a bounded history of watch events.

use super::resources::StorageKey;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

// === impl EventType ===

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in history and broadcast to watchers.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of this change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Storage resource.
    pub storage: StorageKey,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// The object before the change, for modifications.
    pub prev: Option<Arc<Value>>,
}

/// Replayed history plus the live receiver.
pub type Subscription = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// `(namespace, name)`.
pub type ObjKey = (String, String);

/// The in-memory store.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<StorageKey, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
    /// The resourceVersion of the last change to each API group's objects.
    group_rv: BTreeMap<String, u64>,
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

// === impl Store ===

impl Store {
    /// An empty store keeping `history_cap` changes for watch resumption.
    pub fn new(history_cap: usize, channel_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(channel_cap.max(16));
        Self {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            compacted: 0,
            tx,
            group_rv: BTreeMap::new(),
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The resourceVersion below which history has been dropped.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Drops all history (so older resourceVersions get 410 Gone).
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Reads one object.
    pub fn get(&self, storage: &StorageKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(storage)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    /// Lists the objects of a resource, optionally in one namespace.
    pub fn list(&self, storage: &StorageKey, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(m) = self.objects.get(storage) else {
            return vec![];
        };
        match ns {
            Some(ns) => m
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => m.values().cloned().collect(),
        }
    }

    /// Every storage key that has objects.
    pub fn storages(&self) -> Vec<StorageKey> {
        self.objects.keys().cloned().collect()
    }

    /// The resourceVersion of the last change to an object of API group `group` (0: none
    /// yet): what a cache of the group's objects is keyed on.
    pub fn group_rv(&self, group: &str) -> u64 {
        self.group_rv.get(group).copied().unwrap_or(0)
    }

    fn record(&mut self, change: Change) {
        match self.group_rv.get_mut(&change.storage.0) {
            Some(rv) => *rv = change.rv,
            None => {
                self.group_rv.insert(change.storage.0.clone(), change.rv);
            }
        }
        let c = Arc::new(change);
        self.history.push_back(c.clone());
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        let _ = self.tx.send(c);
    }

    /// Inserts or replaces an object, stamping a new resourceVersion; returns the stored object.
    pub fn put(
        &mut self,
        storage: &StorageKey,
        ns: &str,
        name: &str,
        mut obj: Value,
    ) -> Arc<Value> {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let obj = Arc::new(obj);
        let prev = self
            .objects
            .entry(storage.clone())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change {
            rv: self.rv,
            kind,
            storage: storage.clone(),
            namespace: ns.to_string(),
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; returns it with the deletion's resourceVersion.
    pub fn remove(&mut self, storage: &StorageKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        let prev = self
            .objects
            .get_mut(storage)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut obj = (*prev).clone();
        set_rv(&mut obj, self.rv);
        let obj = Arc::new(obj);
        self.record(Change {
            rv: self.rv,
            kind: EventType::Deleted,
            storage: storage.clone(),
            namespace: ns.to_string(),
            object: obj.clone(),
            prev: Some(prev),
        });
        Some(obj)
    }

    /// Subscribes to changes after `from`: the replayed history plus a live receiver.
    ///
    /// Returns `Err(compacted)` when `from` is older than the retained history.
    pub fn subscribe_from(&self, from: u64) -> Result<Subscription, u64> {
        if from < self.compacted {
            return Err(self.compacted);
        }
        let replay = self
            .history
            .iter()
            .filter(|c| c.rv > from)
            .cloned()
            .collect();
        Ok((replay, self.tx.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> StorageKey {
        ("".into(), "configmaps".into())
    }

    #[test]
    fn resource_versions_are_global_and_monotonic() {
        let mut s = Store::new(10, 16);
        let a = s.put(&key(), "ns", "a", json!({"metadata": {"name": "a"}}));
        let b = s.put(
            &("apps".into(), "deployments".into()),
            "ns",
            "b",
            json!({"metadata": {}}),
        );
        let ra: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let rb: u64 = b["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rb > ra);
        assert_eq!(s.list(&key(), Some("ns")).len(), 1);
        assert_eq!(s.list(&key(), Some("other")).len(), 0);
    }

    #[test]
    fn history_replays_after_a_version_and_expires_old_ones() {
        let mut s = Store::new(3, 16);
        let start = s.rv();
        for i in 0..5 {
            s.put(&key(), "ns", &format!("o{i}"), json!({"metadata": {}}));
        }
        assert!(s.subscribe_from(start).is_err());
        let (replay, _) = s.subscribe_from(s.rv() - 2).unwrap();
        assert_eq!(replay.len(), 2);
        s.compact();
        assert!(s.subscribe_from(s.rv() - 1).is_err());
        assert!(s.subscribe_from(s.rv()).is_ok());
    }

    #[test]
    fn remove_emits_a_deletion_with_a_new_version() {
        let mut s = Store::new(10, 16);
        s.put(&key(), "ns", "a", json!({"metadata": {}}));
        let (_, mut rx) = s.subscribe_from(s.rv()).unwrap();
        let gone = s.remove(&key(), "ns", "a").unwrap();
        let c = rx.try_recv().unwrap();
        assert_eq!(c.kind, EventType::Deleted);
        assert_eq!(
            gone["metadata"]["resourceVersion"],
            json!(s.rv().to_string())
        );
        assert!(s.remove(&key(), "ns", "a").is_none());
    }
}
