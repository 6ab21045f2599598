//! The RBAC authorizer (pure): policy rules × a request → allow or deny, with a reason.
//!
//! It follows upstream's `rbac.authorizer` rules: ClusterRoleBindings grant everywhere,
//! RoleBindings only in their namespace (to a Role of that namespace or a ClusterRole);
//! a rule matches when its verbs, API groups, resources (`resource/subresource`,
//! `*/subresource`, `*`) and resource names match, or, for paths, its `nonResourceURLs`
//! (exact, or a prefix ending in `*`). Aggregated ClusterRoles hold the rules of every
//! ClusterRole their `aggregationRule` selects. Members of `system:masters` may do anything.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The group whose members are allowed everything, before RBAC is asked.
pub const MASTERS: &str = "system:masters";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:ns:name`.
    pub name: String,
    /// Groups the user is a member of.
    pub groups: Vec<String>,
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request for objects of a resource.
    Resource {
        /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`...
        verb: String,
        /// API group ("" for core).
        group: String,
        /// Plural resource name.
        resource: String,
        /// Subresource ("" for none).
        subresource: String,
        /// Namespace ("" for cluster scope).
        namespace: String,
        /// Object name ("" for collections and creates).
        name: String,
    },
    /// A request for a path that is not a resource (`/version`, `/apis`...).
    NonResource {
        /// The lower-case HTTP method (`get`, `post`...).
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Verbs.
    pub verbs: Vec<String>,
    /// API groups.
    pub api_groups: Vec<String>,
    /// Resources, possibly `resource/subresource`.
    pub resources: Vec<String>,
    /// Object names (empty = all).
    pub resource_names: Vec<String>,
    /// Non-resource URLs.
    pub non_resource_urls: Vec<String>,
}

/// A label selector of an aggregation rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// `matchLabels`.
    pub labels: BTreeMap<String, String>,
    /// `matchExpressions` as (key, operator, values).
    pub expressions: Vec<(String, String, Vec<String>)>,
}

/// A Role (with a namespace) or a ClusterRole (without).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// Name.
    pub name: String,
    /// Labels (what aggregation selects on).
    pub labels: BTreeMap<String, String>,
    /// The role's own rules.
    pub rules: Vec<Rule>,
    /// `aggregationRule.clusterRoleSelectors`, when set.
    pub aggregation: Option<Vec<Selector>>,
}

/// A binding's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace (ServiceAccounts).
    pub namespace: String,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Name.
    pub name: String,
    /// `roleRef.kind`: `Role` or `ClusterRole`.
    pub role_kind: String,
    /// `roleRef.name`.
    pub role_name: String,
    /// Subjects.
    pub subjects: Vec<Subject>,
}

/// Everything RBAC stores.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Roles as (namespace, role).
    pub roles: Vec<(String, Role)>,
    /// ClusterRoles.
    pub cluster_roles: Vec<Role>,
    /// RoleBindings as (namespace, binding).
    pub role_bindings: Vec<(String, Binding)>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Binding>,
}

/// The answer, with upstream's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why (empty when denied without a rule to name).
    pub reason: String,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

// === impl Rule ===

impl Rule {
    /// Reads a `PolicyRule` object.
    pub fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// Whether this rule allows `attrs`.
    pub fn allows(&self, attrs: &Attributes) -> bool {
        match attrs {
            Attributes::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                has(&self.verbs, verb)
                    && has(&self.api_groups, group)
                    && resource_matches(&self.resources, resource, subresource)
                    && (self.resource_names.is_empty() || self.resource_names.contains(name))
            }
            Attributes::NonResource { verb, path } => {
                has(&self.verbs, verb)
                    && self.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == path
                            || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    }
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|v| v == "*" || v == item)
}

fn resource_matches(rules: &[String], resource: &str, sub: &str) -> bool {
    let combined = if sub.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{sub}")
    };
    rules.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!sub.is_empty() && r.strip_prefix("*/").is_some_and(|s| s == sub))
    })
}

// === impl Selector ===

impl Selector {
    /// Reads a `LabelSelector` object.
    pub fn from_json(v: &Value) -> Self {
        let expressions = v["matchExpressions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["key"].as_str().unwrap_or_default().to_string(),
                            e["operator"].as_str().unwrap_or_default().to_string(),
                            strings(&e["values"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            labels: string_map(&v["matchLabels"]),
            expressions,
        }
    }

    /// Whether `labels` match; an empty selector matches everything, as upstream's.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(k, op, values)| {
                let got = labels.get(k);
                match op.as_str() {
                    "In" => got.is_some_and(|g| values.contains(g)),
                    "NotIn" => got.is_none_or(|g| !values.contains(g)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    _ => false,
                }
            })
    }
}

// === impl Role ===

impl Role {
    /// Reads a Role or ClusterRole object.
    pub fn from_json(v: &Value) -> Self {
        let aggregation = v["aggregationRule"].as_object().map(|a| {
            a.get("clusterRoleSelectors")
                .and_then(Value::as_array)
                .map(|s| s.iter().map(Selector::from_json).collect())
                .unwrap_or_default()
        });
        Self {
            name: v["metadata"]["name"].as_str().unwrap_or_default().into(),
            labels: string_map(&v["metadata"]["labels"]),
            rules: v["rules"]
                .as_array()
                .map(|a| a.iter().map(Rule::from_json).collect())
                .unwrap_or_default(),
            aggregation,
        }
    }
}

// === impl Binding ===

impl Binding {
    /// Reads a RoleBinding or ClusterRoleBinding object.
    pub fn from_json(v: &Value) -> Self {
        let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Self {
            name: str_of(&v["metadata"]["name"]),
            role_kind: str_of(&v["roleRef"]["kind"]),
            role_name: str_of(&v["roleRef"]["name"]),
            subjects: v["subjects"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| Subject {
                            kind: str_of(&s["kind"]),
                            name: str_of(&s["name"]),
                            namespace: str_of(&s["namespace"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The subject of this binding that is `user`, if any (`ns` is the binding's namespace,
    /// the default for ServiceAccount subjects).
    fn subject_for<'a>(&'a self, user: &UserInfo, ns: &str) -> Option<&'a Subject> {
        self.subjects.iter().find(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let sa_ns = if s.namespace.is_empty() {
                    ns
                } else {
                    &s.namespace
                };
                user.name == format!("system:serviceaccount:{sa_ns}:{}", s.name)
            }
            _ => false,
        })
    }
}

// === impl Policy ===

impl Policy {
    /// The rules of a ClusterRole, following aggregation (cycles end at a visited role).
    pub fn cluster_role_rules(&self, name: &str) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.collect(name, &mut seen, &mut out);
        out
    }

    fn collect(&self, name: &str, seen: &mut HashSet<String>, out: &mut Vec<Rule>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        let Some(role) = self.cluster_roles.iter().find(|r| r.name == name) else {
            return;
        };
        match &role.aggregation {
            // The aggregation controller replaces an aggregated role's rules with the union
            // of the selected roles' rules.
            Some(selectors) => {
                for other in &self.cluster_roles {
                    if other.name != name && selectors.iter().any(|s| s.matches(&other.labels)) {
                        self.collect(&other.name.clone(), seen, out);
                    }
                }
            }
            None => out.extend(role.rules.iter().cloned()),
        }
    }

    fn role_rules(&self, ns: &str, name: &str) -> Vec<Rule> {
        self.roles
            .iter()
            .find(|(rns, r)| rns == ns && r.name == name)
            .map(|(_, r)| r.rules.clone())
            .unwrap_or_default()
    }
}

fn subject_text(s: &Subject, ns: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" if s.namespace.is_empty() => {
            format!("ServiceAccount \"{ns}/{}\"", s.name)
        }
        "ServiceAccount" => format!("ServiceAccount \"{}/{}\"", s.namespace, s.name),
        k => format!("{k} \"{}\"", s.name),
    }
}

/// Decides whether `user` may do `attrs` under `policy`.
pub fn authorize(policy: &Policy, user: &UserInfo, attrs: &Attributes) -> Decision {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Decision {
            allowed: true,
            reason: format!("allowed as a member of {MASTERS}"),
        };
    }
    for b in &policy.cluster_role_bindings {
        let Some(subject) = b.subject_for(user, "") else {
            continue;
        };
        if b.role_kind == "ClusterRole"
            && policy
                .cluster_role_rules(&b.role_name)
                .iter()
                .any(|r| r.allows(attrs))
        {
            return Decision {
                allowed: true,
                reason: format!(
                    "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to {}",
                    b.name,
                    b.role_name,
                    subject_text(subject, "")
                ),
            };
        }
    }
    let ns = match attrs {
        Attributes::Resource { namespace, .. } => namespace.as_str(),
        Attributes::NonResource { .. } => "",
    };
    if !ns.is_empty() {
        for (bns, b) in policy.role_bindings.iter().filter(|(bns, _)| bns == ns) {
            let Some(subject) = b.subject_for(user, bns) else {
                continue;
            };
            let rules = match b.role_kind.as_str() {
                "Role" => policy.role_rules(bns, &b.role_name),
                "ClusterRole" => policy.cluster_role_rules(&b.role_name),
                _ => Vec::new(),
            };
            if rules.iter().any(|r| r.allows(attrs)) {
                return Decision {
                    allowed: true,
                    reason: format!(
                        "RBAC: allowed by RoleBinding \"{}/{bns}\" of {} \"{}\" to {}",
                        b.name,
                        b.role_kind,
                        b.role_name,
                        subject_text(subject, bns)
                    ),
                };
            }
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

/// Upstream's `forbiddenMessage`: what a denied `user` could not do.
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    match attrs {
        Attributes::NonResource { verb, path } => {
            format!("User \"{}\" cannot {verb} path \"{path}\"", user.name)
        }
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let res = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace \"{namespace}\"")
            };
            format!(
                "User \"{}\" cannot {verb} resource \"{res}\" in API group \"{group}\" {scope}",
                user.name
            )
        }
    }
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;
