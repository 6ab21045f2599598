//! Compiling the index into a [`Snapshot`]: Services with their ready endpoints and policies,
//! each route's backends bound to their runtime state, splits, and access control.
//!
//! Nothing here touches a socket or the clock; the [`Binder`] only hands out (and keeps)
//! state by key, so that balancer, breaker, budget and metric state survive a rebuild.

use super::objects::{PodInfo, ServiceInfo, SliceInfo, TargetPort};
use super::{Key, Kind, Objects};
use crate::metrics::{BackendLabels, DstLabels};
use crate::pick::WeightedPicker;
use crate::policy::Policy;
use crate::snapshot::{
    BackendRuntime, Destination, Endpoint, EndpointMeta, PodMeta, PortEndpoints, Route,
    ServiceTarget, Snapshot, SplitBackendRoute, SplitRoute,
};
use crate::state::{Binder, EndpointState, Registry};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use weir_crds::model::{AccessPolicy, ServiceAccountRef};

/// A Service's ports and endpoints, before a route binds them.
struct BaseTarget {
    namespace: String,
    name: String,
    exists: bool,
    ports: Vec<BasePort>,
}

struct BasePort {
    name: String,
    port: u16,
    endpoints: Vec<(SocketAddr, Arc<EndpointMeta>, Arc<EndpointState>)>,
    destinations: Vec<Destination>,
}

/// Builds the snapshot of the index's current state.
pub(super) fn compile(objects: &Objects, registry: &mut Registry) -> Snapshot {
    let mut binder = registry.bind();
    let mut warnings = Vec::new();
    let pods_by_ip = pods_by_ip(objects, &mut binder);
    let metas = endpoint_metas(objects);
    let policies = service_policies(objects, &mut warnings);

    // Each Service's EndpointSlices, grouped once: a scan of every slice per Service made
    // a compile grow with the square of the number of Services.
    let mut slices_of: HashMap<(&str, &str), Vec<&SliceInfo>> = HashMap::new();
    for ((ns, _), slice) in &objects.slices {
        slices_of
            .entry((ns.as_str(), slice.service.as_str()))
            .or_default()
            .push(slice);
    }
    let mut bases: HashMap<Key, BaseTarget> = HashMap::new();
    for (key, svc) in &objects.services {
        let slices = slices_of
            .get(&(key.0.as_str(), key.1.as_str()))
            .map_or(&[][..], Vec::as_slice);
        bases.insert(
            key.clone(),
            base_target(objects, slices, key, svc, &metas, &mut binder),
        );
    }
    let missing = |(ns, name): &Key| BaseTarget {
        namespace: ns.clone(),
        name: name.clone(),
        exists: false,
        ports: Vec::new(),
    };
    let bind = |binder: &mut Binder<'_>, ns: &str, root: &str, backend: &str| {
        let key = (ns.to_string(), backend.to_string());
        let policy = policies
            .get(&key)
            .or_else(|| policies.get(&(ns.to_string(), root.to_string())))
            .cloned()
            .unwrap_or_default();
        match bases.get(&key) {
            Some(base) => bind_target(binder, base, root, policy),
            None => bind_target(binder, &missing(&key), root, policy),
        }
    };

    let mut routes: BTreeMap<String, BTreeMap<String, Route>> = BTreeMap::new();
    let mut service_keys: Vec<&Key> = objects.services.keys().collect();
    service_keys.sort();
    for (ns, name) in service_keys {
        let root = bind(&mut binder, ns, name, name);
        routes
            .entry(ns.clone())
            .or_default()
            .insert(name.clone(), Route { root, split: None });
    }

    // Oldest-first would need timestamps; name order is deterministic and documented.
    let mut splits: Vec<_> = objects.splits.iter().collect();
    splits.sort_by(|a, b| a.0.cmp(b.0));
    for ((ns, name), split) in splits {
        let root_name = &split.root_service;
        if !routes.get(ns).is_some_and(|r| r.contains_key(root_name)) {
            let root = bind(&mut binder, ns, root_name, root_name);
            routes
                .entry(ns.clone())
                .or_default()
                .insert(root_name.clone(), Route { root, split: None });
        }
        let Some(route) = routes.get_mut(ns).and_then(|r| r.get_mut(root_name)) else {
            continue;
        };
        if let Some(existing) = &route.split {
            warnings.push(format!(
                "TrafficSplit {ns}/{name} ignored: TrafficSplit {ns}/{} already splits Service {root_name}",
                existing.name
            ));
            continue;
        }
        let matches = split_matches(objects, ns, name, split, &mut warnings);
        let backends: Vec<SplitBackendRoute> = split
            .backends
            .iter()
            .map(|b| SplitBackendRoute {
                weight_millis: b.weight_millis,
                target: bind(&mut binder, ns, root_name, &b.service),
            })
            .collect();
        route.split = Some(SplitRoute {
            name: name.clone(),
            picker: WeightedPicker::new(backends.iter().map(|b| b.weight_millis)),
            backends,
            matches,
        });
    }

    let access = access_policy(objects);
    warnings.extend(access.warnings().iter().cloned());
    let unrouted = binder.unrouted();
    let unknown_source = binder.unknown_source();
    let live_pods: HashSet<Key> = objects.pods.keys().cloned().collect();
    binder.finish(&live_pods);
    Snapshot {
        generation: objects.generation,
        routes,
        pods_by_ip,
        traffic_targets: access.rules_in_force(),
        access,
        rejections: objects.rejections.values().cloned().collect(),
        warnings,
        unrouted,
        unknown_source,
    }
}

/// The matches that select requests for a split (v1alpha3+); `None` splits everything.
fn split_matches(
    objects: &Objects,
    ns: &str,
    name: &str,
    split: &weir_crds::model::Split,
    warnings: &mut Vec<String>,
) -> Option<Vec<weir_crds::model::HttpMatch>> {
    if split.matches.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for m in &split.matches {
        let key = (ns.to_string(), m.name.clone());
        match (m.kind.as_str(), objects.route_groups.get(&key)) {
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
}

/// Access control reads only objects that are valid now: a rejected TrafficTarget,
/// HTTPRouteGroup or TCPRoute never keeps granting access with its last good version.
fn access_policy(objects: &Objects) -> AccessPolicy {
    let valid = |kind: Kind, key: &Key| !objects.rejections.contains_key(&(kind, key.clone()));
    let mut target_keys: Vec<&Key> = objects.targets.keys().collect();
    target_keys.sort();
    let targets = target_keys
        .into_iter()
        .filter(|k| valid(Kind::TrafficTarget, k))
        .map(|k| objects.targets[k].clone());
    let http = objects
        .route_groups
        .iter()
        .filter(|(k, _)| valid(Kind::HttpRouteGroup, k))
        .map(|(_, g)| g.clone());
    let tcp = objects
        .tcp_routes
        .iter()
        .filter(|(k, _)| valid(Kind::TcpRoute, k))
        .map(|(_, r)| r.clone());
    AccessPolicy::new(targets, http, tcp)
}

/// Each Service's TrafficPolicy: the first by name of those that select it.
fn service_policies(objects: &Objects, warnings: &mut Vec<String>) -> HashMap<Key, Arc<Policy>> {
    let mut policies: Vec<_> = objects.policies.iter().collect();
    policies.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: HashMap<Key, Arc<Policy>> = HashMap::new();
    let mut resolved: HashMap<&Key, Arc<Policy>> = HashMap::new();
    for ((ns, name), svc) in &objects.services {
        let key = (ns.clone(), name.clone());
        let mut matching = policies
            .iter()
            .filter(|((pns, _), p)| pns == ns && p.target.selects(name, &svc.labels));
        let Some((pkey, first)) = matching.next() else {
            continue;
        };
        for ((_, other), _) in matching {
            warnings.push(format!(
                "TrafficPolicy {ns}/{other} ignored for Service {ns}/{name}: TrafficPolicy {ns}/{} already applies to it",
                pkey.1
            ));
        }
        let policy = resolved
            .entry(pkey)
            .or_insert_with(|| Arc::new(first.policy.clone()))
            .clone();
        out.insert(key, policy);
    }
    for ((ns, name), p) in &policies {
        if let super::policy::PolicyTarget::Name(target) = &p.target
            && !objects.services.contains_key(&(ns.clone(), target.clone()))
        {
            warnings.push(format!(
                "TrafficPolicy {ns}/{name}: Service {ns}/{target} not found; it applies to nothing"
            ));
        }
    }
    out
}

/// Binds a Service to a route: the policy, the metric handles of this (root, backend) pair.
fn bind_target(
    binder: &mut Binder<'_>,
    base: &BaseTarget,
    root: &str,
    policy: Arc<Policy>,
) -> Arc<ServiceTarget> {
    let namespace: Arc<str> = Arc::from(base.namespace.as_str());
    let service: Arc<str> = Arc::from(root);
    let backend: Arc<str> = Arc::from(base.name.as_str());
    let empty: Arc<str> = Arc::from("");
    let dst = |deployment: &str, pod: &str| DstLabels {
        namespace: namespace.clone(),
        service: service.clone(),
        backend: backend.clone(),
        dst_deployment: if deployment.is_empty() {
            empty.clone()
        } else {
            Arc::from(deployment)
        },
        dst_pod: if pod.is_empty() {
            empty.clone()
        } else {
            Arc::from(pod)
        },
    };
    let edges = binder.edge(dst("", ""));
    let counters = binder.backend(BackendLabels {
        namespace: namespace.clone(),
        service: service.clone(),
        backend: backend.clone(),
    });
    let budget = policy
        .retry
        .as_ref()
        .map(|r| binder.budget(policy.name.as_deref().unwrap_or_default(), &r.budget));
    let ports = base
        .ports
        .iter()
        .map(|p| PortEndpoints {
            name: p.name.clone(),
            port: p.port,
            endpoints: p
                .endpoints
                .iter()
                .map(|(addr, meta, state)| Endpoint {
                    addr: *addr,
                    meta: meta.clone(),
                    state: state.clone(),
                    edges: binder.edge(dst(&meta.deployment, &meta.pod)),
                })
                .collect(),
            destinations: p.destinations.clone(),
        })
        .collect();
    Arc::new(ServiceTarget {
        namespace: base.namespace.clone(),
        name: base.name.clone(),
        exists: base.exists,
        ports,
        policy,
        runtime: BackendRuntime {
            edges,
            counters,
            budget,
            cursor: AtomicUsize::new(0),
        },
    })
}

fn pods_by_ip(
    objects: &Objects,
    binder: &mut Binder<'_>,
) -> BTreeMap<std::net::IpAddr, Arc<PodMeta>> {
    let mut out = BTreeMap::new();
    for ((ns, name), pod) in &objects.pods {
        let meta = Arc::new(PodMeta {
            namespace: ns.clone(),
            name: name.clone(),
            service_account: pod.service_account.clone(),
            identity: ServiceAccountRef {
                namespace: ns.clone(),
                name: pod.service_account.clone(),
            },
            labels: binder.source(ns, name, &pod.service_account),
        });
        for ip in &pod.ips {
            out.insert(*ip, meta.clone());
        }
    }
    out
}

fn endpoint_metas(objects: &Objects) -> HashMap<Key, Arc<EndpointMeta>> {
    objects
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

fn base_target(
    objects: &Objects,
    slices: &[&SliceInfo],
    (ns, name): &Key,
    svc: &ServiceInfo,
    metas: &HashMap<Key, Arc<EndpointMeta>>,
    binder: &mut Binder<'_>,
) -> BaseTarget {
    let unknown = Arc::new(EndpointMeta::default());
    let ports = svc
        .ports
        .iter()
        .map(|port| {
            let mut endpoints: BTreeMap<SocketAddr, Arc<EndpointMeta>> = BTreeMap::new();
            for slice in slices {
                for e in slice.endpoints.iter().filter(|e| e.ready) {
                    let pod_key = e.pod.as_ref().map(|p| (ns.clone(), p.clone()));
                    let pod: Option<&PodInfo> = pod_key.as_ref().and_then(|k| objects.pods.get(k));
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
                        endpoints
                            .entry(SocketAddr::new(*ip, number))
                            .or_insert_with(|| meta.clone());
                    }
                }
            }
            let destinations: BTreeSet<Destination> = endpoints
                .iter()
                .map(|(addr, meta)| Destination {
                    service_account: (!meta.service_account.is_empty()).then(|| {
                        ServiceAccountRef {
                            namespace: ns.clone(),
                            name: meta.service_account.clone(),
                        }
                    }),
                    port: addr.port(),
                })
                .collect();
            BasePort {
                name: port.name.clone(),
                port: port.port,
                endpoints: endpoints
                    .into_iter()
                    .map(|(addr, meta)| {
                        let state = binder.endpoint(addr, &meta.pod);
                        (addr, meta, state)
                    })
                    .collect(),
                destinations: destinations.into_iter().collect(),
            }
        })
        .collect();
    BaseTarget {
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
