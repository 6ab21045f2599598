//! The one way the end-to-end tests wait for a state (moved to `weir_e2e::eventually`, which
//! the demo shares).

pub use weir_e2e::eventually::*;
