//! Go's rendering of values, as upstream validation messages print them (`%q` and `%#v`).

use serde_json::Value;

/// A string as Go's `%q` prints it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `map[string]string` as `%#v` prints it: keys sorted, `map[string]string(nil)` when absent.
pub fn string_map(v: &Value) -> String {
    let Some(m) = v.as_object() else {
        return "map[string]string(nil)".into();
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let body: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                quote(k),
                quote(m[k.as_str()].as_str().unwrap_or_default())
            )
        })
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// A `[]string` as `%#v` prints it.
pub fn string_slice(items: &[&str]) -> String {
    let body: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", body.join(", "))
}

fn requirements(v: &Value) -> String {
    let Some(items) = v.as_array() else {
        return "[]v1.LabelSelectorRequirement(nil)".into();
    };
    let body: Vec<String> = items
        .iter()
        .map(|r| {
            let values: Vec<&str> = r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let values = if r["values"].is_array() {
                string_slice(&values)
            } else {
                "[]string(nil)".into()
            };
            format!(
                "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                quote(r["key"].as_str().unwrap_or_default()),
                quote(r["operator"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    format!("[]v1.LabelSelectorRequirement{{{}}}", body.join(", "))
}

/// A `metav1.LabelSelector` as `%#v` prints it.
pub fn label_selector(v: &Value) -> String {
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        string_map(&v["matchLabels"]),
        requirements(&v["matchExpressions"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_like_go() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            string_map(&json!({"b": "2", "a": "1"})),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(string_map(&Value::Null), "map[string]string(nil)");
        assert_eq!(
            label_selector(&json!({"matchLabels": {"app": "x"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(string_slice(&["All"]), "[]string{\"All\"}");
    }
}
