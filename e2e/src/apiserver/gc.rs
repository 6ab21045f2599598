//! Deletion and the garbage collector: finalizers, propagation policies and cascades.
//!
//! A delete either removes the object at once or, when it has finalizers (its own, or the
//! `orphan` / `foregroundDeletion` finalizer a propagation policy adds), marks it with a
//! `deletionTimestamp`. The garbage collector then runs inside the same request ([`settle`]):
//! - `orphan`: every dependent loses its ownerReference to the object, then the finalizer goes;
//! - `foregroundDeletion`: every dependent is deleted, and the finalizer goes once no dependent
//!   whose reference has `blockOwnerDeletion: true` is left;
//! - background (the default): the object goes at once and its dependents after it.

use super::State;
use super::admission::now;
use super::resources::StorageKey;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};

mod namespace;

pub use namespace::{delete_namespace, finish_namespace};

/// The finalizer that orphans an object's dependents before it goes.
pub const ORPHAN: &str = "orphan";
/// The finalizer that deletes an object's dependents before it goes.
pub const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose their ownerReference and stay.
    Orphan,
    /// The owner goes at once, its dependents after it.
    Background,
    /// The dependents go first, the owner after them.
    Foreground,
}

// === impl Propagation ===

impl Propagation {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Orphan" => Some(Self::Orphan),
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            _ => None,
        }
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
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

/// The finalizers an object has after a delete with `policy`, as the real store computes them:
/// the request's policy wins, then a GC finalizer already present, then background.
pub fn finalizers_after_delete(current: &[String], policy: Option<Propagation>) -> Vec<String> {
    let has = |f: &str| current.iter().any(|c| c == f);
    let orphan = match policy {
        Some(p) => p == Propagation::Orphan,
        None => has(ORPHAN),
    };
    let foreground = match policy {
        Some(p) => p == Propagation::Foreground,
        None => has(FOREGROUND) && !has(ORPHAN),
    };
    let mut out: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN.into());
    }
    if foreground {
        out.push(FOREGROUND.into());
    }
    out
}

fn set_finalizers(obj: &mut Value, fins: &[String]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if fins.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(fins));
    }
}

/// What a delete would do to `cur`: `Some(marked)` when it is kept for finalizers, `None` when
/// it goes at once. Pure, so dry runs share it.
pub fn would_mark(cur: &Value, policy: Option<Propagation>) -> Option<Value> {
    let fins = finalizers_after_delete(&finalizers(cur), policy);
    if fins.is_empty() {
        return None;
    }
    let mut obj = cur.clone();
    set_finalizers(&mut obj, &fins);
    if !deleting(&obj) {
        obj["metadata"]["deletionTimestamp"] = json!(now());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
    Some(obj)
}

/// Deletes an object: removes it at once or marks it for its finalizers; then lets the garbage
/// collector settle. Returns the object as removed or marked, and whether it was removed.
pub fn delete(
    st: &mut State,
    storage: &StorageKey,
    ns: &str,
    name: &str,
    policy: Option<Propagation>,
) -> Option<(Value, bool)> {
    let out = delete_one(st, storage, ns, name, policy);
    settle(st);
    out
}

fn delete_one(
    st: &mut State,
    storage: &StorageKey,
    ns: &str,
    name: &str,
    policy: Option<Propagation>,
) -> Option<(Value, bool)> {
    let cur = st.store.get(storage, ns, name)?;
    match would_mark(&cur, policy) {
        None => remove_now(st, storage, ns, name).map(|o| (o, true)),
        Some(marked) if marked == *cur => Some((marked, false)),
        Some(marked) => Some(((*st.store.put(storage, ns, name, marked)).clone(), false)),
    }
}

/// Removes an object from the store and runs the follow-ups: background cascade to dependents,
/// a CRD's objects, a namespace's contents, and the end of a terminating namespace.
pub fn remove_now(st: &mut State, storage: &StorageKey, ns: &str, name: &str) -> Option<Value> {
    let removed = st.store.remove(storage, ns, name)?;
    let removed = (*removed).clone();
    let mut queue = VecDeque::new();
    queue.push_back(uid_of(&removed));
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
                queue.push_back(uid_of(&o));
            }
        }
    }
    if storage.0.is_empty() && storage.1 == "namespaces" {
        for key in st.store.storages() {
            for o in st.store.list(&key, Some(name)) {
                let (ons, oname) = ident(&o);
                if st.store.remove(&key, &ons, &oname).is_some() {
                    queue.push_back(uid_of(&o));
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

fn live_uids(st: &State) -> HashSet<String> {
    st.store
        .storages()
        .iter()
        .flat_map(|k| st.store.list(k, None))
        .map(|o| uid_of(&o))
        .collect()
}

/// Every object whose ownerReferences name `owner`, with its storage key.
fn dependents(st: &State, owner: &str) -> Vec<(StorageKey, Value)> {
    let mut out = vec![];
    for key in st.store.storages() {
        for o in st.store.list(&key, None) {
            let owned = o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner)));
            if owned {
                out.push((key.clone(), (*o).clone()));
            }
        }
    }
    out
}

/// Drops the references to `owner`; the field goes when no reference is left, as on the real
/// server (it is `omitempty`).
fn drop_reference(obj: &mut Value, owner: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let kept: Vec<Value> = meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r["uid"].as_str() != Some(owner))
        .cloned()
        .collect();
    if kept.is_empty() {
        meta.remove("ownerReferences");
    } else {
        meta.insert("ownerReferences".into(), Value::Array(kept));
    }
}

/// Background cascade: dependents of each removed owner go too, unless another owner is alive.
fn cascade(st: &mut State, mut queue: VecDeque<String>) {
    let mut budget = 100_000usize;
    while let Some(owner) = queue.pop_front() {
        budget = budget.saturating_sub(1);
        if owner.is_empty() || budget == 0 {
            continue;
        }
        let live = live_uids(st);
        for (key, o) in dependents(st, &owner) {
            let (ns, name) = ident(&o);
            let others_alive = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| {
                    r["uid"]
                        .as_str()
                        .is_some_and(|u| u != owner && live.contains(u))
                });
            if others_alive {
                let mut obj = o.clone();
                drop_reference(&mut obj, &owner);
                st.store.put(&key, &ns, &name, obj);
            } else if let Some(marked) = would_mark(&o, None) {
                if marked != o {
                    st.store.put(&key, &ns, &name, marked);
                }
            } else if st.store.remove(&key, &ns, &name).is_some() {
                queue.push_back(uid_of(&o));
            }
        }
    }
}

fn blocks(dependent: &Value, owner: &str) -> bool {
    dependent["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["uid"].as_str() == Some(owner) && r["blockOwnerDeletion"] == json!(true))
}

/// Runs the garbage collector's part for one object being deleted; returns whether it changed
/// anything.
fn process(st: &mut State, storage: &StorageKey, ns: &str, name: &str) -> bool {
    let Some(cur) = st.store.get(storage, ns, name) else {
        return false;
    };
    if !deleting(&cur) {
        return false;
    }
    let uid = uid_of(&cur);
    let before = finalizers(&cur);
    let mut fins = before.clone();
    let mut changed = false;
    if fins.iter().any(|f| f == ORPHAN) {
        for (key, mut dep) in dependents(st, &uid) {
            let (dns, dname) = ident(&dep);
            drop_reference(&mut dep, &uid);
            st.store.put(&key, &dns, &dname, dep);
            changed = true;
        }
        fins.retain(|f| f != ORPHAN);
    }
    if fins.iter().any(|f| f == FOREGROUND) {
        for (key, dep) in dependents(st, &uid) {
            if deleting(&dep) {
                continue;
            }
            let (dns, dname) = ident(&dep);
            let policy = if blocks(&dep, &uid) {
                Propagation::Foreground
            } else {
                Propagation::Background
            };
            delete_one(st, &key, &dns, &dname, Some(policy));
            changed = true;
        }
        let blocked = dependents(st, &uid).iter().any(|(_, d)| blocks(d, &uid));
        if !blocked {
            fins.retain(|f| f != FOREGROUND);
        }
    }
    if fins.is_empty() {
        remove_now(st, storage, ns, name);
        return true;
    }
    if fins != before {
        let mut obj = (*cur).clone();
        set_finalizers(&mut obj, &fins);
        st.store.put(storage, ns, name, obj);
        changed = true;
    }
    changed
}

/// Lets the garbage collector finish its work: processes every object that is being deleted
/// with an `orphan` or `foregroundDeletion` finalizer until nothing changes (bounded).
pub fn settle(st: &mut State) {
    for _ in 0..64 {
        let mut pending = vec![];
        for key in st.store.storages() {
            for o in st.store.list(&key, None) {
                let gc = finalizers(&o)
                    .iter()
                    .any(|f| f == ORPHAN || f == FOREGROUND);
                if deleting(&o) && gc {
                    let (ns, name) = ident(&o);
                    pending.push((key.clone(), ns, name));
                }
            }
        }
        let mut changed = false;
        for (key, ns, name) in pending {
            changed |= process(st, &key, &ns, &name);
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn propagation_policy_sets_exactly_one_gc_finalizer() {
        let user = v(&["weir.dev/cleanup"]);
        assert_eq!(
            finalizers_after_delete(&user, Some(Propagation::Orphan)),
            v(&["weir.dev/cleanup", ORPHAN])
        );
        assert_eq!(
            finalizers_after_delete(&v(&[ORPHAN]), Some(Propagation::Foreground)),
            v(&[FOREGROUND])
        );
        assert_eq!(
            finalizers_after_delete(&v(&[FOREGROUND, "x"]), Some(Propagation::Background)),
            v(&["x"])
        );
        assert_eq!(
            finalizers_after_delete(&v(&[FOREGROUND]), None),
            v(&[FOREGROUND]),
            "a GC finalizer already present is the default"
        );
        assert!(finalizers_after_delete(&[], None).is_empty());
    }

    #[test]
    fn marking_sets_the_deletion_timestamp_once() {
        let obj = json!({"metadata": {"name": "a", "finalizers": ["x"]}});
        let marked = would_mark(&obj, None).unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(would_mark(&marked, None).unwrap(), marked);
        assert!(would_mark(&json!({"metadata": {"name": "a"}}), None).is_none());
    }

    #[test]
    fn dropping_the_last_reference_removes_the_field() {
        let mut o = json!({"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b"}]}});
        drop_reference(&mut o, "a");
        assert_eq!(o["metadata"]["ownerReferences"], json!([{"uid": "b"}]));
        drop_reference(&mut o, "b");
        assert!(o["metadata"].get("ownerReferences").is_none());
    }
}
