//! Weir e2e: the local control plane, the workload simulator, the demo app, the load
//! generator, and what the demo and the end-to-end tests share.
pub mod apiserver;
pub mod client_pod;
pub mod demo;
pub mod demo_app;
pub mod eventually;
pub mod install;
pub mod loadgen;
pub mod pod_logs;
pub mod prometheus;
pub mod simulator;
