//! Services: `SetDefaults_Service`, and what the Service storage does with cluster IPs, IP
//! families and node ports (`pkg/registry/core/service/storage/alloc.go`,
//! `normalizeClusterIPs` and `patchAllocatedValues`).

use super::set_default;
use crate::apiserver::State;
use serde_json::{Map, Value, json};

/// The NodePort range of a default install.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn kind_of(spec: &Map<String, Value>) -> &str {
    spec.get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// `SetDefaults_Service`.
pub fn defaults(obj: &mut Value) {
    let Some(spec) = super::obj_mut(obj, "spec") else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = kind_of(spec).to_string();
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .cloned();
            if timeout.is_none() {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    for p in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(m) = p.as_object_mut() {
            set_default(m, "protocol", json!("TCP"));
            let unset = match m.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset && let Some(port) = m.get("port").cloned() {
                m.insert("targetPort".into(), port);
            }
        }
    }
    let external = matches!(ty.as_str(), "NodePort" | "LoadBalancer");
    if external {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn needs_cluster_ip(spec: &Map<String, Value>) -> bool {
    kind_of(spec) != "ExternalName"
}

fn needs_node_ports(spec: &Map<String, Value>) -> bool {
    matches!(kind_of(spec), "NodePort" | "LoadBalancer")
}

/// `normalizeClusterIPs` and `patchAllocatedValues`: an update keeps the allocated IPs and node
/// ports that the client left out.
fn carry_over(spec: &mut Map<String, Value>, old: &Map<String, Value>) {
    let old_ip = old.get("clusterIP").and_then(Value::as_str).unwrap_or("");
    let new_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let old_ips = strings(old.get("clusterIPs"));
    let new_ips = strings(spec.get("clusterIPs"));
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        spec.insert("clusterIPs".into(), json!(old_ips));
    }
    if old_ip != new_ip.as_str() && !new_ip.is_empty() && new_ips == old_ips {
        spec.insert("clusterIPs".into(), json!([new_ip]));
    }
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if new_ip.is_empty() && !old_ip.is_empty() {
            spec.insert("clusterIP".into(), json!(old_ip));
        }
        if strings(spec.get("clusterIPs")).is_empty() && !old_ips.is_empty() {
            spec.insert("clusterIPs".into(), json!(old_ips));
        }
    }
    for k in ["ipFamilyPolicy", "ipFamilies"] {
        if spec.get(k).is_none_or(Value::is_null)
            && let Some(v) = old.get(k)
        {
            spec.insert(k.into(), v.clone());
        }
    }
    if needs_node_ports(old) && needs_node_ports(spec) {
        let by_name: Vec<(String, i64)> = old
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let np = p["nodePort"].as_i64()?;
                Some((p["name"].as_str().unwrap_or_default().to_string(), np))
            })
            .collect();
        let used: Vec<i64> = node_ports_of(spec);
        for p in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let name = p["name"].as_str().unwrap_or_default().to_string();
            if let Some((_, np)) = by_name.iter().find(|(n, _)| *n == name)
                && !used.contains(np)
            {
                p["nodePort"] = json!(np);
            }
        }
    }
}

fn node_ports_of(spec: &Map<String, Value>) -> Vec<i64> {
    spec.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_i64())
        .filter(|n| *n != 0)
        .collect()
}

/// The next ClusterIP inside the server's `service_cidr`.
fn next_cluster_ip(st: &mut State) -> String {
    let n = st.next_cluster_ip;
    st.next_cluster_ip = st.next_cluster_ip.wrapping_add(1);
    let (base, prefix_len) = st.service_cidr;
    let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    std::net::Ipv4Addr::from((u32::from(base) & !host_mask) | (n & host_mask)).to_string()
}

fn next_node_port(st: &State, taken: &[i64]) -> Option<i64> {
    let key = ("".to_string(), "services".to_string());
    let mut used: Vec<i64> = st
        .store
        .list(&key, None)
        .iter()
        .filter_map(|s| s["spec"].as_object().map(node_ports_of))
        .flatten()
        .collect();
    used.extend_from_slice(taken);
    NODE_PORTS.clone().find(|p| !used.contains(p))
}

/// Initialises IP families, allocates the cluster IP and node ports, and carries allocated
/// values over on update (`old`).
pub fn allocate(st: &mut State, obj: &mut Value, old: Option<&Value>) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let old_spec = old.and_then(|o| o["spec"].as_object()).cloned();
    let mut fresh_ip = None;
    {
        let Some(spec) = obj["spec"].as_object_mut() else {
            return;
        };
        if let Some(old_spec) = &old_spec {
            carry_over(spec, old_spec);
        }
        let ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
        if ip.is_empty() && strings(spec.get("clusterIPs")).is_empty() && needs_cluster_ip(spec) {
            fresh_ip = Some(());
        } else if !ip.is_empty() && strings(spec.get("clusterIPs")).is_empty() {
            let ip = ip.to_string();
            spec.insert("clusterIPs".into(), json!([ip]));
        }
    }
    if fresh_ip.is_some() {
        let ip = next_cluster_ip(st);
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
    let taken_here: Vec<i64> = obj["spec"]
        .as_object()
        .map(node_ports_of)
        .unwrap_or_default();
    let mut taken = taken_here;
    let Some(spec) = obj["spec"].as_object_mut() else {
        return;
    };
    if needs_node_ports(spec) {
        let count = spec
            .get("ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            let unset = spec["ports"][i]["nodePort"].as_i64().unwrap_or(0) == 0;
            if unset && let Some(np) = next_node_port(st, &taken) {
                spec["ports"][i]["nodePort"] = json!(np);
                taken.push(np);
            }
        }
    }
    if needs_cluster_ip(spec) {
        let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
        let selectorless = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let dual = headless && selectorless;
        set_default(
            spec,
            "ipFamilyPolicy",
            json!(if dual {
                "RequireDualStack"
            } else {
                "SingleStack"
            }),
        );
        let families = if dual && spec["ipFamilyPolicy"] != json!("SingleStack") {
            json!(["IPv4", "IPv6"])
        } else {
            json!(["IPv4"])
        };
        set_default(spec, "ipFamilies", families);
    } else {
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            spec.remove(k);
        }
    }
    if !obj["status"].is_object() {
        obj["status"] = json!({"loadBalancer": {}});
    }
}
