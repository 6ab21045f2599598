#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, doc, component and end-to-end.
# Tests that need a cluster outside this repository are in scripts/test-external.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
# First: the end-to-end tests start weir-proxy and weir-operator from target/, and refuse
# a binary older than its sources (e2e/tests/support/binaries.rs).
cargo build --workspace --bins --quiet
cargo test --workspace --doc --quiet
cargo nextest run --workspace --profile ci "$@"
