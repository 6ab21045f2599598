//! The compiled, immutable route table one request reads.
//!
//! ```text
//!  host ─► Route (root Service) ─► SplitRoute? ─► weighted pick ─► ServiceTarget ─► port ─► endpoints
//!                                   │ matches miss
//!                                   └──────────────────────────► the root Service itself
//! ```
//!
//! [`Snapshot::decide`] is pure: the randomness is an argument and nothing touches a socket.
//! Each route's backends carry what the data path needs already resolved (their
//! [`Policy`], metric handles and endpoint state), so a request looks nothing up by name.

use crate::error::ProxyError;
use crate::host::HostKey;
use crate::metrics::{BackendCounters, EdgeSet, SrcLabels};
use crate::pick::WeightedPicker;
use crate::policy::Policy;
use crate::state::EndpointState;
use http::HeaderMap;
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tower::retry::budget::TpsBudget;
use weir_crds::model::{AccessPolicy, HttpMatch, ServiceAccountRef};

/// The compiled configuration; a new one replaces the old atomically.
#[derive(Debug, Default, Serialize)]
pub struct Snapshot {
    /// Increases with each snapshot; 0 means "no config yet".
    pub generation: u64,
    /// Routes by namespace, then root Service name.
    pub routes: BTreeMap<String, BTreeMap<String, Route>>,
    /// Pods by IP, for the source identity of clients.
    pub pods_by_ip: BTreeMap<IpAddr, Arc<PodMeta>>,
    /// Every TrafficTarget with its route groups, for access decisions.
    #[serde(skip)]
    pub access: AccessPolicy,
    /// Each TrafficTarget (`namespace/name`) in force with its number of rules in force, as
    /// the admin config dump shows it.
    pub traffic_targets: BTreeMap<String, usize>,
    /// Objects rejected as invalid; the last good version of each stays in use (but never
    /// for access control: a rejected TrafficTarget, HTTPRouteGroup or TCPRoute allows nothing).
    pub rejections: Vec<Rejection>,
    /// Things that work but probably are not what was meant.
    pub warnings: Vec<String>,
    /// The series of requests answered before routing.
    #[serde(skip)]
    pub unrouted: Arc<EdgeSet>,
    /// The source labels of clients that are not known Pods.
    #[serde(skip)]
    pub unknown_source: Arc<SrcLabels>,
}

/// An object that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The object's kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The reason, with causes.
    pub reason: String,
}

/// Who a Pod is, for source identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodMeta {
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub name: String,
    /// Its ServiceAccount.
    pub service_account: String,
    /// Its ServiceAccount, as access control names it.
    #[serde(skip)]
    pub identity: ServiceAccountRef,
    /// Its labels on the request series.
    #[serde(skip)]
    pub labels: Arc<SrcLabels>,
}

/// Everything addressed to one root Service.
#[derive(Debug, Serialize)]
pub struct Route {
    /// The root Service (which may not exist when only a split names it).
    pub root: Arc<ServiceTarget>,
    /// The TrafficSplit of this root Service, if any.
    pub split: Option<SplitRoute>,
}

/// A Service as one route reaches it: its ready endpoints per port, its policy, and the
/// runtime handles of this (root, backend) pair.
#[derive(Debug, Serialize)]
pub struct ServiceTarget {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Whether the Service object exists.
    pub exists: bool,
    /// Its ports, in declaration order.
    pub ports: Vec<PortEndpoints>,
    /// Its resilience settings (its own TrafficPolicy, else the root Service's).
    pub policy: Arc<Policy>,
    /// Metric handles, retry budget and round-robin cursor.
    #[serde(skip)]
    pub runtime: BackendRuntime,
}

/// The runtime handles of one route backend, resolved when the snapshot is built.
#[derive(Debug)]
pub struct BackendRuntime {
    /// The series of requests that reached no endpoint.
    pub edges: Arc<EdgeSet>,
    /// Denials, retries, timeouts and faults.
    pub counters: BackendCounters,
    /// The retry budget, when the policy retries.
    pub budget: Option<Arc<TpsBudget>>,
    /// The round-robin position.
    pub cursor: AtomicUsize,
}

/// The ready endpoints behind one Service port.
#[derive(Debug, Serialize)]
pub struct PortEndpoints {
    /// The Service port's name (empty when unnamed).
    pub name: String,
    /// The Service port number.
    pub port: u16,
    /// Ready endpoints, sorted by address.
    pub endpoints: Vec<Endpoint>,
    /// The distinct identities behind the endpoints, for access control.
    pub destinations: Vec<Destination>,
}

/// An identity behind some endpoints of a port: a request must be allowed to reach each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Destination {
    /// The Pods' ServiceAccount; `None` when an endpoint's Pod is unknown.
    pub service_account: Option<ServiceAccountRef>,
    /// The endpoint port.
    pub port: u16,
}

/// One ready endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Who is behind it.
    pub meta: Arc<EndpointMeta>,
    /// Its balancer and breaker state (shared by every route that reaches it).
    #[serde(skip)]
    pub state: Arc<EndpointState>,
    /// The series of requests this route sends to it.
    #[serde(skip)]
    pub edges: Arc<EdgeSet>,
}

/// Who is behind an endpoint (empty strings when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointMeta {
    /// The Pod's name.
    pub pod: String,
    /// The Deployment that owns the Pod.
    pub deployment: String,
    /// The Pod's ServiceAccount.
    pub service_account: String,
}

/// A compiled TrafficSplit.
#[derive(Debug, Serialize)]
pub struct SplitRoute {
    /// The TrafficSplit's name.
    pub name: String,
    /// The backends in the split's order.
    pub backends: Vec<SplitBackendRoute>,
    /// The weighted choice over `backends`.
    pub picker: WeightedPicker,
    /// When set, only requests matching one of these are split; the rest go to the root.
    pub matches: Option<Vec<HttpMatch>>,
}

/// One backend of a compiled split.
#[derive(Debug, Serialize)]
pub struct SplitBackendRoute {
    /// The relative weight in milli-units.
    pub weight_millis: u64,
    /// The backend Service.
    pub target: Arc<ServiceTarget>,
}

/// What the route table needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
}

/// Where a request goes: the route, the chosen backend and its port.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'s> {
    /// The root Service's route.
    pub route: &'s Route,
    /// The chosen backend (the root itself when not split).
    pub backend: &'s Arc<ServiceTarget>,
    /// The index of the backend port in `backend.ports`; it has endpoints.
    pub port_index: usize,
    /// The backend port, with its endpoints (non-empty).
    pub port: &'s PortEndpoints,
}

// === impl Snapshot ===

impl Snapshot {
    /// Whether this snapshot came from a source (rather than being the empty start value).
    pub fn is_ready(&self) -> bool {
        self.generation > 0
    }

    /// The route of a root Service.
    pub fn route(&self, namespace: &str, service: &str) -> Option<&Route> {
        self.routes.get(namespace)?.get(service)
    }

    /// The Pod with this IP, if known.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&Arc<PodMeta>> {
        self.pods_by_ip.get(&ip)
    }

    /// Routes a request: host → root → split (when it matches) → weighted backend → port.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use rand::SeedableRng;
    /// use serde_json::json;
    /// use weir_proxy::host::parse_host;
    /// use weir_proxy::index::{Index, Kind};
    /// use weir_proxy::snapshot::RequestInfo;
    ///
    /// let mut index = Index::new("shop");
    /// for name in ["web", "web-v1", "web-v2"] {
    ///     let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
    ///                      "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    ///     index.apply(Kind::Service, &svc).unwrap();
    /// }
    /// let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    ///     "metadata": {"name": "web-v2-a", "labels": {"kubernetes.io/service-name": "web-v2"}},
    ///     "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.2"]}]});
    /// index.apply(Kind::EndpointSlice, &slice).unwrap();
    /// let split = json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
    ///     "metadata": {"name": "web"},
    ///     "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 0},
    ///                                             {"service": "web-v2", "weight": 100}]}});
    /// index.apply(Kind::TrafficSplit, &split).unwrap();
    /// let snapshot = index.snapshot();
    ///
    /// let headers = HeaderMap::new();
    /// let req = RequestInfo { method: "GET", path: "/", headers: &headers };
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// let host = parse_host("web.shop.svc.cluster.local", "shop").unwrap();
    /// let decision = snapshot.decide(&host, "web", req, &mut rng).unwrap();
    /// assert_eq!(decision.backend.name, "web-v2");
    /// assert_eq!(decision.port.endpoints[0].addr.to_string(), "10.0.0.2:8080");
    ///
    /// // An unknown Service is refused with the error the client gets (a 404).
    /// let host = parse_host("nope", "shop").unwrap();
    /// let refused = snapshot.decide(&host, "nope", req, &mut rng).unwrap_err();
    /// assert_eq!(refused.error.status(), http::StatusCode::NOT_FOUND);
    /// ```
    pub fn decide<'s, R: Rng + ?Sized>(
        &'s self,
        host: &HostKey<'_>,
        raw_host: &str,
        req: RequestInfo<'_>,
        rng: &mut R,
    ) -> Result<Decision<'s>, Undecided<'s>> {
        let undecided = |error| Undecided {
            error,
            backend: None,
        };
        let route = self.route(&host.namespace, &host.service).ok_or_else(|| {
            undecided(ProxyError::UnknownHost {
                host: raw_host.to_string(),
                namespace: host.namespace.to_string(),
                service: host.service.to_string(),
            })
        })?;
        let root_port = route.root.port_for(host.port);
        let want = root_port.map(|p| p.port).or(host.port);
        let backend: &Arc<ServiceTarget> = match &route.split {
            Some(split) if split.applies_to(req) => {
                let i = split.picker.pick(rng).ok_or_else(|| {
                    undecided(ProxyError::AllWeightsZero {
                        namespace: host.namespace.to_string(),
                        split: split.name.clone(),
                    })
                })?;
                let chosen = &split.backends[i].target;
                if chosen.serves(want) {
                    chosen
                } else {
                    spill(split, want, rng).unwrap_or(chosen)
                }
            }
            _ => &route.root,
        };
        let (port_index, port) = backend
            .port_index_for(want)
            .map(|i| (i, &backend.ports[i]))
            .filter(|(_, p)| !p.endpoints.is_empty())
            .ok_or_else(|| Undecided {
                error: ProxyError::NoEndpoints {
                    namespace: backend.namespace.clone(),
                    service: backend.name.clone(),
                    detail: if backend.exists {
                        ""
                    } else {
                        " (no such Service)"
                    },
                },
                backend: Some(backend),
            })?;
        Ok(Decision {
            route,
            backend,
            port_index,
            port,
        })
    }
}

/// Why a request could not be routed, and the backend it was meant for when one was chosen.
#[derive(Debug)]
pub struct Undecided<'s> {
    /// The error the client gets.
    pub error: ProxyError,
    /// The chosen backend, when the failure came after choosing it.
    pub backend: Option<&'s Arc<ServiceTarget>>,
}

// === impl SplitRoute ===

impl SplitRoute {
    /// Whether a request goes through the split (always, unless `matches` says otherwise).
    pub fn applies_to(&self, req: RequestInfo<'_>) -> bool {
        let Some(matches) = &self.matches else {
            return true;
        };
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        matches
            .iter()
            .any(|m| m.matches(req.method, req.path, header))
    }
}

// === impl ServiceTarget ===

impl ServiceTarget {
    /// The port numbered `want`, or else the first port.
    pub fn port_for(&self, want: Option<u16>) -> Option<&PortEndpoints> {
        self.port_index_for(want).map(|i| &self.ports[i])
    }

    /// The index of the port numbered `want`, or else of the first port.
    pub fn port_index_for(&self, want: Option<u16>) -> Option<usize> {
        want.and_then(|w| self.ports.iter().position(|p| p.port == w))
            .or(if self.ports.is_empty() { None } else { Some(0) })
    }

    /// Whether the port a request wants has a ready endpoint.
    pub fn serves(&self, want: Option<u16>) -> bool {
        self.port_index_for(want)
            .is_some_and(|i| !self.ports[i].endpoints.is_empty())
    }
}

/// The share of a split backend without ready endpoints (a canary whose ready pods the
/// gateway has not seen yet) goes to the backends of the split that have them, in
/// proportion to their weights; `None` when no backend with weight has any.
fn spill<'s, R: Rng + ?Sized>(
    split: &'s SplitRoute,
    want: Option<u16>,
    rng: &mut R,
) -> Option<&'s Arc<ServiceTarget>> {
    let live: Vec<&SplitBackendRoute> = split
        .backends
        .iter()
        .filter(|b| b.weight_millis > 0 && b.target.serves(want))
        .collect();
    let picker = WeightedPicker::new(live.iter().map(|b| b.weight_millis));
    picker.pick(rng).map(|j| &live[j].target)
}

#[cfg(test)]
#[path = "snapshot/tests.rs"]
mod tests;
