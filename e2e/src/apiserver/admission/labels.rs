//! Label validation, as the real server does it for every kind.

use crate::apiserver::error::Cause;
use serde_json::Value;

fn name_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn prefix_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether a label (or annotation) key is a valid qualified name.
pub fn key_ok(k: &str) -> bool {
    match k.rsplit_once('/') {
        Some((prefix, name)) => prefix_ok(prefix) && name_part_ok(name),
        None => name_part_ok(k),
    }
}

/// Whether a label value is valid (empty is allowed).
pub fn value_ok(v: &str) -> bool {
    v.is_empty() || name_part_ok(v)
}

/// Checks `metadata.labels` and the keys of `metadata.annotations`.
pub fn check(meta: &Value) -> Vec<Cause> {
    let mut out = vec![];
    let mut bad = |field: String, message: String| {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field,
        });
    };
    for (which, values) in [("labels", true), ("annotations", false)] {
        let Some(m) = meta.get(which) else { continue };
        if m.is_null() {
            continue;
        }
        let Some(m) = m.as_object() else {
            bad(
                format!("metadata.{which}"),
                "Invalid value: must be a map of strings".into(),
            );
            continue;
        };
        for (k, v) in m {
            if !key_ok(k) {
                bad(
                    format!("metadata.{which}"),
                    format!(
                        "Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                );
            }
            match v.as_str() {
                None => bad(
                    format!("metadata.{which}"),
                    format!("Invalid value: {v}: must be a string"),
                ),
                Some(s) if values && !value_ok(s) => bad(
                    format!("metadata.{which}"),
                    format!(
                        "Invalid value: \"{s}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_keys_and_values_follow_qualified_name_rules() {
        assert!(key_ok("app"));
        assert!(key_ok("weir.dev/revision"));
        assert!(key_ok("app.kubernetes.io/managed-by"));
        assert!(!key_ok("Weir.Dev/x"));
        assert!(!key_ok("-app"));
        assert!(!key_ok("a/b/c"));
        assert!(value_ok(""));
        assert!(value_ok("v1.2_3"));
        assert!(!value_ok("has space"));
        assert!(!value_ok(&"x".repeat(64)));
    }

    #[test]
    fn check_reports_bad_labels_and_non_string_values() {
        let ok = json!({"labels": {"app": "web", "weir.dev/revision": "2"}, "annotations": {"note": "any text at all"}});
        assert!(check(&ok).is_empty());
        let bad = json!({"labels": {"app": "bad value", "n": 1}, "annotations": {"bad key!": "x"}});
        let causes = check(&bad);
        assert_eq!(causes.len(), 3, "{causes:?}");
        assert!(causes.iter().all(|c| c.field.starts_with("metadata.")));
    }
}
