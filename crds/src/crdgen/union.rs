//! The union of several JSON schemas: a schema that accepts what any of them accepts.

use serde_json::{Map, Value};

/// Unites schemas (the first one's descriptions win).
///
/// Objects unite their properties; a field required by every schema that has the
/// object stays required; an integer united with an int-or-string becomes
/// int-or-string; any other type clash becomes `x-kubernetes-preserve-unknown-fields`,
/// and constraints that differ (enum, pattern, bounds, CEL rules) are dropped.
/// Defaults are removed everywhere: the server applies them on every read, so a
/// default for one version's field would appear in objects of every other version.
pub fn union_schema(schemas: &[Value]) -> Result<Value, String> {
    let mut iter = schemas.iter();
    let first = iter.next().cloned().ok_or("no schemas to unite")?;
    let mut united = iter.try_fold(first, |acc, next| unite(&acc, next, "<root>"))?;
    strip_defaults(&mut united);
    Ok(united)
}

fn strip_defaults(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("default");
            map.values_mut().for_each(strip_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

fn unite(a: &Value, b: &Value, path: &str) -> Result<Value, String> {
    if a == b {
        return Ok(a.clone());
    }
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return Err(format!("{path}: schema is not an object"));
    };
    let int_or_string =
        |m: &Map<String, Value>| m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let ty = |m: &Map<String, Value>| m.get("type").and_then(Value::as_str).map(str::to_string);
    let mut out = Map::new();
    if let Some(d) = a.get("description").or_else(|| b.get("description")) {
        out.insert("description".into(), d.clone());
    }
    let numeric = |t: &Option<String>| matches!(t.as_deref(), Some("integer" | "number"));
    match (ty(a), ty(b)) {
        _ if int_or_string(a) || int_or_string(b) => {
            let ok = |m: &Map<String, Value>| int_or_string(m) || numeric(&ty(m));
            if ok(a) && ok(b) {
                out.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
            } else {
                return Ok(preserve(out));
            }
        }
        (Some(ta), Some(tb)) if ta == tb => {
            out.insert("type".into(), Value::String(ta.clone()));
            if ta == "object" {
                unite_object(a, b, path, &mut out)?;
            } else if ta == "array" {
                match (a.get("items"), b.get("items")) {
                    (Some(ia), Some(ib)) => {
                        out.insert("items".into(), unite(ia, ib, &format!("{path}[]"))?);
                    }
                    (Some(i), None) | (None, Some(i)) => {
                        out.insert("items".into(), i.clone());
                    }
                    (None, None) => {}
                }
            }
        }
        (None, None) => {
            // Untyped nodes are preserve-unknown-fields nodes.
            return Ok(preserve(out));
        }
        _ => return Ok(preserve(out)),
    }
    for key in [
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "format",
        "default",
        "x-kubernetes-validations",
    ] {
        if let (Some(va), Some(vb)) = (a.get(key), b.get(key))
            && va == vb
        {
            out.insert(key.into(), va.clone());
        }
    }
    if a.get("nullable") == Some(&Value::Bool(true))
        || b.get("nullable") == Some(&Value::Bool(true))
    {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

fn unite_object(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    path: &str,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    let empty = Map::new();
    let pa = a
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let pb = b
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut props = Map::new();
    for (k, va) in pa {
        let merged = match pb.get(k) {
            Some(vb) => unite(va, vb, &format!("{path}.{k}"))?,
            None => va.clone(),
        };
        props.insert(k.clone(), merged);
    }
    for (k, vb) in pb {
        if !pa.contains_key(k) {
            props.insert(k.clone(), vb.clone());
        }
    }
    if !props.is_empty() {
        out.insert("properties".into(), Value::Object(props));
    }
    let required = |m: &Map<String, Value>| -> Vec<Value> {
        m.get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let rb = required(b);
    let common: Vec<Value> = required(a).into_iter().filter(|r| rb.contains(r)).collect();
    if !common.is_empty() {
        out.insert("required".into(), Value::Array(common));
    }
    match (a.get("additionalProperties"), b.get("additionalProperties")) {
        (Some(x), Some(y)) => {
            out.insert(
                "additionalProperties".into(),
                unite(x, y, &format!("{path}.*"))?,
            );
        }
        (Some(x), None) | (None, Some(x)) => {
            out.insert("additionalProperties".into(), x.clone());
        }
        (None, None) => {}
    }
    let preserve_flag = |m: &Map<String, Value>| {
        m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    };
    if preserve_flag(a) || preserve_flag(b) {
        out.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
    Ok(())
}

fn preserve(mut out: Map<String, Value>) -> Value {
    out.insert(
        "x-kubernetes-preserve-unknown-fields".into(),
        Value::Bool(true),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unites_properties_and_keeps_common_required() {
        let a = json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object", "required": ["service"], "properties": {"service": {"type": "string"}}}}});
        let b = json!({"type": "object", "required": ["matches"], "properties": {"matches": {"type": "array", "items": {"type": "string"}}}});
        let u = union_schema(&[a, b]).unwrap();
        assert!(u.get("required").is_none(), "{u}");
        assert_eq!(
            u.pointer("/properties/spec/required"),
            Some(&json!(["service"]))
        );
        assert_eq!(u.pointer("/properties/matches/type"), Some(&json!("array")));
    }

    #[test]
    fn integer_and_int_or_string_become_int_or_string() {
        let a = json!({"type": "integer", "minimum": 0});
        let b = json!({"x-kubernetes-int-or-string": true});
        let u = union_schema(&[a, b]).unwrap();
        assert_eq!(u, json!({"x-kubernetes-int-or-string": true}));
    }

    #[test]
    fn type_clash_preserves_unknown_fields() {
        let u = union_schema(&[
            json!({"type": "array", "description": "d"}),
            json!({"type": "object"}),
        ])
        .unwrap();
        assert_eq!(
            u,
            json!({"description": "d", "x-kubernetes-preserve-unknown-fields": true})
        );
    }

    #[test]
    fn differing_constraints_are_dropped_and_equal_ones_kept() {
        let a = json!({"type": "string", "pattern": "a", "minLength": 1});
        let b = json!({"type": "string", "pattern": "b", "minLength": 1});
        assert_eq!(
            union_schema(&[a, b]).unwrap(),
            json!({"type": "string", "minLength": 1})
        );
    }

    #[test]
    fn defaults_are_removed_at_every_depth() {
        let a = json!({"type": "object", "properties": {"sources": {"type": "array", "default": [], "items": {"type": "string"}}}});
        let b = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}}});
        let u = union_schema(&[a, b]).unwrap();
        assert!(!u.to_string().contains("default"), "{u}");
    }

    #[test]
    fn no_schemas_is_an_error() {
        assert!(union_schema(&[]).is_err());
    }
}
