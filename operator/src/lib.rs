//! Weir's operator: the Rollout controller, the TrafficMetrics API server and the
//! `kubectl-weir` plugin.
//!
//! - [`plan`]: the pure planner, `plan(&Rollout, &Observed, now) -> Plan`, which holds
//!   every rule of the v1→v2 workflow. The controller around it gathers `Observed`,
//!   applies the plan's actions, writes its status and records its Events.
//! - [`analysis`]: metrics sources (TrafficMetrics, Prometheus) that return figures, and the
//!   [`analysis::Analyst`] that hands them to the pure [`plan::judge`].
//! - [`plugin`]: `kubectl weir`, which shows a Rollout and steers it through the same
//!   status protocol.
//!
//! For example, a first revision, with nothing in the cluster yet, gets its Deployment and
//! Service and a split giving it all traffic, and waits for its pods:
//!
//! ```
//! use k8s_openapi::jiff::Timestamp;
//! use weir_crds::{Rollout, rollout::Phase};
//! use weir_operator::plan::{Action, Observed, plan, template_hash};
//!
//! let rollout: Rollout = serde_yaml::from_str(
//!     "apiVersion: weir.dev/v1alpha1
//! kind: Rollout
//! metadata: {name: foobar, namespace: default}
//! spec:
//!   replicas: 2
//!   selector: {matchLabels: {app: foobar}}
//!   template:
//!     metadata: {labels: {app: foobar}}
//!     spec: {containers: [{name: app, image: weir-demo:v1}]}",
//! )?;
//! let observed = Observed {
//!     template_hash: rollout.spec.template.as_ref().map(template_hash).unwrap_or_default(),
//!     ..Observed::default()
//! };
//! let p = plan(&rollout, &observed, Timestamp::from_second(1_700_000_000)?);
//! assert!(p.actions.contains(&Action::EnsureRevision { revision: 1, replicas: 2 }));
//! assert!(p.actions.contains(&Action::WriteSplit { backends: vec![("foobar-v1".into(), 100)] }));
//! assert_eq!(p.status.phase, Some(Phase::Progressing));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod access;
pub mod analysis;
pub mod children;
pub mod controller;
pub mod metrics;
pub mod metrics_api;
pub mod plan;
pub mod plugin;
