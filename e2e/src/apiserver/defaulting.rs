//! Defaulting of built-in kinds, as the real server fills fields in when it decodes a body on
//! create, update and every patch. Taken from upstream's defaulting functions as of Kubernetes
//! 1.32: `pkg/apis/core/v1/defaults.go` with its generated `zz_generated.defaults.go`,
//! `pkg/apis/apps/v1/defaults.go` and `pkg/apis/discovery/v1/defaults.go`.
//!
//! Everything here is pure and idempotent; what needs state (ClusterIPs, NodePorts) lives in
//! [`service`], and what admission plugins add to new Pods lives in [`pod_admission`].

use super::resources::ResourceDef;
use crate::apiserver::codec;
use serde_json::{Map, Value, json};

pub mod service;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        return None;
    }
    e.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// The pull policy upstream picks for an image: `Always` for `:latest` or no tag (and no
/// digest), else `IfNotPresent` (also when the name does not parse, as upstream ignores the
/// error there).
pub fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    let parses = !name.is_empty()
        && !name
            .split(':')
            .next()
            .unwrap_or_default()
            .chars()
            .any(|c| c.is_ascii_uppercase() || c.is_whitespace());
    if !parses {
        return "IfNotPresent";
    }
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    let Some(m) = p.as_object_mut() else { return };
    set_default(m, "timeoutSeconds", json!(1));
    set_default(m, "periodSeconds", json!(10));
    set_default(m, "successThreshold", json!(1));
    set_default(m, "failureThreshold", json!(3));
    http_get(&mut m["httpGet"]);
}

fn http_get(h: &mut Value) {
    if let Some(m) = h.as_object_mut() {
        set_default(m, "path", json!("/"));
        set_default(m, "scheme", json!("HTTP"));
    }
}

/// `SetDefaults_Container` plus the generated defaults of its ports, env, probes and hooks.
fn container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = pull_policy(image);
    set_default(m, "imagePullPolicy", json!(policy));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "resources", json!({}));
    for p in m
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(pm) = p.as_object_mut() {
            set_default(pm, "protocol", json!("TCP"));
        }
    }
    for e in m
        .get_mut("env")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(fr) = e
            .pointer_mut("/valueFrom/fieldRef")
            .and_then(Value::as_object_mut)
        {
            set_default(fr, "apiVersion", json!("v1"));
        }
    }
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(k) {
            probe(p);
        }
    }
    for k in ["postStart", "preStop"] {
        if let Some(h) = m.get_mut("lifecycle").and_then(|l| l.get_mut(k)) {
            http_get(&mut h["httpGet"]);
        }
    }
}

fn volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else { return };
    if m.keys().all(|k| k == "name") {
        m.insert("emptyDir".into(), json!({}));
    }
    for k in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = m.get_mut(k).and_then(Value::as_object_mut) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(hp) = m.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(hp, "type", json!(""));
    }
}

/// `SetDefaults_PodSpec` and everything nested in a pod spec.
pub fn pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    set_default(m, "dnsPolicy", json!("ClusterFirst"));
    set_default(m, "restartPolicy", json!("Always"));
    set_default(m, "securityContext", json!({}));
    set_default(m, "terminationGracePeriodSeconds", json!(30));
    set_default(m, "schedulerName", json!("default-scheduler"));
    for k in ["containers", "initContainers", "ephemeralContainers"] {
        for c in m
            .get_mut(k)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            container(c);
        }
    }
    for v in m
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        volume(v);
    }
}

/// A pod template inside a workload: the spec defaults, and `creationTimestamp: null` in its
/// metadata, which 1.32 serialises for every template.
fn pod_template(spec: &mut Value) {
    let Some(tpl) = obj_mut(spec, "template") else {
        return;
    };
    let meta = tpl.entry("metadata").or_insert_with(|| json!({}));
    if let Some(mm) = meta.as_object_mut() {
        mm.entry("creationTimestamp").or_insert(Value::Null);
    }
    pod_spec(tpl.entry("spec").or_insert_with(|| json!({})));
}

fn deployment(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(s) = strategy.as_object_mut() {
        set_default(s, "type", json!("RollingUpdate"));
        if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(r) = ru.as_object_mut() {
                set_default(r, "maxUnavailable", json!("25%"));
                set_default(r, "maxSurge", json!("25%"));
            }
        }
    }
    pod_template(&mut obj["spec"]);
}

fn replica_set(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "replicas", json!(1));
    }
    pod_template(&mut obj["spec"]);
}

fn namespace(obj: &mut Value) {
    let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) else {
        return;
    };
    if let Some(meta) = obj_mut(obj, "metadata")
        && let Some(labels) = meta
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

/// The v1 → internal conversion of a Secret: `stringData` is merged into `data`.
fn secret(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        set_default(m, "type", json!("Opaque"));
    }
    let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() else {
        return;
    };
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in sd {
        obj["data"][k] = json!(codec::encode(v.as_str().unwrap_or_default().as_bytes()));
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("stringData");
    }
}

fn port_protocols(ports: Option<&mut Value>, name: bool) {
    for p in ports.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(m) = p.as_object_mut() {
            set_default(m, "protocol", json!("TCP"));
            if name {
                set_default(m, "name", json!(""));
            }
        }
    }
}

/// Drops empty lists and maps where upstream's Go types have `omitempty`, so they never show.
fn omit_empty(def: &ResourceDef, obj: &mut Value) {
    let empty = |v: &Value| match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => true,
        _ => false,
    };
    let prune = |v: &mut Value, keys: &[&str]| {
        if let Some(m) = v.as_object_mut() {
            m.retain(|k, v| !(keys.contains(&k.as_str()) && empty(v)));
        }
    };
    if let Some(meta) = obj.get_mut("metadata") {
        prune(
            meta,
            &["labels", "annotations", "finalizers", "ownerReferences"],
        );
    }
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Service") => {
            if let Some(spec) = obj.get_mut("spec") {
                prune(spec, &["ports", "selector"]);
            }
        }
        ("", "ConfigMap") => prune(obj, &["data", "binaryData"]),
        ("", "Secret") => prune(obj, &["data"]),
        _ => {}
    }
}

/// Fills in the defaults of a built-in kind (custom resources get theirs from their schema).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    if def.custom || !obj.is_object() {
        return;
    }
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => {
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "enableServiceLinks", json!(true));
            }
            pod_spec(&mut obj["spec"]);
        }
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => replica_set(obj),
        ("", "Service") => service::defaults(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => secret(obj),
        ("", "Endpoints") => {
            let subsets = obj.get_mut("subsets").and_then(Value::as_array_mut);
            for s in subsets.into_iter().flatten() {
                port_protocols(s.get_mut("ports"), false);
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => port_protocols(obj.get_mut("ports"), true),
        _ => {}
    }
    omit_empty(def, obj);
}

/// What the admission plugins of a default install add to a new Pod: `ServiceAccount` (the
/// account name), `Priority` (priority 0, `PreemptLowerPriority`) and `DefaultTolerationSeconds`
/// (300 s for not-ready and unreachable nodes).
pub fn pod_admission(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str))
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    set_default(spec, "priority", json!(0));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let present = list
                .iter()
                .any(|t| t["key"] == json!(key) && t["effect"] == json!("NoExecute"));
            if !present {
                list.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 300}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
