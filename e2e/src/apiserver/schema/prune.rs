//! Pruning of unknown fields and defaulting, against a structural schema.

use serde_json::Value;

/// Removes fields the schema does not know (recursively); returns the pruned paths.
///
/// `apiVersion`, `kind` and `metadata` at the root are never pruned.
pub fn prune_root(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut pruned = vec![];
    let Some(map) = obj.as_object_mut() else {
        return pruned;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&k)) {
            Some(sub) => {
                if let Some(v) = map.get_mut(&k) {
                    if v.is_null() && sub["nullable"].as_bool() != Some(true) {
                        map.remove(&k);
                        continue;
                    }
                    prune(sub, v, &k, &mut pruned);
                }
            }
            None if preserve => {}
            None => {
                map.remove(&k);
                pruned.push(k);
            }
        }
    }
    pruned
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Prunes `value` against `schema` at `path`, collecting pruned field paths.
pub fn prune(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = props
                    .and_then(|p| p.get(&k))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match sub {
                    Some(sub) => {
                        if let Some(v) = map.get_mut(&k) {
                            if v.is_null() && sub["nullable"].as_bool() != Some(true) {
                                map.remove(&k);
                                continue;
                            }
                            prune(sub, v, &child(path, &k), pruned);
                        }
                    }
                    None if preserve || additional.is_some_and(|a| a.as_bool() == Some(true)) => {}
                    None => {
                        map.remove(&k);
                        pruned.push(child(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune(item_schema, it, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default` values for missing properties (recursively), as the real server does.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if !map.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(v) = map.get_mut(k) {
                        apply_defaults(sub, v);
                    }
                }
            }
            if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let props = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        apply_defaults(add, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for it in items {
                    apply_defaults(is, it);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::schema::tests::rollout_schema;
    use serde_json::json;

    #[test]
    fn pruning_drops_unknown_fields_but_honours_preserve_and_additional_properties() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "R", "metadata": {"name": "a"},
            "junk": 1,
            "spec": {"replicas": 1, "bogus": true, "labels": {"k": "v"}, "free": {"anything": {"x": 1}},
                     "strategy": {"steps": [{"setWeight": 1, "extra": 2}]}}});
        let pruned = prune_root(&rollout_schema(), &mut obj);
        assert_eq!(
            pruned,
            vec!["junk", "spec.bogus", "spec.strategy.steps[0].extra"]
        );
        assert_eq!(obj["spec"]["labels"]["k"], "v");
        assert_eq!(obj["spec"]["free"]["anything"]["x"], 1);
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn defaults_fill_missing_fields_only() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "paused": {"type": "boolean", "default": false},
            "replicas": {"type": "integer", "default": 1},
            "steps": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": "integer", "default": 5}}}}}}}});
        let mut o = json!({"spec": {"replicas": 3, "steps": [{}]}});
        apply_defaults(&s, &mut o);
        assert_eq!(
            o,
            json!({"spec": {"replicas": 3, "paused": false, "steps": [{"w": 5}]}})
        );
        assert_eq!(super::super::num(&json!(0.0)), "0");
    }

    #[test]
    fn null_in_non_nullable_field_is_pruned() {
        let mut obj = json!({"spec": {"replicas": 1, "name": null, "opt": null}});
        prune_root(&rollout_schema(), &mut obj);
        assert!(obj["spec"].get("name").is_none());
        assert!(obj["spec"].get("opt").is_some());
    }
}
