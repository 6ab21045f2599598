//! Weir's operator: the Rollout controller, the TrafficMetrics API server and the
//! `kubectl-weir` plugin.
//!
//! - [`plan`]: the pure planner, `plan(&Rollout, &Observed, now) -> Plan`, which holds
//!   every rule of the v1→v2 workflow. The controller around it gathers `Observed`,
//!   applies the plan's actions, writes its status and records its Events.

pub mod checks;
pub mod children;
pub mod controller;
pub mod metrics;
pub mod plan;
