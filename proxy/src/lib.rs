//! Weir's data plane: an HTTP gateway that enforces SMI TrafficSplits and access control,
//! and applies Weir's TrafficPolicies (timeouts, retries, circuit breaking, faults).
//!
//! ```text
//!  config source ──► Index (apply/delete/reset) ──► Arc<Snapshot> ──watch──┐
//!  (file | kube)       + Registry (runtime state)                          ▼
//!  client ──► server ──► Route ─► Authorize ─► Deadline ─► Faults ─► Retry ─► Balance ─► Forward ──► endpoint
//!            (h1/h2c)   (edge)    TrafficTarget  timeout    TrafficPolicy      breaker,   pooled
//!                                                                              p2c-ewma   client
//! ```
//!
//! The decision code ([`host`], [`snapshot`], [`pick`], [`balance`], [`breaker`], [`policy`],
//! [`index`]) is pure: no sockets, and the time and randomness are arguments. The tower layers
//! in [`stack`] wrap it for the data path.

pub mod admin;
pub mod app;
pub mod balance;
pub mod breaker;
pub mod error;
pub mod host;
pub mod index;
pub mod metrics;
pub mod pick;
pub mod policy;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod stack;
pub mod state;

#[cfg(test)]
mod fixtures;
