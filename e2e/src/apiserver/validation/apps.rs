//! apps/v1 Deployments and ReplicaSets (`ValidateDeploymentSpec`, `ValidateReplicaSetSpec`,
//! `ValidatePodTemplateSpecForReplicaSet`, and the strategies' immutable selector).

use super::{cause, forbidden, go, invalid, required};
use crate::apiserver::error::Cause;
use crate::apiserver::resources::ResourceDef;
use serde_json::Value;

const NEGATIVE: &str = "must be greater than or equal to 0";

/// Whether `labels` satisfy a `metav1.LabelSelector`.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|r| {
            let key = r["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match r["operator"].as_str().unwrap_or_default() {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => !get(key).is_some_and(|v| values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

fn empty_selector(selector: &Value) -> bool {
    let n = |f: &str| {
        selector[f]
            .as_object()
            .map(|m| m.len())
            .or_else(|| selector[f].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    n("matchLabels") + n("matchExpressions") == 0
}

fn non_negative(out: &mut Vec<Cause>, spec: &Value, field: &str) {
    if let Some(v) = spec[field].as_i64()
        && v < 0
    {
        out.push(invalid(format!("spec.{field}"), &v.to_string(), NEGATIVE));
    }
}

fn containers(out: &mut Vec<Cause>, pod_spec: &Value, path: &str) {
    let list = pod_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        out.push(required(format!("{path}.containers")));
    }
    let mut seen: Vec<&str> = vec![];
    for (i, c) in list.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        match c["name"].as_str().unwrap_or_default() {
            "" => out.push(required(format!("{at}.name"))),
            name if seen.contains(&name) => out.push(cause(
                "FieldValueDuplicate",
                format!("{at}.name"),
                format!("Duplicate value: {}", go::quote(name)),
            )),
            name => seen.push(name),
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            out.push(required(format!("{at}.image")));
        }
    }
}

fn template(out: &mut Vec<Cause>, spec: &Value, selector: Option<&Value>) {
    let tpl = &spec["template"];
    let labels = &tpl["metadata"]["labels"];
    // A missing selector selects nothing, so the template never matches it (upstream reports
    // both errors).
    let matches = selector.is_some_and(|s| empty_selector(s) || selector_matches(s, labels));
    if !matches {
        out.push(invalid(
            "spec.template.metadata.labels",
            &go::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    containers(out, &tpl["spec"], "spec.template.spec");
    let restart = tpl["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    if restart != "Always" {
        out.push(cause(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy".into(),
            format!(
                "Unsupported value: {}: supported values: \"Always\"",
                go::quote(restart)
            ),
        ));
    }
}

/// Validates a Deployment or ReplicaSet (create, or update with `old`).
pub fn workload(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut out = vec![];
    non_negative(&mut out, spec, "replicas");
    let selector = spec.get("selector").filter(|s| s.is_object());
    match selector {
        None => out.push(required("spec.selector")),
        Some(s) if empty_selector(s) => out.push(invalid(
            "spec.selector",
            &go::label_selector(s),
            "empty selector is invalid for deployment",
        )),
        Some(_) => {}
    }
    template(&mut out, spec, selector);
    non_negative(&mut out, spec, "minReadySeconds");
    if def.kind == "Deployment" {
        non_negative(&mut out, spec, "revisionHistoryLimit");
        if let Some(p) = spec["progressDeadlineSeconds"].as_i64() {
            non_negative(&mut out, spec, "progressDeadlineSeconds");
            if p <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
                out.push(invalid(
                    "spec.progressDeadlineSeconds",
                    &p.to_string(),
                    "must be greater than minReadySeconds",
                ));
            }
        }
        let strategy = &spec["strategy"];
        if strategy["type"].as_str() == Some("Recreate") && strategy["rollingUpdate"].is_object() {
            out.push(forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
    }
    if let Some(old) = old
        && old["spec"]["selector"] != spec["selector"]
    {
        out.push(invalid(
            "spec.selector",
            &go::label_selector(&spec["selector"]),
            "field is immutable",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;
    use serde_json::json;

    fn deployment() -> ResourceDef {
        (*builtins()
            .into_iter()
            .find(|d| d.kind == "Deployment")
            .unwrap())
        .clone()
    }

    fn fields(obj: &Value, old: Option<&Value>) -> Vec<String> {
        workload(&deployment(), obj, old)
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    fn valid() -> Value {
        json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "x:1"}]}}}})
    }

    #[test]
    fn a_valid_deployment_has_no_causes() {
        assert!(fields(&valid(), None).is_empty());
    }

    #[test]
    fn selector_template_containers_and_replicas_are_checked() {
        let mut d = valid();
        d["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        assert_eq!(fields(&d, None), ["spec.template.metadata.labels"]);
        let mut d = valid();
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            fields(&d, None),
            ["spec.selector", "spec.template.metadata.labels"]
        );
        let mut d = valid();
        d["spec"]["template"]["spec"]["containers"] = json!([]);
        d["spec"]["replicas"] = json!(-1);
        assert_eq!(
            fields(&d, None),
            ["spec.replicas", "spec.template.spec.containers"]
        );
        let old = valid();
        let mut d = valid();
        d["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
        d["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        assert_eq!(fields(&d, Some(&old)), ["spec.selector"]);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"app": "web", "tier": "front"});
        let sel = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]},
                                 {"key": "x", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&sel, &labels));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "db"}}),
            &labels
        ));
    }
}
