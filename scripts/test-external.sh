#!/usr/bin/env bash
# Runs the tests that need something outside this repository: today, kubelet-only mode
# (`weir-local-cluster --kubelet-only`) against a real API server with a real
# kube-controller-manager. Fails when that cluster is not given.
#
# Usage: WEIR_E2E_KUBECONFIG=/path/to/kubeconfig scripts/test-external.sh [nextest args]
#
# The cluster must let this machine's 127.0.0.0/8 pod IPs through: pods get loopback IPs,
# which a real API server accepts in Pod status (EndpointSlices reject them, so only the
# control plane is exercised). The test creates and deletes a namespace weir-e2e-<pid>
# and a Node weir-sim-<pid>.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WEIR_E2E_KUBECONFIG:-}" ]; then
  echo "WEIR_E2E_KUBECONFIG is not set: name the kubeconfig of a real cluster with a kube-controller-manager" >&2
  exit 1
fi
if [ ! -r "$WEIR_E2E_KUBECONFIG" ]; then
  echo "WEIR_E2E_KUBECONFIG=$WEIR_E2E_KUBECONFIG is not a readable file" >&2
  exit 1
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
cargo build --workspace --bins --quiet
cargo nextest run -p weir-e2e --profile ci --test external_kubelet_only --run-ignored only "$@"
