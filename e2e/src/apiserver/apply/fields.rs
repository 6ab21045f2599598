//! `managedFields` on the wire: the `FieldsV1` tree of owned paths, read and written.

use super::{Entry, FieldPath};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Serialises paths into the `FieldsV1` tree (`{"f:spec":{"f:replicas":{}}}`).
pub fn fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let entry = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => cur = m,
                None => break,
            }
        }
    }
    Value::Object(root)
}

fn parse_tree(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(m) = v.as_object() else { return };
    let children: Vec<_> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (k, sub) in children {
        prefix.push(k[2..].to_string());
        parse_tree(sub, prefix, out);
        prefix.pop();
    }
}

/// Reads `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut fields = BTreeSet::new();
            parse_tree(&e["fieldsV1"], &mut vec![], &mut fields);
            Entry {
                manager: e["manager"].as_str().unwrap_or_default().into(),
                operation: e["operation"].as_str().unwrap_or("Update").into(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                time: e["time"].as_str().unwrap_or_default().into(),
                subresource: e["subresource"].as_str().unwrap_or_default().into(),
                fields,
            }
        })
        .collect()
}

/// Writes `metadata.managedFields`.
pub fn write_managed(obj: &mut Value, entries: &[Entry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

/// `managedFields` without their times, sorted: two objects whose ownership differs only in
/// when it was recorded have the same signature.
pub fn managed_signature(obj: &Value) -> Vec<(String, String, String, String, Vec<FieldPath>)> {
    let mut out: Vec<_> = read_managed(obj)
        .into_iter()
        .map(|e| {
            (
                e.manager,
                e.operation,
                e.subresource,
                e.api_version,
                e.fields.into_iter().collect::<Vec<_>>(),
            )
        })
        .collect();
    out.sort();
    out
}
