//! The access decision over every TrafficTarget, HTTPRouteGroup and TCPRoute.
//!
//! [`AccessPolicy::new`] resolves each rule's route group once, so that
//! [`AccessPolicy::check`] allocates nothing when it allows a request: it looks the
//! destination up, keeps the targets that name the source (and port), and tries their
//! rules in order. Targets add up as a union.

use super::{RouteKind, ServiceAccountRef, TrafficTarget};
use crate::model::{HttpMatch, HttpRouteGroup, ObjectId, TcpRoute};
use std::collections::BTreeMap;

/// What the proxy knows about a request when it asks for a decision.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The client's ServiceAccount, if its pod is known.
    pub source: Option<&'a ServiceAccountRef>,
    /// The chosen backend's ServiceAccount.
    pub destination: &'a ServiceAccountRef,
    /// The destination port.
    pub port: u16,
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
}

/// Why a request was denied, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyKind {
    /// The client's identity is unknown.
    Unauthenticated,
    /// No TrafficTarget names this source and destination (and port).
    NoTrafficTarget,
    /// TrafficTargets name them, but none of their rules matches the request.
    NoMatchingRule,
}

/// The outcome of an access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision<'p> {
    /// Allowed by this TrafficTarget's rule.
    Allow {
        /// The TrafficTarget that allowed it.
        target: &'p ObjectId,
        /// `Kind/name#match` of the rule that matched (`TCPRoute/name` for a TCP rule).
        rule: &'p str,
    },
    /// Denied, with the reason in words.
    Deny {
        /// The kind of denial.
        kind: DenyKind,
        /// Why, for the 403 body and the logs.
        reason: String,
    },
}

/// Every TrafficTarget, HTTPRouteGroup and TCPRoute, indexed for decisions.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    by_destination: BTreeMap<ServiceAccountRef, Vec<ResolvedTarget>>,
    warnings: Vec<String>,
}

/// A target with its rules' route groups looked up.
#[derive(Debug, Clone)]
struct ResolvedTarget {
    target: TrafficTarget,
    rules: Vec<ResolvedRule>,
}

/// One rule, ready to match; a rule whose group is missing is dropped (it allows nothing).
#[derive(Debug, Clone)]
enum ResolvedRule {
    /// The allowed matches of an HTTPRouteGroup, each with its `HTTPRouteGroup/g#m` label.
    Http(Vec<(HttpMatch, String)>),
    /// A TCPRoute's ports (all when empty), with its `TCPRoute/name` label.
    Tcp { ports: Vec<u16>, label: String },
}

// === impl DenyKind ===

impl DenyKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::NoTrafficTarget => "no_traffic_target",
            Self::NoMatchingRule => "no_matching_rule",
        }
    }
}

// === impl AccessPolicy ===

impl AccessPolicy {
    /// Indexes targets and route groups; a rule finds its group in the target's namespace.
    ///
    /// A rule naming a route group that is not given (missing, or rejected by its owner)
    /// allows nothing, and so does a named match the group does not have; each such rule
    /// is listed in [`AccessPolicy::warnings`]. The other rules stay in force.
    pub fn new(
        targets: impl IntoIterator<Item = TrafficTarget>,
        http: impl IntoIterator<Item = HttpRouteGroup>,
        tcp: impl IntoIterator<Item = TcpRoute>,
    ) -> Self {
        let key = |id: &ObjectId| (id.namespace.clone(), id.name.clone());
        let http: BTreeMap<_, _> = http.into_iter().map(|g| (key(&g.id), g)).collect();
        let tcp: BTreeMap<_, _> = tcp.into_iter().map(|r| (key(&r.id), r)).collect();
        let mut by_destination: BTreeMap<ServiceAccountRef, Vec<ResolvedTarget>> = BTreeMap::new();
        let mut warnings = Vec::new();
        for target in targets {
            let mut rules = Vec::with_capacity(target.rules.len());
            for (i, rule) in target.rules.iter().enumerate() {
                let group_key = (target.id.namespace.clone(), rule.name.clone());
                let mut warn = |what: String| {
                    warnings.push(format!(
                        "{} rule {i} ({}): {what}; the rule allows nothing",
                        target.id,
                        kind_name(rule.kind)
                    ))
                };
                match rule.kind {
                    RouteKind::Tcp => match tcp.get(&group_key) {
                        Some(route) => rules.push(ResolvedRule::Tcp {
                            ports: route.ports.clone(),
                            label: format!("TCPRoute/{}", rule.name),
                        }),
                        None => warn(format!(
                            "TCPRoute {}/{} is missing or rejected",
                            group_key.0, group_key.1
                        )),
                    },
                    RouteKind::Http => {
                        let Some(group) = http.get(&group_key) else {
                            warn(format!(
                                "HTTPRouteGroup {}/{} is missing or rejected",
                                group_key.0, group_key.1
                            ));
                            continue;
                        };
                        for name in rule.matches.iter().filter(|n| group.get(n).is_none()) {
                            warn(format!(
                                "HTTPRouteGroup {}/{} has no match named {name:?}",
                                group_key.0, group_key.1
                            ));
                        }
                        let allowed: Vec<(HttpMatch, String)> = group
                            .matches
                            .iter()
                            .filter(|m| rule.matches.is_empty() || rule.matches.contains(&m.name))
                            .map(|m| {
                                (
                                    m.clone(),
                                    format!("HTTPRouteGroup/{}#{}", rule.name, m.name),
                                )
                            })
                            .collect();
                        if !allowed.is_empty() {
                            rules.push(ResolvedRule::Http(allowed));
                        }
                    }
                }
            }
            by_destination
                .entry(target.destination.clone())
                .or_default()
                .push(ResolvedTarget { target, rules });
        }
        Self {
            by_destination,
            warnings,
        }
    }

    /// Rules that allow nothing because what they name is missing, in words.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Each TrafficTarget (`namespace/name`) with the number of its rules in force, that is
    /// whose route group was found; a target at 0 allows nothing.
    pub fn rules_in_force(&self) -> BTreeMap<String, usize> {
        self.by_destination
            .values()
            .flatten()
            .map(|t| {
                (
                    format!("{}/{}", t.target.id.namespace, t.target.id.name),
                    t.rules.len(),
                )
            })
            .collect()
    }

    /// Whether any TrafficTarget names this destination (it is then enforced even under a
    /// permissive default).
    pub fn governs(&self, destination: &ServiceAccountRef) -> bool {
        self.by_destination.contains_key(destination)
    }

    /// Decides one request; `header` looks a header value up by lower-case name.
    ///
    /// Allowing allocates nothing; a denial explains itself in words.
    pub fn check<'h>(
        &self,
        req: &AccessRequest<'_>,
        header: impl Fn(&str) -> Option<&'h str> + Copy,
    ) -> AccessDecision<'_> {
        let dest = req.destination;
        let Some(source) = req.source else {
            return AccessDecision::Deny {
                kind: DenyKind::Unauthenticated,
                reason: format!(
                    "the client's identity is unknown, and no anonymous access to {}/{} is allowed",
                    dest.namespace, dest.name
                ),
            };
        };
        let candidates = || {
            self.by_destination
                .get(dest)
                .into_iter()
                .flatten()
                .filter(|t| {
                    t.target.sources.contains(source) && t.target.port.is_none_or(|p| p == req.port)
                })
        };
        let mut any = false;
        for t in candidates() {
            any = true;
            for rule in &t.rules {
                if let Some(label) = rule.matches(req, header) {
                    return AccessDecision::Allow {
                        target: &t.target.id,
                        rule: label,
                    };
                }
            }
        }
        if !any {
            return AccessDecision::Deny {
                kind: DenyKind::NoTrafficTarget,
                reason: format!(
                    "no TrafficTarget allows ServiceAccount {}/{} to reach ServiceAccount {}/{} on port {}",
                    source.namespace, source.name, dest.namespace, dest.name, req.port
                ),
            };
        }
        let names: Vec<&str> = candidates().map(|t| t.target.id.name.as_str()).collect();
        AccessDecision::Deny {
            kind: DenyKind::NoMatchingRule,
            reason: format!(
                "TrafficTarget {} allows {}/{} to reach {}/{}, but no rule matches {} {}",
                names.join(", "),
                source.namespace,
                source.name,
                dest.namespace,
                dest.name,
                req.method,
                req.path
            ),
        }
    }
}

// === impl ResolvedRule ===

impl ResolvedRule {
    /// The label of the rule (and match) that allows the request, if one does.
    fn matches<'s, 'h>(
        &'s self,
        req: &AccessRequest<'_>,
        header: impl Fn(&str) -> Option<&'h str> + Copy,
    ) -> Option<&'s str> {
        match self {
            Self::Tcp { ports, label } => {
                (ports.is_empty() || ports.contains(&req.port)).then_some(label.as_str())
            }
            Self::Http(matches) => matches
                .iter()
                .find(|(m, _)| m.matches(req.method, req.path, header))
                .map(|(_, label)| label.as_str()),
        }
    }
}

fn kind_name(kind: RouteKind) -> &'static str {
    match kind {
        RouteKind::Http => "HTTPRouteGroup",
        RouteKind::Tcp => "TCPRoute",
    }
}
