//! `specs.smi-spec.io` HTTPRouteGroup and TCPRoute, versions v1alpha1 to v1alpha4.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One named HTTP match without header filters (v1alpha1 and v1alpha2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// The name other objects use to refer to this match.
    pub name: String,
    /// A regular expression that must match the whole request path; any path when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// HTTP methods that match, or `["*"]` for all; all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
}

/// One named HTTP match with header filters (v1alpha3 and v1alpha4).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchWithHeaders {
    /// The name other objects use to refer to this match.
    pub name: String,
    /// A regular expression that must match the whole request path; any path when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// HTTP methods that match, or `["*"]` for all; all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Header name to value regex; every header listed must match. A map (v1alpha4) or a list of maps (v1alpha3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown")]
    pub headers: Option<serde_json::Value>,
}

/// Version `v1alpha1`: `matches` sits at the top level of the object.
pub mod v1alpha1 {
    use super::*;

    /// A named set of HTTP routes that TrafficTargets and TrafficSplits refer to.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha1",
        kind = "HTTPRouteGroup",
        namespaced,
        no_spec
    )]
    #[kube(
        shortname = "htr",
        doc = "HTTPRouteGroup (SMI v1alpha1) describes HTTP routes."
    )]
    pub struct HTTPRouteGroupFields {
        /// The routes of this group.
        pub matches: Vec<HttpMatch>,
    }

    /// Describes L4 TCP traffic; in v1alpha1 it has no fields and matches every port.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha1",
        kind = "TCPRoute",
        namespaced
    )]
    #[kube(
        shortname = "tr",
        doc = "TCPRoute (SMI v1alpha1) describes TCP traffic."
    )]
    pub struct TCPRouteSpec {}
}

/// Version `v1alpha2`: `matches` moves under `spec`.
pub mod v1alpha2 {
    use super::*;

    /// A named set of HTTP routes that TrafficTargets and TrafficSplits refer to.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha2",
        kind = "HTTPRouteGroup",
        namespaced
    )]
    #[kube(
        shortname = "htr",
        doc = "HTTPRouteGroup (SMI v1alpha2) describes HTTP routes."
    )]
    pub struct HTTPRouteGroupSpec {
        /// The routes of this group.
        pub matches: Vec<HttpMatch>,
    }

    /// Describes L4 TCP traffic; in v1alpha2 it has no fields and matches every port.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha2",
        kind = "TCPRoute",
        namespaced
    )]
    #[kube(
        shortname = "tr",
        doc = "TCPRoute (SMI v1alpha2) describes TCP traffic."
    )]
    pub struct TCPRouteSpec {}
}

/// Version `v1alpha3`: matches gain header filters, written as a list of maps.
pub mod v1alpha3 {
    use super::*;

    /// A named set of HTTP routes that TrafficTargets and TrafficSplits refer to.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha3",
        kind = "HTTPRouteGroup",
        namespaced
    )]
    #[kube(
        shortname = "htr",
        doc = "HTTPRouteGroup (SMI v1alpha3) describes HTTP routes."
    )]
    pub struct HTTPRouteGroupSpec {
        /// The routes of this group.
        pub matches: Vec<HttpMatchWithHeaders>,
    }

    /// Describes L4 TCP traffic; in v1alpha3 it has no fields and matches every port.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha3",
        kind = "TCPRoute",
        namespaced
    )]
    #[kube(
        shortname = "tr",
        doc = "TCPRoute (SMI v1alpha3) describes TCP traffic."
    )]
    pub struct TCPRouteSpec {}
}

/// Version `v1alpha4`: header filters become a map, and TCPRoute can name ports.
pub mod v1alpha4 {
    use super::*;

    /// A named set of HTTP routes that TrafficTargets and TrafficSplits refer to.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha4",
        kind = "HTTPRouteGroup",
        namespaced
    )]
    #[kube(
        shortname = "htr",
        doc = "HTTPRouteGroup (SMI v1alpha4) describes HTTP routes."
    )]
    pub struct HTTPRouteGroupSpec {
        /// The routes of this group.
        pub matches: Vec<HttpMatchWithHeaders>,
    }

    /// Describes L4 TCP traffic on a list of ports.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "specs.smi-spec.io",
        version = "v1alpha4",
        kind = "TCPRoute",
        namespaced
    )]
    #[kube(
        shortname = "tr",
        doc = "TCPRoute (SMI v1alpha4) describes TCP traffic."
    )]
    pub struct TCPRouteSpec {
        /// The ports this route matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub matches: Option<TcpMatch>,
    }

    /// The ports a v1alpha4 TCPRoute matches.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
    pub struct TcpMatch {
        /// Matching ports; every port of the service when empty.
        #[serde(default)]
        pub ports: Vec<i32>,
    }

    /// Header filters as v1alpha4 writes them.
    pub type HeaderFilters = BTreeMap<String, String>;
}
