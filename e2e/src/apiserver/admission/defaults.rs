//! Kind-specific defaults and checks applied on create: Services, Secrets, Pods, CRDs...

use super::{CLUSTER_IP_BASE, invalid, now};
use crate::apiserver::State;
use crate::apiserver::error::ApiError;
use crate::apiserver::resources::ResourceDef;
use serde_json::{Value, json};

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Kind-specific defaults and checks on create.
pub fn create_defaults(
    state: &mut State,
    def: &ResourceDef,
    obj: &mut Value,
    name: &str,
) -> Result<(), ApiError> {
    if def.status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        ("", "Pod") => {
            let sa = obj["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            if obj["spec"].is_object() {
                obj["spec"]["serviceAccountName"] = json!(sa);
                obj["spec"]["serviceAccount"] = json!(sa);
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("", "Service") => service_defaults(state, obj),
        ("", "Secret") => secret_defaults(obj),
        ("apps", "Deployment" | "ReplicaSet") => {
            if obj["spec"].is_object() && obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            obj["status"] = json!({});
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd_accept(def, obj, name)?,
        ("apiregistration.k8s.io", "APIService") => {
            obj["status"] = json!({"conditions": [{"type": "Available", "status": "True",
                "lastTransitionTime": now(), "reason": "Local", "message": "served by the local aggregator"}]});
        }
        _ => {}
    }
    Ok(())
}

fn service_defaults(state: &mut State, obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    spec["type"] = json!(ty);
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    if ty != "ExternalName" && spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        let n = state.next_cluster_ip;
        state.next_cluster_ip = state.next_cluster_ip.wrapping_add(1);
        let ip = format!(
            "{}.{}.{}.{}",
            CLUSTER_IP_BASE[0],
            CLUSTER_IP_BASE[1],
            (n >> 8) & 0xff,
            n & 0xff
        );
        spec["clusterIP"] = json!(ip);
    }
    if let Some(ip) = spec["clusterIP"].as_str().map(str::to_string) {
        spec["clusterIPs"] = json!([ip]);
    }
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports.iter_mut().filter(|p| p.is_object()) {
            if p["protocol"].is_null() {
                p["protocol"] = json!("TCP");
            }
            if p["targetPort"].is_null() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
    obj["status"] = json!({"loadBalancer": {}});
}

fn secret_defaults(obj: &mut Value) {
    if obj["type"].is_null() {
        obj["type"] = json!("Opaque");
    }
    if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            obj["data"][k] = json!(base64(v.as_str().unwrap_or_default().as_bytes()));
        }
        if let Some(m) = obj.as_object_mut() {
            m.remove("stringData");
        }
    }
}

/// Checks a CRD and sets its accepted names and Established/NamesAccepted conditions.
pub fn crd_accept(def: &ResourceDef, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let want = format!("{plural}.{group}");
    if group.is_empty() || plural.is_empty() || spec["names"]["kind"].as_str().is_none() {
        return Err(invalid(
            def,
            name,
            "spec.names",
            "FieldValueRequired",
            "Required value: group, names.plural and names.kind are required".into(),
        ));
    }
    if name != want {
        return Err(invalid(
            def,
            name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            def,
            name,
            "spec.versions",
            "FieldValueRequired",
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    if storage.len() != 1 {
        return Err(invalid(
            def,
            name,
            "spec.versions",
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let mut names = spec["names"].clone();
    if names["singular"].is_null() {
        names["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if names["listKind"].is_null() {
        names["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    let t = now();
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": storage,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ]
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn secrets_get_string_data_encoded() {
        let mut s = json!({"stringData": {"k": "hello"}});
        secret_defaults(&mut s);
        assert_eq!(s, json!({"type": "Opaque", "data": {"k": "aGVsbG8="}}));
    }
}
