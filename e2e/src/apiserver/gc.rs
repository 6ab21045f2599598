//! Removal and cascading garbage collection by ownerReferences (background semantics).

use super::State;
use super::admission::now;
use super::resources::StorageKey;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};

fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Marks an object for deletion (it has finalizers): sets deletionTimestamp once.
pub fn mark_deleting(st: &mut State, storage: &StorageKey, ns: &str, name: &str) -> Option<Value> {
    let cur = st.store.get(storage, ns, name)?;
    if cur["metadata"]["deletionTimestamp"].is_string() {
        return Some((*cur).clone());
    }
    let mut obj = (*cur).clone();
    obj["metadata"]["deletionTimestamp"] = json!(now());
    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    Some((*st.store.put(storage, ns, name, obj)).clone())
}

/// Deletes an object now or, with finalizers, marks it; cascades to dependents when removed.
///
/// Returns the object as removed or marked, and whether it was removed.
pub fn delete(
    st: &mut State,
    storage: &StorageKey,
    ns: &str,
    name: &str,
    orphan: bool,
) -> Option<(Value, bool)> {
    let cur = st.store.get(storage, ns, name)?;
    if has_finalizers(&cur) {
        return mark_deleting(st, storage, ns, name).map(|o| (o, false));
    }
    let removed = remove_now(st, storage, ns, name, orphan)?;
    Some((removed, true))
}

/// Removes an object from the store and runs the follow-ups (cascade, CRD and namespace cleanup).
pub fn remove_now(
    st: &mut State,
    storage: &StorageKey,
    ns: &str,
    name: &str,
    orphan: bool,
) -> Option<Value> {
    let removed = st.store.remove(storage, ns, name)?;
    let removed = (*removed).clone();
    let mut queue = VecDeque::new();
    queue.push_back((uid_of(&removed), orphan));
    if storage.0 == "apiextensions.k8s.io" && storage.1 == "customresourcedefinitions" {
        let group = removed["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = removed["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        st.registry.remove_crd(name);
        let key = (group, plural);
        for o in st.store.list(&key, None) {
            let (ons, oname) = ident(&o);
            if st.store.remove(&key, &ons, &oname).is_some() {
                queue.push_back((uid_of(&o), false));
            }
        }
    }
    if storage.0.is_empty() && storage.1 == "namespaces" {
        for key in st.store.storages() {
            for o in st.store.list(&key, Some(name)) {
                let (ons, oname) = ident(&o);
                if st.store.remove(&key, &ons, &oname).is_some() {
                    queue.push_back((uid_of(&o), false));
                }
            }
        }
    }
    cascade(st, queue);
    if !ns.is_empty() {
        finish_namespace(st, ns);
    }
    Some(removed)
}

fn ident(o: &Value) -> (String, String) {
    (
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn live_uids(st: &State) -> HashSet<String> {
    st.store
        .storages()
        .iter()
        .flat_map(|k| st.store.list(k, None))
        .map(|o| uid_of(&o))
        .collect()
}

fn cascade(st: &mut State, mut queue: VecDeque<(String, bool)>) {
    let mut budget = 100_000usize;
    while let Some((owner, orphan)) = queue.pop_front() {
        budget = budget.saturating_sub(1);
        if owner.is_empty() || budget == 0 {
            continue;
        }
        let live = live_uids(st);
        for key in st.store.storages() {
            for o in st.store.list(&key, None) {
                let refs = o["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if !refs
                    .iter()
                    .any(|r| r["uid"].as_str() == Some(owner.as_str()))
                {
                    continue;
                }
                let (ns, name) = ident(&o);
                let others_alive = refs.iter().any(|r| {
                    r["uid"]
                        .as_str()
                        .is_some_and(|u| u != owner && live.contains(u))
                });
                if orphan || others_alive {
                    let mut obj = (*o).clone();
                    let kept: Vec<Value> = refs
                        .into_iter()
                        .filter(|r| r["uid"].as_str() != Some(owner.as_str()))
                        .collect();
                    obj["metadata"]["ownerReferences"] = json!(kept);
                    st.store.put(&key, &ns, &name, obj);
                } else if has_finalizers(&o) {
                    mark_deleting(st, &key, &ns, &name);
                } else if st.store.remove(&key, &ns, &name).is_some() {
                    queue.push_back((uid_of(&o), false));
                }
            }
        }
    }
}

/// Removes a terminating namespace once nothing is left in it.
pub fn finish_namespace(st: &mut State, ns: &str) {
    let key = ("".to_string(), "namespaces".to_string());
    let Some(nsobj) = st.store.get(&key, "", ns) else {
        return;
    };
    if !nsobj["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    let empty = st
        .store
        .storages()
        .iter()
        .all(|k| st.store.list(k, Some(ns)).is_empty());
    if empty {
        st.store.remove(&key, "", ns);
    }
}

/// Deletes a namespace: deletes (or marks) everything in it, then the namespace when empty.
pub fn delete_namespace(st: &mut State, name: &str) -> Option<(Value, bool)> {
    let key = ("".to_string(), "namespaces".to_string());
    let cur = st.store.get(&key, "", name)?;
    for k in st.store.storages() {
        for o in st.store.list(&k, Some(name)) {
            let (ons, oname) = ident(&o);
            delete(st, &k, &ons, &oname, false);
        }
    }
    let empty = st
        .store
        .storages()
        .iter()
        .all(|k| st.store.list(k, Some(name)).is_empty());
    if empty {
        return st
            .store
            .remove(&key, "", name)
            .map(|o| ((*o).clone(), true));
    }
    let mut obj = (*cur).clone();
    if !obj["metadata"]["deletionTimestamp"].is_string() {
        obj["metadata"]["deletionTimestamp"] = json!(now());
    }
    obj["status"] = json!({"phase": "Terminating"});
    Some(((*st.store.put(&key, "", name, obj)).clone(), false))
}
