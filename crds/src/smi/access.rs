//! `access.smi-spec.io` TrafficTarget, versions v1alpha1 to v1alpha3.

use crate::smi::{IdentityBindingSubject, TrafficTargetRule};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version `v1alpha1`: `destination`, `specs` and `sources` sit at the top level.
pub mod v1alpha1 {
    use super::*;

    /// Allows traffic from some sources to a destination, on some routes.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "access.smi-spec.io",
        version = "v1alpha1",
        kind = "TrafficTarget",
        namespaced,
        no_spec
    )]
    #[kube(
        shortname = "tt",
        doc = "TrafficTarget (SMI v1alpha1) grants access to a destination."
    )]
    pub struct TrafficTargetFields {
        /// The identity traffic is allowed to reach.
        pub destination: IdentityBindingSubject,
        /// The routes allowed; nothing is allowed when empty.
        #[serde(default)]
        pub specs: Vec<TrafficTargetRule>,
        /// The identities allowed to send the traffic.
        #[serde(default)]
        pub sources: Vec<IdentityBindingSubject>,
    }
}

/// Version `v1alpha2`: the fields move under `spec` and `specs` becomes `rules`.
pub mod v1alpha2 {
    use super::*;

    /// Allows traffic from some sources to a destination, on some routes.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "access.smi-spec.io",
        version = "v1alpha2",
        kind = "TrafficTarget",
        namespaced
    )]
    #[kube(
        shortname = "tt",
        doc = "TrafficTarget (SMI v1alpha2) grants access to a destination."
    )]
    pub struct TrafficTargetSpec {
        /// The identity traffic is allowed to reach.
        pub destination: IdentityBindingSubject,
        /// The routes allowed; nothing is allowed when empty.
        #[serde(default)]
        pub rules: Vec<TrafficTargetRule>,
        /// The identities allowed to send the traffic.
        #[serde(default)]
        pub sources: Vec<IdentityBindingSubject>,
    }
}

/// Version `v1alpha3`: the same shape as v1alpha2.
pub mod v1alpha3 {
    use super::*;

    /// Allows traffic from some sources to a destination, on some routes.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
    #[kube(
        group = "access.smi-spec.io",
        version = "v1alpha3",
        kind = "TrafficTarget",
        namespaced
    )]
    #[kube(
        shortname = "tt",
        doc = "TrafficTarget (SMI v1alpha3) grants access to a destination."
    )]
    pub struct TrafficTargetSpec {
        /// The identity traffic is allowed to reach.
        pub destination: IdentityBindingSubject,
        /// The routes allowed; nothing is allowed when empty.
        #[serde(default)]
        pub rules: Vec<TrafficTargetRule>,
        /// The identities allowed to send the traffic.
        #[serde(default)]
        pub sources: Vec<IdentityBindingSubject>,
    }
}
