#!/usr/bin/env bash
# Installs what Weir's tests, demo and benchmarks need on a fresh Debian machine, and
# nothing that is already there. Usage: scripts/install-deps.sh [test|bench]
set -euo pipefail

mode="${1:-test}"
# command -> Debian package
declare -A test_pkgs=([prometheus]=prometheus)
declare -A bench_pkgs=([wrk]=wrk [nginx]=nginx [haproxy]=haproxy [h2load]=nghttp2-client)

missing=()
add_missing() {
  local -n pkgs=$1
  local cmd
  for cmd in "${!pkgs[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkgs[$cmd]}")
  done
}
add_missing test_pkgs
[ "$mode" = bench ] && add_missing bench_pkgs

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v kubectl >/dev/null 2>&1 || {
  echo "kubectl is not on PATH; the end-to-end tests drive Weir with the real kubectl" >&2
  exit 1
}
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
