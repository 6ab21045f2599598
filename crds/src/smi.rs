//! The Service Mesh Interface API types, one module per API group and version.
//!
//! Each version is a faithful Rust rendering of its SMI specification. The CRDs
//! installed by Weir serve every version with one *union* schema and conversion
//! `None` (see `docs/crds.md`), so an object read through any version may carry
//! the fields of another; [`crate::model`] therefore normalises by shape, not by
//! the `apiVersion` string.

pub mod access;
pub mod metrics;
pub mod specs;
pub mod split;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to an object of a given kind in the same namespace (SMI's `TypedLocalObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    /// The API group of the referenced object, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// The kind of the referenced object, such as `HTTPRouteGroup`.
    pub kind: String,
    /// The name of the referenced object.
    pub name: String,
}

/// A ServiceAccount (or other identity) named by an SMI TrafficTarget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityBindingSubject {
    /// The kind of identity; only `ServiceAccount` is supported.
    pub kind: String,
    /// The name of the identity.
    pub name: String,
    /// The namespace of the identity; defaults to the TrafficTarget's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The destination port traffic is allowed on (destinations only; any port when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// A reference from a TrafficTarget to a route group, optionally naming some of its matches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTargetRule {
    /// `HTTPRouteGroup` or `TCPRoute`.
    pub kind: String,
    /// The name of the route group in the TrafficTarget's namespace.
    pub name: String,
    /// The names of the route group's matches that are allowed; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
}
