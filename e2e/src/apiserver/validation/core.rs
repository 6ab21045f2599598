//! core/v1 kinds: ConfigMap, Secret, Service and Lease (`coordination.k8s.io`, which upstream
//! validates the same way).

use super::{cause, go, invalid, required};
use crate::apiserver::codec;
use crate::apiserver::error::Cause;
use serde_json::Value;

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const DNS_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";

/// `IsConfigMapKey`: the messages for a bad ConfigMap or Secret key.
fn config_key(key: &str) -> Vec<String> {
    let mut out = vec![];
    if key.len() > 253 {
        out.push("must be no more than 253 characters".into());
    }
    let charset = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !charset {
        out.push(CONFIG_KEY_MSG.into());
    }
    match key {
        "." => out.push("must not be '.'".into()),
        ".." => out.push("must not be '..'".into()),
        k if k.starts_with("..") => out.push("must not start with '..'".into()),
        _ => {}
    }
    out
}

fn key_causes(obj: &Value, field: &str) -> Vec<Cause> {
    let mut out = vec![];
    for key in obj[field].as_object().into_iter().flatten().map(|(k, _)| k) {
        for msg in config_key(key) {
            out.push(invalid(format!("{field}[{key}]"), &go::quote(key), &msg));
        }
    }
    out
}

/// `ValidateConfigMap`: key names.
pub fn config_map(obj: &Value) -> Vec<Cause> {
    let mut out = key_causes(obj, "data");
    out.extend(key_causes(obj, "binaryData"));
    for key in obj["binaryData"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if obj["data"].get(key).is_some() {
            out.push(invalid(
                format!("binaryData[{key}]"),
                &go::quote(key),
                "duplicate key in both data and binaryData",
            ));
        }
    }
    out
}

/// Decoding a Secret: every `data` value must be standard base64.
pub fn secret_data(obj: &Value) -> Result<(), String> {
    for v in obj["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
    {
        match v {
            Value::String(s) => {
                codec::decode(s)?;
            }
            Value::Null => {}
            other => return Err(format!("data values must be strings, got {other}")),
        }
    }
    Ok(())
}

/// `ValidateSecret`: key names and the keys each Secret type requires.
pub fn secret(obj: &Value) -> Vec<Cause> {
    let mut out = key_causes(obj, "data");
    let has = |k: &str| obj["data"].get(k).is_some();
    let need = |out: &mut Vec<Cause>, k: &str| {
        if !has(k) {
            out.push(required(format!("data[{k}]")));
        }
    };
    match obj["type"].as_str().unwrap_or_default() {
        "kubernetes.io/tls" => {
            need(&mut out, "tls.crt");
            need(&mut out, "tls.key");
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            need(&mut out, "username");
            need(&mut out, "password");
        }
        "kubernetes.io/ssh-auth" => need(&mut out, "ssh-privatekey"),
        "kubernetes.io/dockercfg" => need(&mut out, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => need(&mut out, ".dockerconfigjson"),
        "kubernetes.io/service-account-token" => {
            let sa = &obj["metadata"]["annotations"]["kubernetes.io/service-account.name"];
            if sa.as_str().is_none_or(str::is_empty) {
                out.push(required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                ));
            }
        }
        _ => {}
    }
    out
}

/// Decoding a `MicroTime`: RFC 3339 with exactly six fractional digits, as Go parses
/// `2006-01-02T15:04:05.000000Z07:00`.
pub fn micro_time(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Ok(());
    };
    let layout = "2006-01-02T15:04:05.000000Z07:00";
    let bytes = s.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let shape = |pattern: &str, from: usize| {
        pattern.bytes().enumerate().all(|(i, p)| match p {
            b'd' => digit(from + i),
            other => bytes.get(from + i) == Some(&other),
        })
    };
    if !shape("dddd-dd-ddTdd:dd:dd", 0) {
        return Err(format!(
            "parsing time {} as {}: cannot parse {} as \"2006\"",
            go::quote(s),
            go::quote(layout),
            go::quote(s)
        ));
    }
    if !shape(".dddddd", 19) {
        return Err(format!(
            "parsing time {} as {}: cannot parse {} as \".000000\"",
            go::quote(s),
            go::quote(layout),
            go::quote(s.get(19..).unwrap_or_default())
        ));
    }
    let zone = s.get(26..).unwrap_or_default();
    let zone_ok = zone == "Z"
        || (zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') && shape("dd:dd", 27));
    if !zone_ok {
        return Err(format!(
            "parsing time {} as {}: cannot parse {} as \"Z07:00\"",
            go::quote(s),
            go::quote(layout),
            go::quote(zone)
        ));
    }
    Ok(())
}

fn dns_label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn port_causes(spec: &Value) -> Vec<Cause> {
    let mut out = vec![];
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    let headless = spec["clusterIP"].as_str() == Some("None");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(required("spec.ports"));
    }
    let mut names: Vec<String> = vec![];
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        match p["name"].as_str().unwrap_or_default() {
            "" if ports.len() > 1 => out.push(required(format!("{path}.name"))),
            "" => {}
            name => {
                if !dns_label_ok(name) {
                    out.push(invalid(
                        format!("{path}.name"),
                        &go::quote(name),
                        DNS_LABEL_MSG,
                    ));
                }
                if names.iter().any(|n| n == name) {
                    out.push(cause(
                        "FieldValueDuplicate",
                        format!("{path}.name"),
                        format!("Duplicate value: {}", go::quote(name)),
                    ));
                }
                names.push(name.to_string());
            }
        }
        let port = p["port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&port) {
            out.push(invalid(
                format!("{path}.port"),
                &port.to_string(),
                PORT_RANGE_MSG,
            ));
        }
        let proto = p["protocol"].as_str().unwrap_or_default();
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            out.push(cause(
                "FieldValueNotSupported",
                format!("{path}.protocol"),
                format!(
                    "Unsupported value: {}: supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    go::quote(proto)
                ),
            ));
        }
        if let Some(tp) = p["targetPort"].as_i64()
            && !(1..=65535).contains(&tp)
        {
            out.push(invalid(
                format!("{path}.targetPort"),
                &tp.to_string(),
                PORT_RANGE_MSG,
            ));
        }
    }
    out
}

/// `ValidateService` and, with `old`, `ValidateServiceUpdate`'s cluster IP immutability.
pub fn service(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let spec = &obj["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    let mut out = vec![];
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        out.push(cause(
            "FieldValueNotSupported",
            "spec.type".into(),
            format!(
                "Unsupported value: {}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                go::quote(ty)
            ),
        ));
    }
    if ty == "ExternalName" && spec["externalName"].as_str().is_none_or(str::is_empty) {
        out.push(required("spec.externalName"));
    }
    out.extend(port_causes(spec));
    if let Some(old) = old {
        out.extend(cluster_ip_update(spec, &old["spec"]));
    }
    out
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// `validateUpgradeDowngradeClusterIPs`: the cluster IPs may not change once set.
fn cluster_ip_update(spec: &Value, old: &Value) -> Vec<Cause> {
    let external = |s: &Value| s["type"].as_str() == Some("ExternalName");
    let headless = |s: &Value| s["clusterIP"].as_str() == Some("None");
    if external(spec) || external(old) || (headless(spec) && headless(old)) {
        return vec![];
    }
    let (new_ips, old_ips) = (strings(&spec["clusterIPs"]), strings(&old["clusterIPs"]));
    if new_ips.len() != old_ips.len() {
        return vec![];
    }
    old_ips
        .iter()
        .zip(&new_ips)
        .enumerate()
        .filter(|(_, (o, n))| o != n)
        .map(|(i, _)| {
            invalid(
                format!("spec.clusterIPs[{i}]"),
                &go::string_slice(&new_ips),
                "may not change once set",
            )
        })
        .collect()
}

/// `ValidateLeaseSpec`.
pub fn lease(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut out = vec![];
    if let Some(d) = spec["leaseDurationSeconds"].as_i64()
        && d <= 0
    {
        out.push(invalid(
            "spec.leaseDurationSeconds",
            &d.to_string(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec["leaseTransitions"].as_i64()
        && t < 0
    {
        out.push(invalid(
            "spec.leaseTransitions",
            &t.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_keys_follow_is_config_map_key() {
        assert!(config_key("app.properties").is_empty());
        assert_eq!(config_key("bad key"), vec![CONFIG_KEY_MSG.to_string()]);
        assert_eq!(config_key(".."), vec!["must not be '..'".to_string()]);
        let c = config_map(&json!({"data": {"a b": "x"}}));
        assert_eq!(c[0].field, "data[a b]");
    }

    #[test]
    fn micro_times_need_six_fractional_digits() {
        assert!(micro_time(&json!("2026-01-01T00:00:00.123456Z")).is_ok());
        assert!(micro_time(&json!("2026-01-01T00:00:00.123456+02:00")).is_ok());
        let e = micro_time(&json!("2026-01-01T00:00:00Z")).unwrap_err();
        assert!(e.ends_with("cannot parse \"Z\" as \".000000\""), "{e}");
        assert!(micro_time(&json!("2026-01-01T00:00:00.123Z")).is_err());
        assert!(micro_time(&json!("2026-01-01T00:00:00.1234567Z")).is_err());
        assert!(micro_time(&Value::Null).is_ok());
    }

    #[test]
    fn services_need_named_ports_in_range() {
        let svc = json!({"spec": {"type": "ClusterIP", "ports": [
            {"port": 80, "protocol": "TCP", "targetPort": 80},
            {"port": 70000, "protocol": "TCP", "targetPort": 8080}]}});
        let fields: Vec<String> = service(&svc, None).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "spec.ports[0].name",
                "spec.ports[1].name",
                "spec.ports[1].port"
            ]
        );
        let none = json!({"spec": {"type": "ClusterIP"}});
        assert_eq!(service(&none, None)[0].field, "spec.ports");
    }
}
