//! Weir e2e: the local control plane, the workload simulator and end-to-end tests.
