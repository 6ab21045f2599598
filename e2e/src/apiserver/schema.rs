//! Structural-schema enforcement for custom resources: pruning and validation.
//!
//! Pure functions over `serde_json::Value`. Messages follow the real API server's wording.

use super::error::Cause;
use serde_json::{Map, Value};

mod prune;

pub use prune::{apply_defaults, prune, prune_root};

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Validates an object against its CRD schema (root: skips apiVersion/kind/metadata).
pub fn validate_root(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut errs = vec![];
    let mut stripped = obj.clone();
    if let Some(m) = stripped.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        m.remove("metadata");
    }
    let mut root = schema.clone();
    if let Some(req) = root.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
    }
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("metadata");
        props.remove("apiVersion");
        props.remove("kind");
    }
    validate(&root, &stripped, "", &mut errs);
    errs
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

/// Renders a value the way the real server's messages do (`150`, `"abc"`, `"object"`).
pub fn show(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        Value::Null => "\"null\"".into(),
        other => other.to_string(),
    }
}

fn invalid(errs: &mut Vec<Cause>, path: &str, v: &Value, detail: String) {
    let field = path.to_string();
    errs.push(Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", show(v)),
        field,
    });
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

/// Validates `v` against `schema` at `path`, appending causes.
pub fn validate(schema: &Value, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    let p = if path.is_empty() { "<root>" } else { path };
    if v.is_null() {
        if schema["nullable"].as_bool() == Some(true) {
            return;
        }
        if let Some(ty) = schema["type"].as_str() {
            invalid(
                errs,
                p,
                &Value::String(type_name(v).into()),
                format!("{p} in body must be of type {ty}: \"null\""),
            );
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            invalid(
                errs,
                p,
                v,
                format!(
                    "{p} in body must be of type int-or-string: \"{}\"",
                    type_name(v)
                ),
            );
            return;
        }
    } else if let Some(ty) = schema["type"].as_str()
        && !type_ok(ty, v)
    {
        invalid(
            errs,
            p,
            &Value::String(type_name(v).into()),
            format!("{p} in body must be of type {ty}: \"{}\"", type_name(v)),
        );
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errs.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                show(v),
                list.join(", ")
            ),
            field: p.into(),
        });
    }
    match v {
        Value::String(s) => validate_string(schema, v, s, p, errs),
        Value::Number(_) => validate_number(schema, v, p, errs),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = schema["maxItems"].as_u64()
                && n > max
            {
                errs.push(Cause {
                    reason: "FieldValueTooMany".into(),
                    message: format!("Too many: {n}: must have at most {max} items"),
                    field: p.into(),
                });
            }
            if let Some(min) = schema["minItems"].as_u64()
                && n < min
            {
                invalid(
                    errs,
                    p,
                    v,
                    format!("{p} in body should have at least {min} items"),
                );
            }
            if let Some(is) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    validate(is, it, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => validate_object(schema, v, map, path, errs),
        _ => {}
    }
    validate_combinators(schema, v, path, errs);
}

fn validate_string(schema: &Value, v: &Value, s: &str, p: &str, errs: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64()
        && len > max
    {
        errs.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {max} bytes"),
            field: p.into(),
        });
    }
    if let Some(min) = schema["minLength"].as_u64()
        && len < min
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body should be at least {min} chars long"),
        );
    }
    if let Some(pat) = schema["pattern"].as_str()
        && compiled(pat).is_some_and(|re| !re.is_match(s))
    {
        invalid(errs, p, v, format!("{p} in body should match '{pat}'"));
    }
}

/// Compiles a schema pattern once; invalid patterns never match-fail.
fn compiled(pat: &str) -> Option<regex::Regex> {
    static CACHE: std::sync::OnceLock<
        parking_lot::Mutex<std::collections::HashMap<String, Option<regex::Regex>>>,
    > = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    if map.len() > 4096 {
        map.clear();
    }
    map.entry(pat.to_string())
        .or_insert_with(|| regex::Regex::new(pat).ok())
        .clone()
}

fn validate_number(schema: &Value, v: &Value, p: &str, errs: &mut Vec<Cause>) {
    let Some(x) = v.as_f64() else { return };
    if let Some(max) = schema["maximum"].as_f64() {
        let excl = schema["exclusiveMaximum"].as_bool() == Some(true);
        if excl && x >= max {
            invalid(
                errs,
                p,
                v,
                format!(
                    "{p} in body should be less than {}",
                    num(&schema["maximum"])
                ),
            );
        } else if x > max {
            invalid(
                errs,
                p,
                v,
                format!(
                    "{p} in body should be less than or equal to {}",
                    num(&schema["maximum"])
                ),
            );
        }
    }
    if let Some(min) = schema["minimum"].as_f64() {
        let excl = schema["exclusiveMinimum"].as_bool() == Some(true);
        if excl && x <= min {
            invalid(
                errs,
                p,
                v,
                format!(
                    "{p} in body should be greater than {}",
                    num(&schema["minimum"])
                ),
            );
        } else if x < min {
            invalid(
                errs,
                p,
                v,
                format!(
                    "{p} in body should be greater than or equal to {}",
                    num(&schema["minimum"])
                ),
            );
        }
    }
}

fn validate_object(
    schema: &Value,
    v: &Value,
    map: &Map<String, Value>,
    path: &str,
    errs: &mut Vec<Cause>,
) {
    for r in schema["required"].as_array().into_iter().flatten() {
        if let Some(r) = r.as_str()
            && !map.contains_key(r)
        {
            let f = child(path, r);
            errs.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: f,
            });
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, sub_v) in map {
        if let Some(sub) = props.and_then(|p| p.get(k)).or(additional) {
            validate(sub, sub_v, &child(path, k), errs);
        }
    }
    let n = map.len() as u64;
    let p = if path.is_empty() { "<root>" } else { path };
    if let Some(max) = schema["maxProperties"].as_u64()
        && n > max
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body should have at most {max} properties"),
        );
    }
    if let Some(min) = schema["minProperties"].as_u64()
        && n < min
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body should have at least {min} properties"),
        );
    }
}

fn validate_combinators(schema: &Value, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    let p = if path.is_empty() { "<root>" } else { path };
    let check = |s: &Value| {
        let mut e = vec![];
        validate(s, v, path, &mut e);
        e
    };
    for s in schema["allOf"].as_array().into_iter().flatten() {
        errs.extend(check(s));
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.is_empty()
        && !any.iter().any(|s| check(s).is_empty())
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body must match at least one schema in anyOf"),
        );
    }
    if let Some(one) = schema["oneOf"].as_array()
        && !one.is_empty()
        && one.iter().filter(|s| check(s).is_empty()).count() != 1
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body must match exactly one schema in oneOf"),
        );
    }
    if let Some(not) = schema.get("not")
        && check(not).is_empty()
    {
        invalid(
            errs,
            p,
            v,
            format!("{p} in body should not match the schema in not"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small Rollout-like schema, shared with the pruning tests.
    pub(super) fn rollout_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["replicas"], "properties": {
                "replicas": {"type": "integer", "minimum": 0},
                "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "opt": {"type": "string", "nullable": true},
                "strategy": {"type": "object", "properties": {"steps": {"type": "array", "maxItems": 3,
                    "items": {"type": "object", "properties": {"setWeight": {"type": "integer", "maximum": 100}}}}}}
            }},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }})
    }

    #[test]
    fn maximum_violation_names_the_field_like_the_real_server() {
        let obj = json!({"spec": {"replicas": 1, "strategy": {"steps": [{"setWeight": 150}]}}});
        let errs = validate_root(&rollout_schema(), &obj);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.strategy.steps[0].setWeight");
        assert_eq!(
            errs[0].message,
            "Invalid value: 150: spec.strategy.steps[0].setWeight in body should be less than or equal to 100"
        );
    }

    #[test]
    fn type_required_enum_pattern_length_and_int_or_string() {
        let s = rollout_schema();
        let bad =
            json!({"spec": {"name": "TOOLONGNAME", "mode": "c", "port": 1.5, "labels": {"a": 1}}});
        let errs = validate_root(&s, &bad);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"spec.replicas"), "{errs:?}");
        assert!(fields.contains(&"spec.mode"));
        assert!(fields.contains(&"spec.port"));
        assert!(fields.contains(&"spec.labels.a"));
        assert_eq!(fields.iter().filter(|f| **f == "spec.name").count(), 2);
        let ok = json!({"spec": {"replicas": 2, "name": "abc", "mode": "a", "port": "http", "opt": null}});
        assert!(validate_root(&s, &ok).is_empty());
        let wrong_type = json!({"spec": {"replicas": "three"}});
        let errs = validate_root(&s, &wrong_type);
        assert_eq!(
            errs[0].message,
            "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
    }
}
