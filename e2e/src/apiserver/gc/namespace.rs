//! Namespace deletion, as the namespace lifecycle and the namespace controller do it.
//!
//! A deleted namespace turns `Terminating` and stays readable; its contents are deleted
//! (objects with finalizers are marked), and the namespace goes once nothing is left in it.

use super::{State, delete_one, deleting, ident, settle};
use crate::apiserver::admission::now;
use serde_json::{Value, json};

fn key() -> (String, String) {
    ("".to_string(), "namespaces".to_string())
}

/// Deletes a namespace: marks it `Terminating`, deletes its contents and removes it once it is
/// empty. Returns the namespace as marked (the answer to the DELETE).
pub fn delete_namespace(st: &mut State, name: &str) -> Option<Value> {
    let cur = st.store.get(&key(), "", name)?;
    let mut obj = (*cur).clone();
    if !deleting(&obj) {
        obj["metadata"]["deletionTimestamp"] = json!(now());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
    obj["status"]["phase"] = json!("Terminating");
    let marked = if obj == *cur {
        obj
    } else {
        (*st.store.put(&key(), "", name, obj)).clone()
    };
    for k in st.store.storages() {
        for o in st.store.list(&k, Some(name)) {
            let (ons, oname) = ident(&o);
            delete_one(st, &k, &ons, &oname, None);
        }
    }
    settle(st);
    finish_namespace(st, name);
    Some(marked)
}

/// Removes a terminating namespace once nothing is left in it.
pub fn finish_namespace(st: &mut State, ns: &str) {
    let Some(nsobj) = st.store.get(&key(), "", ns) else {
        return;
    };
    if !deleting(&nsobj) {
        return;
    }
    let empty = st
        .store
        .storages()
        .iter()
        .all(|k| st.store.list(k, Some(ns)).is_empty());
    if empty {
        st.store.remove(&key(), "", ns);
    }
}
