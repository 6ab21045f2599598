//! Adoption: a Rollout that takes over a Deployment (and Service) that already runs,
//! instead of creating revision 1 from a template.
//!
//! ```text
//!  spec.workloadRef ──► Deployment deploy-v1 (pods untouched) = revision 1
//!                       Service svc-v1 (or a new <rollout>-v1) = revision 1's Service
//!  status.adoption  ◄── what was taken over, and the names later revisions follow
//! ```

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// An existing Deployment to adopt as revision 1 (as Argo Rollouts' `workloadRef`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// The kind of the workload: only `Deployment` (default).
    #[serde(default = "default_kind")]
    #[schemars(extend("enum" = ["Deployment"]))]
    pub kind: String,
    /// The Deployment's name, in the Rollout's namespace. Its pod template and selector are
    /// never changed, so its pods keep running; a name ending in `-v<N>` makes it revision N
    /// and later revisions follow that name (`deploy-v1` → `deploy-v2`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// An existing Service that selects the Deployment's pods. Ending in `-v<N>` (`svc-v1`), it
    /// becomes revision N's Service and the root Service is the name without the suffix
    /// (`svc`); otherwise (`foobar`) Weir creates `<rollout>-v<N>` for the pods and re-points
    /// this Service to the gateway once the gateway routes to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub service_name: Option<String>,
}

fn default_kind() -> String {
    "Deployment".into()
}

/// What a Rollout adopted, and the names its later revisions follow.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdoptionStatus {
    /// The revision number the adopted Deployment became.
    pub revision: i64,
    /// The adopted Deployment's name.
    pub deployment: String,
    /// The name of the adopted revision's Service (the adopted `svc-v1`, or the `<rollout>-v1` Weir made).
    pub revision_service: String,
    /// Whether the revision Service existed before adoption (it is handed back, not deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revision_service_adopted: bool,
    /// The existing Service Weir re-points to the gateway (`foobar` in the common form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repointed_service: Option<String>,
    /// Later revisions' Deployments are named `<deploymentPrefix>-v<N>`.
    pub deployment_prefix: String,
    /// Later revisions' Services are named `<servicePrefix>-v<N>`.
    pub service_prefix: String,
    /// The pod-template hash of the adopted Deployment when it was adopted.
    pub template_hash: String,
}

/// Splits `name-v<N>` into (`name`, N); None for a name without that suffix.
pub fn split_version(name: &str) -> Option<(&str, i64)> {
    let (stem, n) = name.rsplit_once("-v")?;
    if stem.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0).map(|n| (stem, n))
}
