#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, component and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cargo test --workspace --doc --quiet
# End-to-end tests start the real binaries.
cargo build --workspace --bins --quiet
cargo nextest run --workspace --profile ci "$@"
