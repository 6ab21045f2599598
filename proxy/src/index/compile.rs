//! Compiling the index into a [`Snapshot`]: Services with their ready endpoints, then splits.

use super::objects::{PodInfo, ServiceInfo, TargetPort};
use super::{Index, Key};
use crate::pick::WeightedPicker;
use crate::snapshot::{
    Endpoint, EndpointMeta, PodMeta, PortEndpoints, Route, ServiceTarget, Snapshot,
    SplitBackendRoute, SplitRoute,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

/// Builds the snapshot of the index's current state.
pub(super) fn compile(index: &Index) -> Snapshot {
    let mut warnings = Vec::new();
    let pods_by_ip = pods_by_ip(index);
    let metas = endpoint_metas(index);

    let mut targets: HashMap<Key, Arc<ServiceTarget>> = HashMap::new();
    for (key, svc) in &index.services {
        targets.insert(
            key.clone(),
            Arc::new(service_target(index, key, svc, &metas)),
        );
    }
    let target = |ns: &str, name: &str| -> Arc<ServiceTarget> {
        targets
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| {
                Arc::new(ServiceTarget {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    exists: false,
                    ports: Vec::new(),
                })
            })
    };

    let mut routes: BTreeMap<String, BTreeMap<String, Route>> = BTreeMap::new();
    for ((ns, name), t) in &targets {
        routes.entry(ns.clone()).or_default().insert(
            name.clone(),
            Route {
                root: t.clone(),
                split: None,
            },
        );
    }

    // Oldest-first would need timestamps; name order is deterministic and documented.
    let mut splits: Vec<_> = index.splits.iter().collect();
    splits.sort_by(|a, b| a.0.cmp(b.0));
    for ((ns, name), split) in splits {
        let route = routes
            .entry(ns.clone())
            .or_default()
            .entry(split.root_service.clone())
            .or_insert_with(|| Route {
                root: target(ns, &split.root_service),
                split: None,
            });
        if let Some(existing) = &route.split {
            warnings.push(format!(
                "TrafficSplit {ns}/{name} ignored: TrafficSplit {ns}/{} already splits Service {}",
                existing.name, split.root_service
            ));
            continue;
        }
        let matches = if split.matches.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            for m in &split.matches {
                match (m.kind.as_str(), index.route_groups.get(&(ns.clone(), m.name.clone()))) {
                    ("HTTPRouteGroup", Some(group)) => all.extend(group.matches.iter().cloned()),
                    ("HTTPRouteGroup", None) => warnings.push(format!(
                        "TrafficSplit {ns}/{name}: HTTPRouteGroup {ns}/{} not found; it matches nothing",
                        m.name
                    )),
                    (kind, _) => warnings.push(format!(
                        "TrafficSplit {ns}/{name}: {kind} {} does not apply to HTTP; it matches nothing",
                        m.name
                    )),
                }
            }
            Some(all)
        };
        let backends: Vec<SplitBackendRoute> = split
            .backends
            .iter()
            .map(|b| SplitBackendRoute {
                weight_millis: b.weight_millis,
                target: target(ns, &b.service),
            })
            .collect();
        route.split = Some(SplitRoute {
            name: name.clone(),
            picker: WeightedPicker::new(backends.iter().map(|b| b.weight_millis)),
            backends,
            matches,
        });
    }

    Snapshot {
        generation: index.generation,
        routes,
        pods_by_ip,
        rejections: index.rejections.values().cloned().collect(),
        warnings,
    }
}

fn pods_by_ip(index: &Index) -> BTreeMap<std::net::IpAddr, Arc<PodMeta>> {
    let mut out = BTreeMap::new();
    for ((ns, name), pod) in &index.pods {
        let meta = Arc::new(PodMeta {
            namespace: ns.clone(),
            name: name.clone(),
            service_account: pod.service_account.clone(),
        });
        for ip in &pod.ips {
            out.insert(*ip, meta.clone());
        }
    }
    out
}

fn endpoint_metas(index: &Index) -> HashMap<Key, Arc<EndpointMeta>> {
    index
        .pods
        .iter()
        .map(|((ns, name), pod)| {
            let meta = EndpointMeta {
                pod: name.clone(),
                deployment: pod.deployment.clone().unwrap_or_default(),
                service_account: pod.service_account.clone(),
            };
            ((ns.clone(), name.clone()), Arc::new(meta))
        })
        .collect()
}

fn service_target(
    index: &Index,
    (ns, name): &Key,
    svc: &ServiceInfo,
    metas: &HashMap<Key, Arc<EndpointMeta>>,
) -> ServiceTarget {
    let slices: Vec<_> = index
        .slices
        .iter()
        .filter(|((slice_ns, _), s)| slice_ns == ns && s.service == *name)
        .map(|(_, s)| s)
        .collect();
    let unknown = Arc::new(EndpointMeta::default());
    let ports = svc
        .ports
        .iter()
        .map(|port| {
            let mut endpoints: Vec<Endpoint> = Vec::new();
            for slice in &slices {
                for e in slice.endpoints.iter().filter(|e| e.ready) {
                    let pod_key = e.pod.as_ref().map(|p| (ns.clone(), p.clone()));
                    let pod: Option<&PodInfo> = pod_key.as_ref().and_then(|k| index.pods.get(k));
                    let Some(number) = slice
                        .port(&port.name)
                        .or_else(|| resolve_target(&port.target, pod))
                    else {
                        continue;
                    };
                    let meta = match (&pod_key, &e.pod) {
                        (Some(k), _) if metas.contains_key(k) => metas[k].clone(),
                        (_, Some(p)) => Arc::new(EndpointMeta {
                            pod: p.clone(),
                            ..EndpointMeta::default()
                        }),
                        _ => unknown.clone(),
                    };
                    for ip in &e.addresses {
                        endpoints.push(Endpoint {
                            addr: SocketAddr::new(*ip, number),
                            meta: meta.clone(),
                        });
                    }
                }
            }
            endpoints.sort_by_key(|e| e.addr);
            endpoints.dedup_by_key(|e| e.addr);
            PortEndpoints {
                name: port.name.clone(),
                port: port.port,
                addrs: endpoints.iter().map(|e| e.addr).collect(),
                endpoints,
            }
        })
        .collect();
    ServiceTarget {
        namespace: ns.clone(),
        name: name.clone(),
        exists: true,
        ports,
    }
}

/// A target port when the slice lists none: the number, or the Pod's named container port.
fn resolve_target(target: &TargetPort, pod: Option<&PodInfo>) -> Option<u16> {
    match target {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Name(name) => pod.and_then(|p| p.named_ports.get(name).copied()),
    }
}
