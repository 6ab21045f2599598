//! The config index: synchronous state fed by `apply` / `delete` / `reset` per kind, which
//! compiles into a [`Snapshot`]. Each object is decoded alone; an invalid one is rejected
//! (and listed in the snapshot) while the last good version of it stays in use.

mod compile;
pub mod objects;

use crate::error::RejectError;
use crate::snapshot::{Rejection, Snapshot};
use objects::{PodInfo, ServiceInfo, SliceInfo};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use weir_crds::model::{self, HttpRouteGroup, ObjectId, SmiObject, Split};

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
}

/// `(namespace, name)`.
pub type Key = (String, String);

/// The state of every watched object, by kind.
#[derive(Debug, Default)]
pub struct Index {
    default_namespace: String,
    services: HashMap<Key, ServiceInfo>,
    slices: HashMap<Key, SliceInfo>,
    pods: HashMap<Key, PodInfo>,
    splits: HashMap<Key, Split>,
    route_groups: HashMap<Key, HttpRouteGroup>,
    rejections: BTreeMap<(Kind, Key), Rejection>,
    generation: u64,
}

// === impl Kind ===

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 5] = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Pod,
        Kind::TrafficSplit,
        Kind::HttpRouteGroup,
    ];

    /// The Kubernetes `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Pod => "Pod",
            Kind::TrafficSplit => "TrafficSplit",
            Kind::HttpRouteGroup => "HTTPRouteGroup",
        }
    }

    /// The `apiVersion` to assume when an object comes without one.
    pub fn default_api_version(self) -> &'static str {
        match self {
            Kind::Service | Kind::Pod => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::TrafficSplit => "split.smi-spec.io/v1alpha4",
            Kind::HttpRouteGroup => "specs.smi-spec.io/v1alpha4",
        }
    }
}

// === impl Index ===

impl Index {
    /// An empty index; objects without a namespace go to `default_namespace`.
    pub fn new(default_namespace: impl Into<String>) -> Self {
        Self {
            default_namespace: default_namespace.into(),
            ..Self::default()
        }
    }

    /// Adds or replaces one object; on error the previous version (if any) stays.
    pub fn apply(&mut self, kind: Kind, object: &Value) -> Result<(), RejectError> {
        let id = self.id(kind, object);
        let key = (id.namespace.clone(), id.name.clone());
        match self.decode_into(kind, &id, object) {
            Ok(()) => {
                self.rejections.remove(&(kind, key));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(object = %id, error = %error_chain(&e), "rejected invalid object; keeping its last good version");
                self.rejections.insert(
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
            Kind::Service => drop(self.services.remove(&key)),
            Kind::EndpointSlice => drop(self.slices.remove(&key)),
            Kind::Pod => drop(self.pods.remove(&key)),
            Kind::TrafficSplit => drop(self.splits.remove(&key)),
            Kind::HttpRouteGroup => drop(self.route_groups.remove(&key)),
        }
        self.rejections.remove(&(kind, key));
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
            Kind::Service => self.services.retain(|k, _| keep.contains(k)),
            Kind::EndpointSlice => self.slices.retain(|k, _| keep.contains(k)),
            Kind::Pod => self.pods.retain(|k, _| keep.contains(k)),
            Kind::TrafficSplit => self.splits.retain(|k, _| keep.contains(k)),
            Kind::HttpRouteGroup => self.route_groups.retain(|k, _| keep.contains(k)),
        }
        self.rejections
            .retain(|(k, key), _| *k != kind || keep.contains(key));
        objects
            .iter()
            .filter(|o| self.apply(kind, o).is_err())
            .count()
    }

    /// How many objects are rejected now.
    pub fn rejected(&self) -> usize {
        self.rejections.len()
    }

    /// Compiles the current state into a new snapshot with the next generation.
    pub fn snapshot(&mut self) -> Snapshot {
        self.generation += 1;
        compile::compile(self)
    }

    fn id(&self, kind: Kind, object: &Value) -> ObjectId {
        let mut id = model::object_id(object, &self.default_namespace);
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
            Kind::Service => drop(self.services.insert(key, ServiceInfo::decode(id, object)?)),
            Kind::EndpointSlice => drop(self.slices.insert(key, SliceInfo::decode(id, object)?)),
            Kind::Pod => drop(self.pods.insert(key, PodInfo::decode(id, object)?)),
            Kind::TrafficSplit | Kind::HttpRouteGroup => {
                let object = with_type_meta(kind, object);
                let smi = model::normalise(&object, &self.default_namespace)
                    .map_err(|source| RejectError::Smi { source })?;
                match smi {
                    SmiObject::Split(s) => drop(self.splits.insert(key, s)),
                    SmiObject::HttpRouteGroup(g) => drop(self.route_groups.insert(key, g)),
                    _ => {
                        return Err(RejectError::Invalid {
                            id: id.clone(),
                            reason: "unexpected SMI kind".into(),
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
