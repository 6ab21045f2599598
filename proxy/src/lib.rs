//! Weir proxy: the data plane.
