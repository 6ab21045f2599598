#!/usr/bin/env bash
# Builds Weir's images, weir-operator:<version> and weir-proxy:<version>, with docker or
# podman (whichever is on PATH, or $CONTAINER_ENGINE), from operator/Dockerfile and
# proxy/Dockerfile. With --kind NAME, also loads them into that kind cluster; with
# --k3d NAME, imports them into that k3d cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 [--kind CLUSTER | --k3d CLUSTER] [--tag TAG]" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tag=$version
kind_cluster=""
k3d_cluster=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kind) kind_cluster=${2:?}; shift 2 ;;
    --k3d) k3d_cluster=${2:?}; shift 2 ;;
    --tag) tag=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null 2>&1; then engine=$candidate; break; fi
  done
fi
if [ -z "$engine" ]; then
  echo "error: no container engine: install docker or podman, or set CONTAINER_ENGINE" >&2
  exit 1
fi

if ! "$engine" info >/dev/null 2>&1; then
  echo "error: $engine cannot reach its daemon ('$engine info' fails); the Dockerfiles need BuildKit (docker buildx, or podman)" >&2
  exit 1
fi

for name in operator proxy; do
  image="weir-$name:$tag"
  echo "building $image with $engine"
  DOCKER_BUILDKIT=1 "$engine" build -f "$name/Dockerfile" -t "$image" .
  if [ -n "$kind_cluster" ]; then kind load docker-image "$image" --name "$kind_cluster"; fi
  if [ -n "$k3d_cluster" ]; then k3d image import "$image" --cluster "$k3d_cluster"; fi
done
