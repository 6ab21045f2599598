//! Weir's data plane: an HTTP gateway that enforces SMI TrafficSplits.
//!
//! ```text
//!  config source ──► Index (apply/delete/reset) ──► Arc<Snapshot> ──watch──┐
//!  (file | kube)                                                           ▼
//!  client ──► server (h1/h2c, limits) ──► Metrics ─► Router ─► Balance ─► Forward ──► endpoint
//!                                                     host→split→backend   p2c-ewma   pooled client
//! ```
//!
//! The decision code ([`host`], [`snapshot`], [`pick`], [`balance`], [`index`]) is pure: no
//! sockets, and the time is an argument. The tower layers in [`stack`] wrap it for the data
//! path; access control and resilience slot in as further layers between Router and Forward.

pub mod admin;
pub mod app;
pub mod balance;
pub mod error;
pub mod host;
pub mod index;
pub mod metrics;
pub mod pick;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod stack;

#[cfg(test)]
mod fixtures;
