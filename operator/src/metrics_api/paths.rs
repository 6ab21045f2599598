//! The API's paths: what a request asks for, its window and label selector, and the
//! discovery document (pure).

use serde_json::{Value, json};
use std::time::Duration;
use weir_crds::duration::format_duration;
use weir_crds::smi::metrics::API_VERSION;

/// The window when a request names none (as SMI's reference server).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// A resource kind the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Namespaces (cluster-scoped).
    Namespace,
    /// Pods.
    Pod,
    /// Deployments.
    Deployment,
    /// Services.
    Service,
    /// TrafficSplits.
    TrafficSplit,
}

/// What a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The APIResourceList.
    Discovery,
    /// Every resource of a kind (in a namespace) with traffic.
    List {
        /// The namespace, None for namespaces.
        namespace: Option<String>,
        /// The kind.
        kind: Kind,
    },
    /// One resource.
    Get {
        /// The namespace, None for a namespace itself.
        namespace: Option<String>,
        /// The kind.
        kind: Kind,
        /// The name.
        name: String,
    },
    /// The edges of one resource.
    Edges {
        /// The namespace, None for a namespace itself.
        namespace: Option<String>,
        /// The kind.
        kind: Kind,
        /// The name.
        name: String,
    },
}

/// A request the API cannot answer, as a Kubernetes Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status.
    pub code: u16,
    /// The Status reason (`NotFound`, `BadRequest`, `ServiceUnavailable`).
    pub reason: &'static str,
    /// What went wrong.
    pub message: String,
}

// === impl Kind ===

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Deployment,
        Kind::Service,
        Kind::TrafficSplit,
    ];

    /// The plural resource name in paths.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::Service => "services",
            Kind::TrafficSplit => "trafficsplits",
        }
    }

    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::TrafficSplit => "TrafficSplit",
        }
    }

    fn from_plural(plural: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == plural)
    }
}

// === impl Failure ===

impl Failure {
    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: message.into(),
        }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    /// A 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: 503,
            reason: "ServiceUnavailable",
            message: message.into(),
        }
    }

    /// The Status document.
    pub fn to_status(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code})
    }
}

/// Parses the path below `/apis/metrics.smi-spec.io/v1alpha1`.
pub fn route(path: &str) -> Result<Query, Failure> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let not_found = || Failure::not_found(format!("the server could not find {path:?}"));
    let kind = |plural: &str| {
        Kind::from_plural(plural).filter(|k| *k != Kind::Namespace).ok_or_else(|| {
            Failure::not_found(format!(
                "unsupported resource {plural:?}: this server serves namespaces, pods, deployments, services and trafficsplits"
            ))
        })
    };
    Ok(match parts.as_slice() {
        [] => Query::Discovery,
        ["namespaces"] => Query::List {
            namespace: None,
            kind: Kind::Namespace,
        },
        ["namespaces", name] => Query::Get {
            namespace: None,
            kind: Kind::Namespace,
            name: (*name).into(),
        },
        ["namespaces", name, "edges"] => Query::Edges {
            namespace: None,
            kind: Kind::Namespace,
            name: (*name).into(),
        },
        ["namespaces", ns, plural] => Query::List {
            namespace: Some((*ns).into()),
            kind: kind(plural)?,
        },
        ["namespaces", ns, plural, name] => Query::Get {
            namespace: Some((*ns).into()),
            kind: kind(plural)?,
            name: (*name).into(),
        },
        ["namespaces", ns, plural, name, "edges"] => Query::Edges {
            namespace: Some((*ns).into()),
            kind: kind(plural)?,
            name: (*name).into(),
        },
        _ => return Err(not_found()),
    })
}

/// The window of a request: `t` (as SMI's reference server reads it) or `window`, in Go
/// duration syntax (`30s`, `1m30s`, `500ms`); 30s when absent. It must fit the retention.
pub fn window(query: Option<&str>, retention: Duration) -> Result<Duration, Failure> {
    let value = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "t" || k == "window").then_some(v)
        });
    let Some(value) = value else {
        return Ok(DEFAULT_WINDOW);
    };
    let w = parse_go_duration(value).ok_or_else(|| {
        Failure::bad_request(format!(
            "window {value:?} is not a duration such as 30s, 1m30s or 500ms"
        ))
    })?;
    if w.is_zero() || w > retention {
        return Err(Failure::bad_request(format!(
            "window {value:?} must be above 0 and at most the retention, {}",
            format_duration(retention)
        )));
    }
    Ok(w)
}

/// The label selector of a request, if any (URL-decoded).
pub fn label_selector(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "labelSelector").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a Go duration: a sequence of decimal numbers with units ns, us, µs, ms, s, m, h.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The APIResourceList of the group/version.
pub fn discovery() -> Value {
    let resources: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({"name": k.plural(), "singularName": "", "namespaced": *k != Kind::Namespace,
                   "kind": "TrafficMetrics", "verbs": ["get", "list"]})
        })
        .chain(Kind::ALL.iter().map(|k| {
            json!({"name": format!("{}/edges", k.plural()), "singularName": "",
                   "namespaced": *k != Kind::Namespace, "kind": "TrafficMetricsList", "verbs": ["get"]})
        }))
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION, "resources": resources})
}
