//! The normalised TrafficTarget and the pure SMI access decision.
//!
//! Deny by default: a request is allowed only when a TrafficTarget names its
//! destination ServiceAccount and its source ServiceAccount, and one of that
//! target's rules matches the request.

mod policy;

pub use policy::{AccessDecision, AccessPolicy, AccessRequest, DenyKind};

use super::{NormaliseError, ObjectId, field, invalid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A ServiceAccount, the identity SMI uses for sources and destinations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceAccountRef {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
}

/// The kind of route group a rule refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouteKind {
    /// An `HTTPRouteGroup`: path, method and header matches.
    Http,
    /// A `TCPRoute`: ports only.
    Tcp,
}

/// One rule of a TrafficTarget: a route group and which of its matches are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetRule {
    /// The kind of route group.
    pub kind: RouteKind,
    /// The route group's name, in the TrafficTarget's namespace.
    pub name: String,
    /// The allowed match names; every match of the group when empty.
    pub matches: Vec<String>,
}

/// A TrafficTarget of any version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficTarget {
    /// The object this came from.
    pub id: ObjectId,
    /// The ServiceAccount traffic is allowed to reach.
    pub destination: ServiceAccountRef,
    /// The only destination port allowed, when set.
    pub port: Option<u16>,
    /// The allowed routes; a target with no rules allows nothing.
    pub rules: Vec<TargetRule>,
    /// The ServiceAccounts allowed to send.
    pub sources: Vec<ServiceAccountRef>,
}

#[derive(Deserialize)]
struct TargetWire {
    #[serde(default)]
    destination: Option<SubjectWire>,
    #[serde(default)]
    rules: Option<Vec<RuleWire>>,
    #[serde(default)]
    specs: Option<Vec<RuleWire>>,
    #[serde(default)]
    sources: Vec<SubjectWire>,
}

#[derive(Deserialize)]
struct SubjectWire {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    port: Option<i64>,
}

#[derive(Deserialize)]
struct RuleWire {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    matches: Vec<String>,
}

// === impl TrafficTarget ===

impl TrafficTarget {
    /// Normalises a TrafficTarget's JSON: top-level fields (v1alpha1) or `spec` (later).
    pub fn normalise(object: &Value, id: ObjectId) -> Result<Self, NormaliseError> {
        let (prefix, wire): (&str, TargetWire) = match object.get("spec") {
            Some(spec) if !spec.is_null() => ("spec.", field(&id, Some(spec), "spec")?),
            _ => ("", field(&id, Some(object), "destination")?),
        };
        let dest = wire
            .destination
            .ok_or_else(|| invalid(&id, format!("{prefix}destination"), "required"))?;
        let destination = service_account(&id, &format!("{prefix}destination"), &dest)?;
        let port = dest
            .port
            .map(|p| {
                u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                    invalid(
                        &id,
                        format!("{prefix}destination.port"),
                        format!("{p} is not a port"),
                    )
                })
            })
            .transpose()?;
        let (rules_field, raw_rules) = match (wire.rules, wire.specs) {
            (Some(r), _) => ("rules", r),
            (None, Some(s)) => ("specs", s),
            (None, None) => ("rules", Vec::new()),
        };
        let rules = raw_rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let at = format!("{prefix}{rules_field}[{i}]");
                let kind = match r.kind.as_str() {
                    "HTTPRouteGroup" => RouteKind::Http,
                    "TCPRoute" => RouteKind::Tcp,
                    other => {
                        return Err(invalid(
                            &id,
                            format!("{at}.kind"),
                            format!("{other:?} is not HTTPRouteGroup or TCPRoute"),
                        ));
                    }
                };
                if r.name.is_empty() {
                    return Err(invalid(&id, format!("{at}.name"), "required"));
                }
                Ok(TargetRule {
                    kind,
                    name: r.name,
                    matches: r.matches,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sources = wire
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| service_account(&id, &format!("{prefix}sources[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id,
            destination,
            port,
            rules,
            sources,
        })
    }
}

fn service_account(
    id: &ObjectId,
    at: &str,
    s: &SubjectWire,
) -> Result<ServiceAccountRef, NormaliseError> {
    if s.kind != "ServiceAccount" {
        return Err(invalid(
            id,
            format!("{at}.kind"),
            format!(
                "{:?} is not supported; only ServiceAccount identities are",
                s.kind
            ),
        ));
    }
    if s.name.is_empty() {
        return Err(invalid(id, format!("{at}.name"), "required"));
    }
    Ok(ServiceAccountRef {
        namespace: s.namespace.clone().unwrap_or_else(|| id.namespace.clone()),
        name: s.name.clone(),
    })
}
