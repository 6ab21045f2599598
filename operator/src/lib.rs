//! Weir's operator: the Rollout controller, the TrafficMetrics API server and the
//! `kubectl-weir` plugin. The controller arrives with the operator issue; this crate
//! holds its place in the workspace.
