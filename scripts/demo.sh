#!/usr/bin/env bash
# Builds every binary in release mode (the demo runs weir-operator, weir-proxy and
# kubectl-weir from target/release), then runs the demo. Arguments go to weir-demo
# (--keep-running, --dir DIR, --update-timeout SECS, --metrics-source traffic-metrics|prometheus|auto).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
exec target/release/weir-demo "$@"
