//! Weir e2e.
pub mod apiserver;
pub mod demo_app;
pub mod loadgen;
pub mod simulator;
