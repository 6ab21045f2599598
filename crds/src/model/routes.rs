//! The normalised HTTPRouteGroup and TCPRoute, and HTTP request matching.

use super::{NormaliseError, ObjectId, anchored_regex, field, invalid};
use regex::Regex;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeSet;

/// An HTTPRouteGroup of any version, with its regexes compiled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRouteGroup {
    /// The object this came from.
    pub id: ObjectId,
    /// The named matches; a request matches the group when any of them matches.
    pub matches: Vec<HttpMatch>,
}

/// One named HTTP match: path, method and headers must all match.
#[derive(Debug, Clone, Serialize)]
pub struct HttpMatch {
    /// The match's name.
    pub name: String,
    /// The whole-path regex; any path when absent.
    #[serde(serialize_with = "serialize_regex_opt")]
    pub path: Option<Regex>,
    /// The methods that match.
    pub methods: MethodMatch,
    /// Header filters, all of which must match.
    pub headers: Vec<HeaderMatch>,
}

/// Which HTTP methods a match accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MethodMatch {
    /// Every method (`["*"]` or no `methods` field).
    Any,
    /// Only these methods, upper case.
    Only(BTreeSet<String>),
}

/// A header that must be present with a value matching a whole-value regex.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatch {
    /// The header name, lower case.
    pub name: String,
    /// The regex the whole value must match.
    #[serde(serialize_with = "serialize_regex")]
    pub value: Regex,
}

/// A TCPRoute of any version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpRoute {
    /// The object this came from.
    pub id: ObjectId,
    /// The ports that match; every port when empty.
    pub ports: Vec<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    headers: Option<Value>,
}

impl PartialEq for HttpMatch {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.path.as_ref().map(Regex::as_str) == other.path.as_ref().map(Regex::as_str)
            && self.methods == other.methods
            && self.headers == other.headers
    }
}

impl PartialEq for HeaderMatch {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value.as_str() == other.value.as_str()
    }
}

fn serialize_regex<S: Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(re.as_str())
}

fn serialize_regex_opt<S: Serializer>(re: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    match re {
        Some(re) => s.serialize_str(re.as_str()),
        None => s.serialize_none(),
    }
}

/// The methods SMI allows in `methods`, besides `*`.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "POST", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

// === impl HttpRouteGroup ===

impl HttpRouteGroup {
    /// Normalises an HTTPRouteGroup's JSON: top-level `matches` (v1alpha1) or `spec.matches`.
    pub fn normalise(object: &Value, id: ObjectId) -> Result<Self, NormaliseError> {
        let (path, raw) = match object.pointer("/spec/matches") {
            Some(m) => ("spec.matches", Some(m)),
            None => ("matches", object.get("matches")),
        };
        let wire: Option<Vec<MatchWire>> = field(&id, raw, path)?;
        let wire =
            wire.ok_or_else(|| invalid(&id, "spec.matches", "required: at least one match"))?;
        let mut matches: Vec<HttpMatch> = Vec::with_capacity(wire.len());
        for (i, m) in wire.into_iter().enumerate() {
            let at = format!("{path}[{i}]");
            let name = m
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(&id, format!("{at}.name"), "required"))?;
            if matches.iter().any(|x| x.name == name) {
                return Err(invalid(
                    &id,
                    format!("{at}.name"),
                    format!("{name:?} is used twice"),
                ));
            }
            let path_re = m
                .path_regex
                .map(|p| anchored_regex(&id, &format!("{at}.pathRegex"), &p))
                .transpose()?;
            let methods = method_match(&id, &format!("{at}.methods"), m.methods)?;
            let headers = header_matches(&id, &format!("{at}.headers"), m.headers)?;
            matches.push(HttpMatch {
                name,
                path: path_re,
                methods,
                headers,
            });
        }
        Ok(Self { id, matches })
    }

    /// The match with this name, if the group has one.
    pub fn get(&self, name: &str) -> Option<&HttpMatch> {
        self.matches.iter().find(|m| m.name == name)
    }
}

fn method_match(
    id: &ObjectId,
    at: &str,
    methods: Option<Vec<String>>,
) -> Result<MethodMatch, NormaliseError> {
    let Some(methods) = methods else {
        return Ok(MethodMatch::Any);
    };
    if methods.iter().any(|m| m == "*") {
        return Ok(MethodMatch::Any);
    }
    let mut set = BTreeSet::new();
    for (i, m) in methods.iter().enumerate() {
        let upper = m.to_ascii_uppercase();
        if !KNOWN_METHODS.contains(&upper.as_str()) {
            return Err(invalid(
                id,
                format!("{at}[{i}]"),
                format!("{m:?} is not an HTTP method or \"*\""),
            ));
        }
        set.insert(upper);
    }
    if set.is_empty() {
        return Err(invalid(
            id,
            at,
            "an empty list matches nothing; use [\"*\"] for all methods",
        ));
    }
    Ok(MethodMatch::Only(set))
}

/// Headers come as a map (v1alpha4) or a list of maps (v1alpha3); both mean "all must match".
fn header_matches(
    id: &ObjectId,
    at: &str,
    headers: Option<Value>,
) -> Result<Vec<HeaderMatch>, NormaliseError> {
    let maps: Vec<(String, &serde_json::Map<String, Value>)> = match &headers {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => vec![(at.to_string(), map)],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok((format!("{at}[{i}]"), map)),
                _ => Err(invalid(
                    id,
                    format!("{at}[{i}]"),
                    "must be a map of header name to regex",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(id, at, "must be a map of header name to regex")),
    };
    let mut out = Vec::new();
    for (path, map) in maps {
        for (name, value) in map {
            let Value::String(pattern) = value else {
                return Err(invalid(
                    id,
                    format!("{path}.{name}"),
                    "must be a regex string",
                ));
            };
            let value = anchored_regex(id, &format!("{path}.{name}"), pattern)?;
            out.push(HeaderMatch {
                name: name.to_ascii_lowercase(),
                value,
            });
        }
    }
    Ok(out)
}

// === impl HttpMatch ===

impl HttpMatch {
    /// Whether a request matches; `header` looks a header value up by lower-case name.
    pub fn matches<'a>(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        let method_ok = match &self.methods {
            MethodMatch::Any => true,
            MethodMatch::Only(set) => set.contains(method),
        };
        method_ok
            && self.path.as_ref().is_none_or(|re| re.is_match(path))
            && self
                .headers
                .iter()
                .all(|h| header(&h.name).is_some_and(|v| h.value.is_match(v)))
    }
}

// === impl TcpRoute ===

impl TcpRoute {
    /// Normalises a TCPRoute's JSON: `spec.matches.ports` (v1alpha4) or nothing (all ports).
    pub fn normalise(object: &Value, id: ObjectId) -> Result<Self, NormaliseError> {
        let raw: Option<Vec<i64>> = field(
            &id,
            object.pointer("/spec/matches/ports"),
            "spec.matches.ports",
        )?;
        let mut ports = Vec::new();
        for (i, p) in raw.unwrap_or_default().into_iter().enumerate() {
            let port = u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                invalid(
                    &id,
                    format!("spec.matches.ports[{i}]"),
                    format!("{p} is not a port (1-65535)"),
                )
            })?;
            ports.push(port);
        }
        Ok(Self { id, ports })
    }

    /// Whether this route covers a destination port.
    pub fn covers(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }
}
