//! `meta.k8s.io/v1 Table` rendering for `kubectl get` (pure functions; `now` is an argument).

use super::jsonpath;
use super::resources::{PrinterColumn, ResourceDef};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// How much of each object a Table row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// Renders a duration the way kubectl's `HumanDuration` does.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// The age of a timestamp relative to `now`, or `<unknown>`.
pub fn age(ts: Option<&str>, now: DateTime<Utc>) -> String {
    ts.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration((now - t.with_timezone(&Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn col(name: &str, ty: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: ty.into(),
        format: if name == "Name" {
            "name".into()
        } else {
            String::new()
        },
        description: String::new(),
        priority,
        json_path: String::new(),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn builtin_columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    let names: &[&str] = match def.kind.as_str() {
        "Pod" => &["Name", "Ready", "Status", "Restarts", "Age", "IP"],
        "Deployment" => &["Name", "Ready", "Up-to-date", "Available", "Age"],
        "ReplicaSet" => &["Name", "Desired", "Current", "Ready", "Age"],
        "Service" => &[
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
        ],
        "Namespace" => &["Name", "Status", "Age"],
        "ConfigMap" => &["Name", "Data", "Age"],
        "Secret" => &["Name", "Type", "Data", "Age"],
        "Event" if def.group.is_empty() => &["Last Seen", "Type", "Reason", "Object", "Message"],
        "Lease" => &["Name", "Holder", "Age"],
        "CustomResourceDefinition" => &["Name", "Created At"],
        "APIService" => &["Name", "Service", "Available", "Age"],
        _ => &["Name", "Age"],
    };
    names
        .iter()
        .map(|c| col(c, "string", i64::from(*c == "IP")))
        .collect()
}

fn builtin_cell(kind: &str, column: &str, o: &Value, now: DateTime<Utc>) -> Value {
    let st = &o["status"];
    let created = o["metadata"]["creationTimestamp"].as_str();
    let v = match (kind, column) {
        (_, "Name") => s(&o["metadata"]["name"]),
        (_, "Age") => age(created, now),
        (_, "Created At") => created.unwrap_or_default().to_string(),
        ("Pod", "Ready") => {
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = st["containerStatuses"].as_array().map_or(0, |c| {
                c.iter().filter(|c| c["ready"] == json!(true)).count()
            });
            format!("{ready}/{total}")
        }
        ("Pod", "Status") if o["metadata"]["deletionTimestamp"].is_string() => "Terminating".into(),
        ("Pod", "Status") => s(&st["phase"]),
        ("Pod", "Restarts") => {
            return json!(
                st["containerStatuses"]
                    .as_array()
                    .map_or(0, |c| c.iter().map(|c| n(&c["restartCount"])).sum::<i64>())
            );
        }
        ("Pod", "IP") => s(&st["podIP"]),
        ("Deployment", "Ready") => {
            format!("{}/{}", n(&st["readyReplicas"]), n(&o["spec"]["replicas"]))
        }
        ("Deployment", "Up-to-date") => return json!(n(&st["updatedReplicas"])),
        ("Deployment", "Available") => return json!(n(&st["availableReplicas"])),
        ("ReplicaSet", "Desired") => return json!(n(&o["spec"]["replicas"])),
        ("ReplicaSet", "Current") => return json!(n(&st["replicas"])),
        ("ReplicaSet", "Ready") => return json!(n(&st["readyReplicas"])),
        ("Service", "Type") => o["spec"]["type"].as_str().unwrap_or("ClusterIP").into(),
        ("Service", "Cluster-IP") => o["spec"]["clusterIP"].as_str().unwrap_or("<none>").into(),
        ("Service", "External-IP") => "<none>".into(),
        ("Service", "Port(s)") => o["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    s(&p["port"]),
                    p["protocol"].as_str().unwrap_or("TCP")
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        ("Namespace", "Status") => st["phase"].as_str().unwrap_or("Active").into(),
        ("ConfigMap" | "Secret", "Data") => {
            let d = |k: &str| o[k].as_object().map_or(0, |m| m.len());
            return json!(d("data") + d("binaryData") + d("stringData"));
        }
        ("Secret", "Type") => o["type"].as_str().unwrap_or("Opaque").into(),
        ("Event", "Last Seen") => age(
            o["lastTimestamp"]
                .as_str()
                .or(o["eventTime"].as_str())
                .or(created),
            now,
        ),
        ("Event", "Type") => s(&o["type"]),
        ("Event", "Reason") => s(&o["reason"]),
        ("Event", "Object") => format!(
            "{}/{}",
            o["involvedObject"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase(),
            s(&o["involvedObject"]["name"])
        ),
        ("Event", "Message") => s(&o["message"]),
        ("Lease", "Holder") => s(&o["spec"]["holderIdentity"]),
        ("APIService", "Service") => match o["spec"]["service"].as_object() {
            Some(svc) => format!("{}/{}", s(&svc["namespace"]), s(&svc["name"])),
            None => "Local".into(),
        },
        ("APIService", "Available") => st["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
            .map_or("Unknown".into(), |c| s(&c["status"])),
        _ => String::new(),
    };
    json!(v)
}

fn custom_cell(c: &PrinterColumn, o: &Value, now: DateTime<Utc>) -> Value {
    let vals = jsonpath::eval(o, &c.json_path);
    let Some(first) = vals.first() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => json!(age(first.as_str(), now)),
        "integer" | "number" | "boolean" if vals.len() == 1 => first.clone(),
        _ => json!(vals.iter().map(s).collect::<Vec<_>>().join(",")),
    }
}

fn columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    if !def.custom {
        return builtin_columns(def);
    }
    let mut cols = vec![col("Name", "string", 0)];
    if def.printer_columns.is_empty() {
        cols.push(PrinterColumn {
            json_path: ".metadata.creationTimestamp".into(),
            ..col("Age", "date", 0)
        });
    } else {
        cols.extend(def.printer_columns.iter().cloned());
    }
    cols
}

fn row_object(o: &Value, include: Include) -> Value {
    match include {
        Include::None => Value::Null,
        Include::Object => o.clone(),
        Include::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        }),
    }
}

/// Renders objects (already in the served shape) as a Table.
pub fn render(
    def: &ResourceDef,
    objs: &[Value],
    list_meta: Value,
    include: Include,
    now: DateTime<Utc>,
) -> Value {
    let cols = columns(def);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": if c.type_ == "date" { "string" } else { c.type_.as_str() },
                   "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols
                .iter()
                .map(|c| {
                    if def.custom && c.name != "Name" {
                        custom_cell(c, o, now)
                    } else if def.custom {
                        json!(s(&o["metadata"]["name"]))
                    } else {
                        builtin_cell(&def.kind, &c.name, o, now)
                    }
                })
                .collect();
            let mut row = json!({"cells": cells});
            let obj = row_object(o, include);
            if !obj.is_null() {
                row["object"] = obj;
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::{builtins, defs_from_crd};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 120), "4h2m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn crd_printer_columns_render_with_name_first_and_dates_as_age() {
        let crd = json!({"spec": {"group": "weir.dev", "names": {"plural": "rollouts", "kind": "Rollout"},
            "versions": [{"name": "v1alpha1", "served": true, "additionalPrinterColumns": [
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Weight", "type": "integer", "jsonPath": ".status.weights.canary"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}});
        let def = &defs_from_crd(&crd)[0];
        let o = json!({"metadata": {"name": "foo", "creationTimestamp": "2026-01-01T00:55:00Z"},
                       "status": {"phase": "Progressing", "weights": {"canary": 10}}});
        let t = render(def, &[o], json!({}), Include::Metadata, now());
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["foo", "Progressing", 10, "5m"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn pods_and_deployments_have_default_columns() {
        let defs = builtins();
        let pod_def = defs.iter().find(|d| d.kind == "Pod").unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}]}});
        let t = render(pod_def, &[pod], json!({}), Include::None, now());
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["p", "1/1", "Running", 2, "<unknown>", ""])
        );
        let d_def = defs.iter().find(|d| d.kind == "Deployment").unwrap();
        let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = render(d_def, &[d], json!({}), Include::None, now());
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["d", "2/3", 3, 2, "<unknown>"])
        );
    }

    #[test]
    fn table_accept_header_detection() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
