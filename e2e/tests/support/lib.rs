//! What the end-to-end tests share. Each test file includes it with
//! `#[path = "support/lib.rs"] mod support;` (a file directly under `tests/` would be a
//! test target of its own), and uses the parts it needs:
//!
//! - [`eventually`]: the one way to wait for a state;
//! - [`cluster`]: an API server and simulator on loopback blocks no other process holds;
//! - [`binaries`]: the binaries the current build produced, checked to be current;
//! - [`apiserver`]: raw requests to the local API server;
//! - [`operator`]: the CRDs, the in-process controller and the test Rollout;
//! - [`client_pod`]: a client Pod that TrafficTargets allow, sending traffic from its IP;
//! - [`gateway`]: the operator's namespace gateway: its admin port and its live config;
//! - [`api_tap`]: a proxy in front of the API server that acts on chosen requests.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod api_tap;
pub mod apiserver;
pub mod binaries;
pub mod client_pod;
pub mod cluster;
pub mod eventually;
pub mod gateway;
pub mod kubectl;
pub mod operator;

pub use eventually::{eventually, seen};
