//! The parts of Services, EndpointSlices and Pods the route table needs, decoded one object at a time.

use super::{Kind, RejectError};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use weir_crds::model::ObjectId;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service's ports and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    /// The ports in declaration order.
    pub ports: Vec<ServicePort>,
    /// Its labels (for TrafficPolicy selectors).
    pub labels: BTreeMap<String, String>,
}

/// One Service port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    /// The port's name (empty when unnamed).
    pub name: String,
    /// The Service port number.
    pub port: u16,
    /// Where traffic goes on the pods.
    pub target: TargetPort,
}

/// A Service port's `targetPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TargetPort {
    /// A container port number.
    Number(u16),
    /// A named container port.
    Name(String),
}

/// The ready-relevant parts of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SliceInfo {
    /// The Service this slice belongs to.
    pub service: String,
    /// The resolved ports, by Service port name (empty when unnamed).
    pub ports: Vec<(String, u16)>,
    /// The endpoints.
    pub endpoints: Vec<SliceEndpoint>,
}

/// One endpoint of a slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SliceEndpoint {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Whether it takes traffic (`conditions.ready`, unknown counts as ready).
    pub ready: bool,
    /// The Pod behind it, when the slice names one.
    pub pod: Option<String>,
}

/// The identity-relevant parts of a Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    /// The Pod's IPs.
    pub ips: Vec<IpAddr>,
    /// Its ServiceAccount (`default` when unset).
    pub service_account: String,
    /// The Deployment that owns it, derived from its ReplicaSet's name.
    pub deployment: Option<String>,
    /// Named container ports.
    pub named_ports: BTreeMap<String, u16>,
}

fn decode<T: serde::de::DeserializeOwned>(id: &ObjectId, value: &Value) -> Result<T, RejectError> {
    serde_json::from_value(value.clone()).map_err(|source| RejectError::Decode {
        id: id.clone(),
        source,
    })
}

fn invalid(id: &ObjectId, reason: impl Into<String>) -> RejectError {
    RejectError::Invalid {
        id: id.clone(),
        reason: reason.into(),
    }
}

fn port(id: &ObjectId, what: &str, n: i32) -> Result<u16, RejectError> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(id, format!("{what}: {n} is not a port (1-65535)")))
}

// === impl ServiceInfo ===

impl ServiceInfo {
    /// Decodes a Service.
    pub fn decode(id: &ObjectId, value: &Value) -> Result<Self, RejectError> {
        let svc: Service = decode(id, value)?;
        let labels = svc.metadata.labels.clone().unwrap_or_default();
        let mut ports = Vec::new();
        for (i, p) in svc
            .spec
            .and_then(|s| s.ports)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let number = port(id, &format!("spec.ports[{i}].port"), p.port)?;
            let target = match p.target_port {
                None => TargetPort::Number(number),
                Some(IntOrString::Int(n)) => {
                    TargetPort::Number(port(id, &format!("spec.ports[{i}].targetPort"), n)?)
                }
                Some(IntOrString::String(s)) => match s.parse::<i32>() {
                    Ok(n) => {
                        TargetPort::Number(port(id, &format!("spec.ports[{i}].targetPort"), n)?)
                    }
                    Err(_) => TargetPort::Name(s),
                },
            };
            ports.push(ServicePort {
                name: p.name.unwrap_or_default(),
                port: number,
                target,
            });
        }
        Ok(Self { ports, labels })
    }
}

// === impl SliceInfo ===

impl SliceInfo {
    /// Decodes an EndpointSlice; it must carry the `kubernetes.io/service-name` label.
    pub fn decode(id: &ObjectId, value: &Value) -> Result<Self, RejectError> {
        let slice: EndpointSlice = decode(id, value)?;
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
            .ok_or_else(|| invalid(id, format!("has no {SERVICE_NAME_LABEL} label")))?;
        let mut ports = Vec::new();
        for (i, p) in slice.ports.unwrap_or_default().into_iter().enumerate() {
            if let Some(n) = p.port {
                ports.push((
                    p.name.unwrap_or_default(),
                    port(id, &format!("ports[{i}].port"), n)?,
                ));
            }
        }
        let mut endpoints = Vec::new();
        for (i, e) in slice.endpoints.unwrap_or_default().into_iter().enumerate() {
            let addresses = e
                .addresses
                .iter()
                .map(|a| {
                    a.parse::<IpAddr>().map_err(|_| {
                        invalid(id, format!("endpoints[{i}]: {a:?} is not an IP address"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ready = e.conditions.and_then(|c| c.ready).unwrap_or(true);
            let pod = e
                .target_ref
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name);
            endpoints.push(SliceEndpoint {
                addresses,
                ready,
                pod,
            });
        }
        Ok(Self {
            service,
            ports,
            endpoints,
        })
    }

    /// The resolved port for a Service port name, if this slice lists it.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}

// === impl PodInfo ===

impl PodInfo {
    /// Decodes a Pod.
    pub fn decode(id: &ObjectId, value: &Value) -> Result<Self, RejectError> {
        let pod: Pod = decode(id, value)?;
        let status = pod.status.unwrap_or_default();
        let mut ips: Vec<IpAddr> = Vec::new();
        let listed = status.pod_ips.unwrap_or_default().into_iter().map(|p| p.ip);
        for ip in status.pod_ip.into_iter().chain(listed) {
            let ip = ip
                .parse()
                .map_err(|_| invalid(id, format!("status.podIP {ip:?} is not an IP address")))?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let spec = pod.spec.unwrap_or_default();
        let service_account = spec
            .service_account_name
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let mut named_ports = BTreeMap::new();
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                if let Some(name) = &p.name {
                    named_ports.insert(name.clone(), port(id, "containerPort", p.container_port)?);
                }
            }
        }
        let hash = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
            .cloned();
        let deployment = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "ReplicaSet")
            .map(|o| deployment_of(&o.name, hash.as_deref()));
        Ok(Self {
            ips,
            service_account,
            deployment,
            named_ports,
        })
    }
}

/// The Deployment name of a ReplicaSet `name-<pod-template-hash>`.
pub fn deployment_of(replica_set: &str, pod_template_hash: Option<&str>) -> String {
    if let Some(hash) = pod_template_hash
        && let Some(base) = replica_set
            .strip_suffix(hash)
            .and_then(|b| b.strip_suffix('-'))
    {
        return base.to_string();
    }
    match replica_set.rsplit_once('-') {
        Some((base, _)) if !base.is_empty() => base.to_string(),
        _ => replica_set.to_string(),
    }
}

/// The kind of an object the index keeps, from its `kind` field.
pub fn kind_of(kind: &str) -> Option<Kind> {
    match kind {
        "Service" => Some(Kind::Service),
        "EndpointSlice" => Some(Kind::EndpointSlice),
        "Pod" => Some(Kind::Pod),
        "TrafficSplit" => Some(Kind::TrafficSplit),
        "HTTPRouteGroup" => Some(Kind::HttpRouteGroup),
        "TCPRoute" => Some(Kind::TcpRoute),
        "TrafficTarget" => Some(Kind::TrafficTarget),
        "TrafficPolicy" => Some(Kind::TrafficPolicy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_comes_from_the_replica_set_name() {
        assert_eq!(
            deployment_of("foobar-v1-5d8f7c9b4", Some("5d8f7c9b4")),
            "foobar-v1"
        );
        assert_eq!(deployment_of("foobar-v1-5d8f7c9b4", None), "foobar-v1");
        assert_eq!(deployment_of("foobar-v1-abc", Some("zzz")), "foobar-v1");
        assert_eq!(deployment_of("plain", None), "plain");
    }
}
