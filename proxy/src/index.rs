//! The config index: synchronous state fed by `apply` / `delete` / `reset` per kind, which
//! compiles into a [`Snapshot`]. Each object is decoded alone; an invalid one is rejected
//! (and listed in the snapshot) while the last good version of it stays in use.

mod compile;
pub mod objects;
pub mod policy;

use crate::error::RejectError;
use crate::metrics::Metrics;
use crate::snapshot::{Rejection, Snapshot};
use crate::state::Registry;
use objects::{PodInfo, ServiceInfo, SliceInfo};
use policy::PolicyInfo;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use weir_crds::model::{self, HttpRouteGroup, ObjectId, SmiObject, Split, TcpRoute, TrafficTarget};

/// The kinds the index keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// core/v1 Service.
    Service,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice,
    /// core/v1 Pod.
    Pod,
    /// split.smi-spec.io TrafficSplit, any version.
    TrafficSplit,
    /// specs.smi-spec.io HTTPRouteGroup, any version.
    HttpRouteGroup,
    /// specs.smi-spec.io TCPRoute, any version.
    TcpRoute,
    /// access.smi-spec.io TrafficTarget, any version.
    TrafficTarget,
    /// weir.dev/v1alpha1 TrafficPolicy.
    TrafficPolicy,
}

/// `(namespace, name)`.
pub type Key = (String, String);

/// The state of every watched object, by kind, and the runtime state snapshots hand out.
#[derive(Debug)]
pub struct Index {
    objects: Objects,
    registry: Registry,
}

/// The decoded objects of every kind.
#[derive(Debug, Default)]
struct Objects {
    default_namespace: String,
    services: HashMap<Key, ServiceInfo>,
    slices: HashMap<Key, SliceInfo>,
    pods: HashMap<Key, PodInfo>,
    splits: HashMap<Key, Split>,
    route_groups: HashMap<Key, HttpRouteGroup>,
    tcp_routes: HashMap<Key, TcpRoute>,
    targets: HashMap<Key, TrafficTarget>,
    policies: HashMap<Key, PolicyInfo>,
    rejections: BTreeMap<(Kind, Key), Rejection>,
    generation: u64,
}

// === impl Kind ===

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 8] = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Pod,
        Kind::TrafficSplit,
        Kind::HttpRouteGroup,
        Kind::TcpRoute,
        Kind::TrafficTarget,
        Kind::TrafficPolicy,
    ];

    /// The Kubernetes `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Pod => "Pod",
            Kind::TrafficSplit => "TrafficSplit",
            Kind::HttpRouteGroup => "HTTPRouteGroup",
            Kind::TcpRoute => "TCPRoute",
            Kind::TrafficTarget => "TrafficTarget",
            Kind::TrafficPolicy => "TrafficPolicy",
        }
    }

    /// Whether access control reads this kind (its rejected objects then allow nothing).
    pub fn is_access(self) -> bool {
        matches!(
            self,
            Kind::HttpRouteGroup | Kind::TcpRoute | Kind::TrafficTarget
        )
    }

    /// The `apiVersion` to assume when an object comes without one.
    pub fn default_api_version(self) -> &'static str {
        match self {
            Kind::Service | Kind::Pod => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::TrafficSplit => "split.smi-spec.io/v1alpha4",
            Kind::HttpRouteGroup | Kind::TcpRoute => "specs.smi-spec.io/v1alpha4",
            Kind::TrafficTarget => "access.smi-spec.io/v1alpha3",
            Kind::TrafficPolicy => "weir.dev/v1alpha1",
        }
    }
}

// === impl Index ===

impl Index {
    /// An empty index; objects without a namespace go to `default_namespace`.
    pub fn new(default_namespace: impl Into<String>) -> Self {
        Self::with_metrics(default_namespace, Arc::new(Metrics::default()))
    }

    /// An empty index whose snapshots record into `metrics`.
    pub fn with_metrics(default_namespace: impl Into<String>, metrics: Arc<Metrics>) -> Self {
        Self {
            objects: Objects {
                default_namespace: default_namespace.into(),
                ..Objects::default()
            },
            registry: Registry::new(metrics),
        }
    }

    /// Adds or replaces one object; on error the previous version (if any) stays.
    pub fn apply(&mut self, kind: Kind, object: &Value) -> Result<(), RejectError> {
        let id = self.id(kind, object);
        let key = (id.namespace.clone(), id.name.clone());
        match self.decode_into(kind, &id, object) {
            Ok(()) => {
                self.objects.rejections.remove(&(kind, key));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(object = %id, error = %error_chain(&e), "rejected invalid object; keeping its last good version");
                self.objects.rejections.insert(
                    (kind, key),
                    Rejection {
                        kind: kind.as_str().to_string(),
                        namespace: id.namespace,
                        name: id.name,
                        reason: error_chain(&e),
                    },
                );
                Err(e)
            }
        }
    }

    /// Removes one object.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        match kind {
            Kind::Service => drop(self.objects.services.remove(&key)),
            Kind::EndpointSlice => drop(self.objects.slices.remove(&key)),
            Kind::Pod => drop(self.objects.pods.remove(&key)),
            Kind::TrafficSplit => drop(self.objects.splits.remove(&key)),
            Kind::HttpRouteGroup => drop(self.objects.route_groups.remove(&key)),
            Kind::TcpRoute => drop(self.objects.tcp_routes.remove(&key)),
            Kind::TrafficTarget => drop(self.objects.targets.remove(&key)),
            Kind::TrafficPolicy => drop(self.objects.policies.remove(&key)),
        }
        self.objects.rejections.remove(&(kind, key));
    }

    /// Replaces every object of `kind` with `objects`; returns how many were rejected.
    ///
    /// An object that is rejected but had a good version before keeps that version.
    pub fn reset(&mut self, kind: Kind, objects: &[Value]) -> usize {
        let keep: Vec<Key> = objects
            .iter()
            .map(|o| {
                let id = self.id(kind, o);
                (id.namespace, id.name)
            })
            .collect();
        let keep: std::collections::HashSet<Key> = keep.into_iter().collect();
        match kind {
            Kind::Service => self.objects.services.retain(|k, _| keep.contains(k)),
            Kind::EndpointSlice => self.objects.slices.retain(|k, _| keep.contains(k)),
            Kind::Pod => self.objects.pods.retain(|k, _| keep.contains(k)),
            Kind::TrafficSplit => self.objects.splits.retain(|k, _| keep.contains(k)),
            Kind::HttpRouteGroup => self.objects.route_groups.retain(|k, _| keep.contains(k)),
            Kind::TcpRoute => self.objects.tcp_routes.retain(|k, _| keep.contains(k)),
            Kind::TrafficTarget => self.objects.targets.retain(|k, _| keep.contains(k)),
            Kind::TrafficPolicy => self.objects.policies.retain(|k, _| keep.contains(k)),
        }
        self.objects
            .rejections
            .retain(|(k, key), _| *k != kind || keep.contains(key));
        objects
            .iter()
            .filter(|o| self.apply(kind, o).is_err())
            .count()
    }

    /// How many objects are rejected now.
    pub fn rejected(&self) -> usize {
        self.objects.rejections.len()
    }

    /// Compiles the current state into a new snapshot with the next generation.
    pub fn snapshot(&mut self) -> Snapshot {
        self.objects.generation += 1;
        compile::compile(&self.objects, &mut self.registry)
    }

    fn id(&self, kind: Kind, object: &Value) -> ObjectId {
        let mut id = model::object_id(object, &self.objects.default_namespace);
        id.kind = kind.as_str().to_string();
        id
    }

    fn decode_into(
        &mut self,
        kind: Kind,
        id: &ObjectId,
        object: &Value,
    ) -> Result<(), RejectError> {
        let key = (id.namespace.clone(), id.name.clone());
        if id.name.is_empty() {
            return Err(RejectError::Invalid {
                id: id.clone(),
                reason: "metadata.name is required".into(),
            });
        }
        match kind {
            Kind::Service => drop(
                self.objects
                    .services
                    .insert(key, ServiceInfo::decode(id, object)?),
            ),
            Kind::EndpointSlice => drop(
                self.objects
                    .slices
                    .insert(key, SliceInfo::decode(id, object)?),
            ),
            Kind::Pod => drop(self.objects.pods.insert(key, PodInfo::decode(id, object)?)),
            Kind::TrafficPolicy => drop(
                self.objects
                    .policies
                    .insert(key, PolicyInfo::decode(id, object)?),
            ),
            Kind::TrafficSplit | Kind::HttpRouteGroup | Kind::TcpRoute | Kind::TrafficTarget => {
                let object = with_type_meta(kind, object);
                let smi = model::normalise(&object, &self.objects.default_namespace)
                    .map_err(|source| RejectError::Smi { source })?;
                match (kind, smi) {
                    (Kind::TrafficSplit, SmiObject::Split(s)) => {
                        drop(self.objects.splits.insert(key, s))
                    }
                    (Kind::HttpRouteGroup, SmiObject::HttpRouteGroup(g)) => {
                        drop(self.objects.route_groups.insert(key, g))
                    }
                    (Kind::TcpRoute, SmiObject::TcpRoute(r)) => {
                        drop(self.objects.tcp_routes.insert(key, r))
                    }
                    (Kind::TrafficTarget, SmiObject::TrafficTarget(t)) => {
                        drop(self.objects.targets.insert(key, t))
                    }
                    (_, other) => {
                        return Err(RejectError::Invalid {
                            id: id.clone(),
                            reason: format!("decoded as another SMI kind: {other:?}"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Fills in `apiVersion` and `kind` when a watch delivered an object without them.
fn with_type_meta(kind: Kind, object: &Value) -> std::borrow::Cow<'_, Value> {
    let has = |f: &str| {
        object
            .get(f)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if has("apiVersion") && has("kind") {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut owned = object.clone();
    if let Value::Object(map) = &mut owned {
        map.entry("apiVersion")
            .or_insert_with(|| Value::from(kind.default_api_version()));
        map.entry("kind")
            .or_insert_with(|| Value::from(kind.as_str()));
    }
    std::borrow::Cow::Owned(owned)
}

/// An error and its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
#[path = "index/tests.rs"]
mod tests;
