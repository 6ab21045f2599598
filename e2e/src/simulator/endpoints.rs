//! What the EndpointSlice controller and kube-proxy compute, as pure
//! functions of a Service, its Pods and its EndpointSlices.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names;

/// Label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value for [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "weir-simulator";

/// Whether every `key=value` of an equality selector is on `labels`.
/// An empty selector matches nothing, as for Services.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if selector.is_empty() {
        return false;
    }
    let Some(labels) = labels else { return false };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod port a Service port targets: a number, a container port name,
/// or (unset) the service port itself. `None` when a name matches nothing.
pub fn resolve_target_port(port: &ServicePort, pod: &Pod) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
        }
    }
}

/// Whether a Pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

fn pod_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// The Pods behind a Service: selected, with an IP, not finished; sorted by name.
pub fn selected_pods<'a>(svc: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<&'a Pod> {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    let ns = svc.metadata.namespace.as_deref();
    let mut out: Vec<&Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| selector_matches(selector, p.metadata.labels.as_ref()))
        .filter(|p| pod_ip(p).is_some() && !pod_terminal(p))
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

fn owner_ref(svc: &Service) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone()?,
        uid: svc.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The name of the EndpointSlice we manage for a Service.
pub fn slice_name(svc: &Service) -> String {
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let seed = svc.metadata.uid.as_deref().unwrap_or(name);
    format!("{name}-{}", names::stable_suffix(seed))
}

/// Service ports resolved against the first pod that resolves every one of
/// them (one slice per Service; pods disagreeing on named ports are a known
/// simplification).
fn resolved_ports(svc: &Service, pods: &[&Pod]) -> Vec<(ServicePort, i32)> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let Some(pod) = pods
        .iter()
        .find(|p| ports.iter().all(|sp| resolve_target_port(sp, p).is_some()))
    else {
        return Vec::new();
    };
    ports
        .into_iter()
        .filter_map(|sp| resolve_target_port(&sp, pod).map(|n| (sp, n)))
        .collect()
}

/// The EndpointSlice the real controller would write for `svc`, or `None`
/// when the Service has no selector (its slices are someone else's).
pub fn desired_slice<'a>(
    svc: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Option<EndpointSlice> {
    svc.spec.as_ref()?.selector.as_ref()?;
    let name = svc.metadata.name.clone()?;
    let pods = selected_pods(svc, pods);
    let endpoints = pods
        .iter()
        .filter_map(|p| {
            let ready = pod_ready(p);
            let terminating = p.metadata.deletion_timestamp.is_some();
            Some(Endpoint {
                addresses: vec![pod_ip(p)?.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready && !terminating),
                    serving: Some(ready),
                    terminating: Some(terminating),
                }),
                node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                target_ref: Some(pod_ref(p)),
                ..Default::default()
            })
        })
        .collect::<Vec<_>>();
    let ports = resolved_ports(svc, &pods)
        .into_iter()
        .map(|(sp, n)| SlicePort {
            name: Some(sp.name.unwrap_or_default()),
            port: Some(n),
            protocol: Some(sp.protocol.unwrap_or_else(|| "TCP".into())),
            app_protocol: sp.app_protocol,
        })
        .collect();
    let labels = [
        (SERVICE_NAME_LABEL.to_string(), name),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ];
    Some(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name(svc)),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels.into()),
            owner_references: owner_ref(svc).map(|o| vec![o]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(endpoints),
        ports: Some(ports),
    })
}

/// The core/v1 Endpoints object for `svc` (ready and not-ready addresses).
pub fn desired_endpoints<'a>(
    svc: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Option<Endpoints> {
    svc.spec.as_ref()?.selector.as_ref()?;
    let pods = selected_pods(svc, pods);
    let address = |p: &&Pod| {
        Some(EndpointAddress {
            ip: pod_ip(p)?.to_string(),
            node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(p)),
            ..Default::default()
        })
    };
    let live = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none());
    let (ready, not_ready): (Vec<_>, Vec<_>) = live.partition(|p| pod_ready(p));
    let ports: Vec<EndpointPort> = resolved_ports(svc, &pods)
        .into_iter()
        .map(|(sp, n)| EndpointPort {
            name: sp.name,
            port: n,
            protocol: Some(sp.protocol.unwrap_or_else(|| "TCP".into())),
            app_protocol: sp.app_protocol,
        })
        .collect();
    let subsets = if ready.is_empty() && not_ready.is_empty() {
        None
    } else {
        Some(vec![EndpointSubset {
            addresses: Some(ready.iter().filter_map(address).collect()),
            not_ready_addresses: Some(not_ready.iter().filter_map(address).collect()),
            ports: Some(ports),
        }])
    };
    Some(Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            labels: svc.metadata.labels.clone(),
            ..Default::default()
        },
        subsets,
    })
}

/// Whether two slices carry the same endpoints and ports (what we write).
pub fn slice_content_eq(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    a.endpoints == b.endpoints
        && a.ports.clone().unwrap_or_default() == b.ports.clone().unwrap_or_default()
}

/// The ready backends for one Service port, read from the Service's
/// EndpointSlices (whoever wrote them), sorted for stable round-robin.
pub fn backends<'a>(
    svc: &Service,
    port: &ServicePort,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<SocketAddr> {
    let name = svc.metadata.name.as_deref();
    let ns = svc.metadata.namespace.as_deref();
    let port_name = port.name.as_deref().unwrap_or_default();
    let mut out: Vec<SocketAddr> = slices
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            labels
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == name
        })
        .filter_map(|s| {
            let sp = s
                .ports
                .as_ref()?
                .iter()
                .find(|p| p.name.as_deref().unwrap_or_default() == port_name)?;
            let number = u16::try_from(sp.port?).ok()?;
            Some(s.endpoints.iter().flatten().filter_map(move |e| {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                let ip: Ipv4Addr = e.addresses.first()?.parse().ok()?;
                ready.then_some(SocketAddr::from((ip, number)))
            }))
        })
        .flatten()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
