//! A client Pod for traffic through a gateway (moved to `weir_e2e::client_pod`, which the
//! demo shares).

pub use weir_e2e::client_pod::*;
