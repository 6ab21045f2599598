#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, component and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cargo nextest run --workspace --profile ci "$@"
cargo test --workspace --doc --quiet
