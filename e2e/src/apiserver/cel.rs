//! `x-kubernetes-validations` (CEL) rules of CRD schemas, evaluated with kube's CEL support.

use super::error::Cause;
use super::schema::show;
use kube::core::cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

thread_local! {
    static VALIDATOR: Validator = Validator::new();
    /// Compiled rules per schema and top-level property, so rules compile once per worker
    /// thread. Keyed by the schema's address, with the schema itself kept so that no other
    /// schema takes that address while it is cached (hashing the schema's text on every write
    /// cost more than evaluating the rules).
    static COMPILED: RefCell<HashMap<(usize, String), Compiled>> = RefCell::new(HashMap::new());
}

/// A schema and the compiled rules of one of its parts (`None`: that part has no rule).
type Compiled = (Arc<Value>, Option<Rc<CompiledSchema>>);

/// The compiled rules of `schema`'s property `part` ("": the whole schema).
fn compiled(schema: &Arc<Value>, part: &str) -> Option<Rc<CompiledSchema>> {
    let key = (Arc::as_ptr(schema) as usize, part.to_string());
    COMPILED.with(|c| {
        let mut map = c.borrow_mut();
        if let Some((_, program)) = map.get(&key) {
            return program.clone();
        }
        if map.len() > 256 {
            map.clear();
        }
        let sub = if part.is_empty() {
            Some(&**schema)
        } else {
            schema.get("properties").and_then(|p| p.get(part))
        };
        let program = sub
            .filter(|s| has_rules(s))
            .map(|s| Rc::new(compile_schema(s)));
        map.insert(key, (schema.clone(), program.clone()));
        program
    })
}

/// Whether a schema has any CEL rule (so objects of schemas without rules skip the work).
pub fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(a) => a.iter().any(has_rules),
        _ => false,
    }
}

fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(key)?;
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// Evaluates the CEL rules of `schema` on `obj` (and `old`, for transition rules). On an
/// update, as with the real server's validation ratcheting (on by default since 1.30), rules
/// under a top-level property that did not change are not evaluated: their errors would be
/// ignored, and a status write would otherwise evaluate every rule of the spec.
pub fn check(schema: &Arc<Value>, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let by_part = old.filter(|_| schema.get("x-kubernetes-validations").is_none());
    let (Some(old), Some(properties)) =
        (by_part, schema.get("properties").and_then(Value::as_object))
    else {
        return check_part(schema, "", obj, obj, old);
    };
    properties
        .keys()
        .filter_map(|name| Some((name, obj.get(name)?)))
        .filter(|(name, value)| old.get(name.as_str()) != Some(*value))
        .flat_map(|(name, value)| check_part(schema, name, obj, value, old.get(name.as_str())))
        .collect()
}

/// Evaluates the rules of `schema`'s property `part` ("": all of it) on `value`, the part of
/// `obj` it describes; error paths are given from the object's root.
fn check_part(
    schema: &Arc<Value>,
    part: &str,
    obj: &Value,
    value: &Value,
    old: Option<&Value>,
) -> Vec<Cause> {
    let Some(program) = compiled(schema, part) else {
        return vec![];
    };
    let result = VALIDATOR.with(|v| v.validate_compiled(&program, value, old));
    match result {
        Ok(()) => vec![],
        Err(errs) => errs
            .into_vec()
            .into_iter()
            .map(|e| {
                let field = match (part, e.field_path.as_str()) {
                    (part, "") => part.to_string(),
                    ("", path) => path.to_string(),
                    (part, path) if path.starts_with('[') => format!("{part}{path}"),
                    (part, path) => format!("{part}.{path}"),
                };
                let shown = value_at(obj, &field).map_or_else(|| "\"object\"".to_string(), show);
                Cause {
                    reason: e
                        .reason
                        .clone()
                        .unwrap_or_else(|| "FieldValueInvalid".into()),
                    message: format!("Invalid value: {shown}: {}", e.message),
                    field: if field.is_empty() {
                        "<root>".into()
                    } else {
                        field
                    },
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<Value> {
        Arc::new(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "steps": {"type": "array", "items": {"type": "object",
                "properties": {"setWeight": {"type": "integer"}, "pause": {"type": "object"}},
                "x-kubernetes-validations": [{"rule": "has(self.setWeight) != has(self.pause)",
                                              "message": "set exactly one of setWeight or pause"}]}}}}}}),
        )
    }

    #[test]
    fn cel_rules_reject_with_the_rule_message_and_path() {
        let bad = json!({"spec": {"steps": [{"setWeight": 1}, {"setWeight": 2, "pause": {}}]}});
        let errs = check(&schema(), &bad, None);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec.steps[1]");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"object\": set exactly one of setWeight or pause"
        );
        let good = json!({"spec": {"steps": [{"setWeight": 1}, {"pause": {}}]}});
        assert!(check(&schema(), &good, None).is_empty());
        assert!(!has_rules(&json!({"type": "object"})));
        assert!(check(&Arc::new(json!({"type": "object"})), &bad, None).is_empty());
    }

    #[test]
    fn an_update_evaluates_only_the_rules_of_what_changed_with_the_same_paths() {
        let bad = json!({"spec": {"steps": [{"setWeight": 1}, {"setWeight": 2, "pause": {}}]},
                         "status": {"phase": "A"}});
        let mut status_only = bad.clone();
        status_only["status"]["phase"] = json!("B");
        assert!(
            check(&schema(), &status_only, Some(&bad)).is_empty(),
            "an unchanged spec is not judged again (ratcheting)"
        );
        let good = json!({"spec": {"steps": [{"setWeight": 1}]}, "status": {"phase": "A"}});
        let on_update = check(&schema(), &bad, Some(&good));
        let on_create = check(&schema(), &bad, None);
        assert_eq!(on_update.len(), 1, "{on_update:?}");
        assert_eq!(on_update[0].field, "spec.steps[1]");
        assert_eq!(on_update[0].field, on_create[0].field);
        assert_eq!(on_update[0].message, on_create[0].message);
    }

    #[test]
    fn each_schema_is_checked_by_its_own_rules() {
        let bad = json!({"spec": {"steps": [{"setWeight": 1, "pause": {}}]}});
        let strict = schema();
        assert_eq!(check(&strict, &bad, None).len(), 1);
        drop(strict);
        // A CRD update: a new schema without the rule.
        let lax = Arc::new(json!({"type": "object"}));
        assert!(check(&lax, &bad, None).is_empty());
        assert_eq!(check(&schema(), &bad, None).len(), 1);
    }
}
