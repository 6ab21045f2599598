//! Server-side apply and `managedFields` bookkeeping (pure functions).
//!
//! Ownership is tracked per leaf field path: maps are walked recursively, lists and scalars are
//! leaves (lists are atomic, unlike the real server's per-key list ownership).

use serde_json::{Value, json};
use std::collections::BTreeSet;

mod fields;

pub use fields::{fields_v1, managed_signature, read_managed, write_managed};

/// A field path such as `["spec", "replicas"]`.
pub type FieldPath = Vec<String>;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the manager used.
    pub api_version: String,
    /// Last time.
    pub time: String,
    /// Subresource ("" or "status").
    pub subresource: String,
    /// Owned leaf paths.
    pub fields: BTreeSet<FieldPath>,
}

/// A field owned by another manager whose value an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, rendered like `.spec.replicas`.
    pub field: String,
}

fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, sub) in m {
                prefix.push(k.clone());
                walk(sub, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The leaf paths an object sets, skipping identity metadata (and `status` when `skip_status`).
pub fn leaf_paths(obj: &Value, skip_status: bool) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if skip_status => {}
            "metadata" => {
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(sub) = v.get(mk) {
                        let mut p = vec!["metadata".to_string(), mk.to_string()];
                        match sub {
                            Value::Object(_) => walk(sub, &mut p, &mut out),
                            _ => {
                                out.insert(p);
                            }
                        }
                    }
                }
            }
            _ => walk(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

/// Reads the value at a path.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Renders a path as `.spec.replicas`.
pub fn render(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

fn deep_merge(target: &mut Value, src: &Value) {
    match (target.as_object_mut(), src.as_object()) {
        (Some(t), Some(s)) => {
            for (k, v) in s {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && v.is_object() => deep_merge(tv, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *target = src.clone(),
    }
}

/// The applied configuration as it is merged: no status when it is a subresource, and only the
/// metadata fields a client may set.
fn stripped_config(config: &Value, skip_status: bool) -> Value {
    let mut cfg = config.clone();
    if let Some(m) = cfg.as_object_mut() {
        if skip_status {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "name"
                        | "namespace"
                        | "generateName"
                        | "labels"
                        | "annotations"
                        | "finalizers"
                        | "ownerReferences"
                )
            });
        }
    }
    cfg
}

/// The context of one write: who, through which apiVersion and subresource, and when.
#[derive(Debug, Clone)]
pub struct WriteCtx<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// "" or "status".
    pub subresource: &'a str,
    /// RFC 3339 time.
    pub now: &'a str,
}

/// Server-side apply of `config` onto `live` (or onto nothing): the merged object, or conflicts.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    ctx: &WriteCtx<'_>,
    force: bool,
    skip_status: bool,
) -> Result<Value, Vec<Conflict>> {
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let mut entries = read_managed(live_v);
    let applied = leaf_paths(config, skip_status);
    let cfg = stripped_config(config, skip_status);
    // What the object would become, to tell which owned fields the apply changes: a field a
    // manager owns conflicts only when its value changes (a map it owns does not conflict
    // with changes inside it, as in structured-merge-diff).
    let mut merged = live_v.clone();
    deep_merge(&mut merged, &cfg);
    let mut conflicts = vec![];
    for e in entries.iter_mut() {
        let mine = e.manager == ctx.manager && e.operation == "Apply";
        if mine || e.subresource != ctx.subresource {
            continue;
        }
        let mut lost = vec![];
        for p in &e.fields {
            if !applied.iter().any(|q| overlaps(p, q)) {
                continue;
            }
            let (before, after) = (get_path(live_v, p), get_path(&merged, p));
            let both_maps =
                before.is_some_and(Value::is_object) && after.is_some_and(Value::is_object);
            if before == after || both_maps {
                continue;
            }
            if force {
                lost.push(p.clone());
            } else {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    field: render(p),
                });
            }
        }
        for p in lost {
            e.fields.remove(&p);
        }
    }
    if !conflicts.is_empty() {
        conflicts.dedup();
        return Err(conflicts);
    }
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    let previous: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| {
            e.manager == ctx.manager && e.operation == "Apply" && e.subresource == ctx.subresource
        })
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let others: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| !(e.manager == ctx.manager && e.operation == "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    for p in previous {
        let still = applied.iter().any(|q| overlaps(&p, q));
        let shared = others.iter().any(|q| overlaps(&p, q));
        if !still && !shared {
            remove_path(&mut result, &p);
        }
    }
    deep_merge(&mut result, &cfg);
    let own = |e: &Entry| {
        e.manager == ctx.manager && e.operation == "Apply" && e.subresource == ctx.subresource
    };
    // Keep the entry where it is, and its time when its fields do not change, so that a no-op
    // apply leaves managedFields (and so the object) as they were.
    match entries.iter_mut().find(|e| own(e)) {
        Some(e) => {
            if e.fields != applied || e.api_version != ctx.api_version {
                e.time = ctx.now.into();
            }
            e.fields = applied;
            e.api_version = ctx.api_version.into();
        }
        None => entries.push(Entry {
            manager: ctx.manager.into(),
            operation: "Apply".into(),
            api_version: ctx.api_version.into(),
            time: ctx.now.into(),
            subresource: ctx.subresource.into(),
            fields: applied,
        }),
    }
    write_managed(&mut result, &entries);
    Ok(result)
}

/// Records a non-apply write: the writer takes the fields it changed from everyone else.
pub fn record_update(old: Option<&Value>, new: &mut Value, ctx: &WriteCtx<'_>) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let skip_status = ctx.subresource != "status";
    let changed: BTreeSet<FieldPath> = leaf_paths(new, false)
        .into_iter()
        .filter(|p| (p.first().map(String::as_str) == Some("status")) != skip_status)
        .filter(|p| old.and_then(|o| get_path(o, p)) != get_path(new, p))
        .collect();
    // A field the write removed is owned by nobody afterwards, as on the real server
    // (kube-lease-manager releases a Lease this way before another replica applies it).
    let removed: BTreeSet<FieldPath> = old
        .map(|o| leaf_paths(o, false))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| (p.first().map(String::as_str) == Some("status")) != skip_status)
        .filter(|p| get_path(new, p).is_none())
        .collect();
    if changed.is_empty() && removed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    for e in entries.iter_mut() {
        e.fields
            .retain(|p| !changed.iter().any(|q| overlaps(p, q)) && !removed.contains(p));
    }
    entries.retain(|e| !e.fields.is_empty() || e.manager == ctx.manager);
    if changed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    match entries.iter_mut().find(|e| {
        e.manager == ctx.manager && e.operation == "Update" && e.subresource == ctx.subresource
    }) {
        Some(e) => {
            e.fields.extend(changed);
            e.time = ctx.now.into();
        }
        None => entries.push(Entry {
            manager: ctx.manager.into(),
            operation: "Update".into(),
            api_version: ctx.api_version.into(),
            time: ctx.now.into(),
            subresource: ctx.subresource.into(),
            fields: changed,
        }),
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(m: &str) -> WriteCtx<'_> {
        WriteCtx {
            manager: m,
            api_version: "v1",
            subresource: "",
            now: "2026-01-01T00:00:00Z",
        }
    }

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"replicas": 1, "ports": [1]}});
        let paths = leaf_paths(&obj, true);
        let tree = fields_v1(&paths);
        assert_eq!(
            tree,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:ports": {}, "f:replicas": {}}})
        );
        let mut o = obj.clone();
        write_managed(
            &mut o,
            &[Entry {
                manager: "m".into(),
                operation: "Apply".into(),
                api_version: "v1".into(),
                time: "t".into(),
                subresource: "".into(),
                fields: paths.clone(),
            }],
        );
        assert_eq!(read_managed(&o)[0].fields, paths);
    }

    #[test]
    fn second_manager_conflicts_without_force_and_takes_over_with_force() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "1", "j": "1"}});
        let live = apply(None, &a, &ctx("a"), false, true).unwrap();
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "2"}});
        let err = apply(Some(&live), &b, &ctx("b"), false, true).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "a".into(),
                field: ".data.k".into()
            }]
        );
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "1"}});
        assert!(
            apply(Some(&live), &same, &ctx("b"), false, true).is_ok(),
            "same value is shared ownership"
        );
        let forced = apply(Some(&live), &b, &ctx("b"), true, true).unwrap();
        assert_eq!(forced["data"], json!({"k": "2", "j": "1"}));
        let m = read_managed(&forced);
        let a_fields = &m.iter().find(|e| e.manager == "a").unwrap().fields;
        assert!(!a_fields.contains(&vec!["data".to_string(), "k".to_string()]));
    }

    #[test]
    fn fields_dropped_from_an_apply_are_removed() {
        let a = json!({"metadata": {"name": "x"}, "data": {"k": "1", "j": "1"}});
        let live = apply(None, &a, &ctx("a"), false, true).unwrap();
        let a2 = json!({"metadata": {"name": "x"}, "data": {"k": "1"}});
        let live = apply(Some(&live), &a2, &ctx("a"), false, true).unwrap();
        assert_eq!(live["data"], json!({"k": "1"}));
    }

    #[test]
    fn fields_removed_by_an_update_are_owned_by_nobody() {
        let live = apply(
            None,
            &json!({"spec": {"holder": "a", "renew": "t1"}}),
            &ctx("a"),
            false,
            true,
        )
        .unwrap();
        let mut released = live.clone();
        released["spec"] = json!({});
        record_update(Some(&live), &mut released, &ctx("a-update"));
        let taken = apply(
            Some(&released),
            &json!({"spec": {"holder": "b", "renew": "t2"}}),
            &ctx("b"),
            false,
            true,
        );
        assert!(
            taken.is_ok(),
            "no conflict on fields nobody owns: {taken:?}"
        );
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let a = json!({"metadata": {"name": "x"}, "data": {"k": "1"}});
        let live = apply(None, &a, &ctx("a"), false, true).unwrap();
        let mut new = live.clone();
        new["data"]["k"] = json!("9");
        record_update(Some(&live), &mut new, &ctx("editor"));
        let m = read_managed(&new);
        assert!(
            m.iter()
                .any(|e| e.manager == "editor" && e.operation == "Update")
        );
        let err = apply(Some(&new), &a, &ctx("a"), false, true).unwrap_err();
        assert_eq!(err[0].manager, "editor");
    }
}
