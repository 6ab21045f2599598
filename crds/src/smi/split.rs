//! `split.smi-spec.io` TrafficSplit, versions v1alpha1 to v1alpha4.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version `v1alpha1`: weights are Kubernetes quantities such as `"500m"` or `100`.
pub mod v1alpha1 {
    use super::*;

    /// Splits traffic sent to a root service between backend services.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[kube(
        group = "split.smi-spec.io",
        version = "v1alpha1",
        kind = "TrafficSplit",
        namespaced
    )]
    #[kube(
        shortname = "ts",
        doc = "TrafficSplit (SMI v1alpha1) shifts traffic between services."
    )]
    #[kube(printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"))]
    pub struct TrafficSplitSpec {
        /// The root service that clients use to reach the destination application.
        pub service: String,
        /// The services traffic is divided between, with their relative weights.
        pub backends: Vec<TrafficSplitBackend>,
    }

    /// One backend of a v1alpha1 split.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    pub struct TrafficSplitBackend {
        /// The name of the backend Kubernetes Service.
        pub service: String,
        /// The relative weight, a quantity such as `100`, `"500m"` or `"1"`.
        #[schemars(schema_with = "crate::schema::int_or_string")]
        pub weight: serde_json::Value,
    }
}

/// Version `v1alpha2`: weights are whole numbers.
pub mod v1alpha2 {
    use super::*;

    /// Splits traffic sent to a root service between backend services.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "split.smi-spec.io",
        version = "v1alpha2",
        kind = "TrafficSplit",
        namespaced
    )]
    #[kube(
        shortname = "ts",
        doc = "TrafficSplit (SMI v1alpha2) shifts traffic between services."
    )]
    #[kube(printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"))]
    pub struct TrafficSplitSpec {
        /// The root service that clients use to reach the destination application.
        pub service: String,
        /// The services traffic is divided between, with their relative weights.
        pub backends: Vec<TrafficSplitBackend>,
    }

    /// One backend of a split with a whole-number weight (v1alpha2 and later).
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    pub struct TrafficSplitBackend {
        /// The name of the backend Kubernetes Service.
        pub service: String,
        /// The relative weight; share = weight / sum of weights, and 0 receives nothing.
        #[schemars(range(min = 0))]
        pub weight: i64,
    }
}

/// Version `v1alpha3`: adds `matches`, references to HTTPRouteGroups that select the split traffic.
pub mod v1alpha3 {
    pub use super::v1alpha2::TrafficSplitBackend;
    use super::*;
    use crate::smi::TypedLocalObjectReference;

    /// Splits traffic sent to a root service between backend services.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "split.smi-spec.io",
        version = "v1alpha3",
        kind = "TrafficSplit",
        namespaced
    )]
    #[kube(
        shortname = "ts",
        doc = "TrafficSplit (SMI v1alpha3) shifts traffic between services."
    )]
    #[kube(printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"))]
    pub struct TrafficSplitSpec {
        /// The root service that clients use to reach the destination application.
        pub service: String,
        /// Route groups whose matching requests are split; all requests when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub matches: Vec<TypedLocalObjectReference>,
        /// The services traffic is divided between, with their relative weights.
        pub backends: Vec<TrafficSplitBackend>,
    }
}

/// Version `v1alpha4`: the same shape as v1alpha3, compatible with `specs.smi-spec.io/v1alpha4`.
pub mod v1alpha4 {
    pub use super::v1alpha2::TrafficSplitBackend;
    use super::*;
    use crate::smi::TypedLocalObjectReference;

    /// Splits traffic sent to a root service between backend services.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "split.smi-spec.io",
        version = "v1alpha4",
        kind = "TrafficSplit",
        namespaced
    )]
    #[kube(
        shortname = "ts",
        doc = "TrafficSplit (SMI v1alpha4) shifts traffic between services."
    )]
    #[kube(printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"))]
    pub struct TrafficSplitSpec {
        /// The root service that clients use to reach the destination application.
        pub service: String,
        /// Route groups whose matching requests are split; all requests when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub matches: Vec<TypedLocalObjectReference>,
        /// The services traffic is divided between, with their relative weights.
        pub backends: Vec<TrafficSplitBackend>,
    }
}
