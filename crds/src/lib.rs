//! Weir's API: the types of every custom resource Weir defines or reads, with no I/O.
//!
//! - [`rollout`]: `Rollout` (`weir.dev/v1alpha1`), the user's request for a progressive delivery.
//! - [`policy`]: `TrafficPolicy` (`weir.dev/v1alpha1`), resilience settings for the proxy.
//! - [`smi`]: every SMI version Weir accepts, as written in the specifications.
//! - [`model`]: one version-free model that every SMI version normalises into.
//! - [`crdgen`]: the CRD manifests, generated from these types.
//! - [`duration`] and [`quantity`]: the parsers for durations and SMI weights.

pub mod crdgen;
pub mod duration;
pub mod model;
pub mod policy;
pub mod quantity;
pub mod reference;
pub mod rollout;
pub mod schema;
pub mod smi;

pub use policy::{TrafficPolicy, TrafficPolicySpec};
pub use rollout::{Rollout, RolloutSpec, RolloutStatus};
