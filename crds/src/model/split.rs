//! The normalised TrafficSplit.

use super::{NormaliseError, ObjectId, field, invalid};
use crate::quantity::weight_millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A TrafficSplit of any version, with weights in milli-units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    /// The object this came from.
    pub id: ObjectId,
    /// The root service whose traffic is split.
    pub root_service: String,
    /// The backends in the order written.
    pub backends: Vec<SplitBackend>,
    /// Route groups selecting the requests that are split; all requests when empty.
    pub matches: Vec<RouteGroupRef>,
}

/// One backend of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitBackend {
    /// The backend Service's name.
    pub service: String,
    /// The relative weight in milli-units (see [`crate::quantity`]).
    pub weight_millis: u64,
}

/// A reference from a split to a route group in its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteGroupRef {
    /// `HTTPRouteGroup` (or `TCPRoute`).
    pub kind: String,
    /// The route group's name.
    pub name: String,
}

#[derive(Deserialize)]
struct SpecWire {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    backends: Option<Vec<BackendWire>>,
    #[serde(default)]
    matches: Vec<RouteGroupRef>,
}

#[derive(Deserialize)]
struct BackendWire {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    weight: Option<Value>,
}

// === impl Split ===

impl Split {
    /// Normalises a TrafficSplit's JSON (any version).
    pub fn normalise(object: &Value, id: ObjectId) -> Result<Self, NormaliseError> {
        let raw = object.get("spec").filter(|s| !s.is_null());
        let raw =
            raw.ok_or_else(|| invalid(&id, "spec", "required: the service and its backends"))?;
        let spec: SpecWire = field(&id, Some(raw), "spec")?;
        let root_service = spec
            .service
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(&id, "spec.service", "required: the root service to split"))?;
        let wire = spec
            .backends
            .ok_or_else(|| invalid(&id, "spec.backends", "required: at least one backend"))?;
        if wire.is_empty() {
            return Err(invalid(
                &id,
                "spec.backends",
                "must list at least one backend",
            ));
        }
        let mut backends = Vec::with_capacity(wire.len());
        for (i, b) in wire.into_iter().enumerate() {
            let service = b
                .service
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(&id, format!("spec.backends[{i}].service"), "required"))?;
            if backends.iter().any(|x: &SplitBackend| x.service == service) {
                return Err(invalid(
                    &id,
                    format!("spec.backends[{i}].service"),
                    format!("backend {service:?} is listed twice"),
                ));
            }
            let weight = b
                .weight
                .ok_or_else(|| invalid(&id, format!("spec.backends[{i}].weight"), "required"))?;
            let weight_millis = weight_millis(&weight)
                .map_err(|e| invalid(&id, format!("spec.backends[{i}].weight"), e.to_string()))?;
            backends.push(SplitBackend {
                service,
                weight_millis,
            });
        }
        for (i, m) in spec.matches.iter().enumerate() {
            if m.kind != "HTTPRouteGroup" && m.kind != "TCPRoute" {
                return Err(invalid(
                    &id,
                    format!("spec.matches[{i}].kind"),
                    format!("{:?} is not HTTPRouteGroup or TCPRoute", m.kind),
                ));
            }
        }
        Ok(Self {
            id,
            root_service,
            backends,
            matches: spec.matches,
        })
    }

    /// The sum of all weights in milli-units.
    pub fn total_weight_millis(&self) -> u128 {
        self.backends
            .iter()
            .map(|b| u128::from(b.weight_millis))
            .sum()
    }

    /// The share of traffic (0.0 to 1.0) a backend receives: its weight over the sum.
    pub fn share(&self, service: &str) -> f64 {
        let total = self.total_weight_millis();
        if total == 0 {
            return 0.0;
        }
        self.backends
            .iter()
            .filter(|b| b.service == service)
            .map(|b| b.weight_millis as f64 / total as f64)
            .sum()
    }
}
