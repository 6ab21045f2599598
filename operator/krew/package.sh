#!/usr/bin/env bash
# Packs kubectl-weir for krew. Builds the release binary for this machine, archives it as
# target/krew/kubectl-weir-<os>-<arch>.tar.gz, then writes target/krew/weir.yaml from
# operator/krew/weir.yaml with the version and the sha256 of every archive present in
# target/krew (archives built on other machines can be copied there first).
#   operator/krew/package.sh            all four platforms must be present
#   operator/krew/package.sh --host     the manifest lists only the archives present
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/target/krew"
host_only=false
[ "${1:-}" = "--host" ] && host_only=true

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac

cargo build --release --manifest-path "$root/Cargo.toml" -p weir-operator --bin kubectl-weir
mkdir -p "$out/stage"
cp "$root/target/release/kubectl-weir" "$out/stage/"
tar -C "$out/stage" -czf "$out/kubectl-weir-$os-$arch.tar.gz" kubectl-weir
rm -r "$out/stage"

manifest="$(sed "s/@VERSION@/$version/g" "$root/operator/krew/weir.yaml")"
for platform in linux-amd64 linux-arm64 darwin-amd64 darwin-arm64; do
  archive="$out/kubectl-weir-$platform.tar.gz"
  if [ -f "$archive" ]; then
    sha="$(sha256sum "$archive" | cut -d' ' -f1)"
    manifest="${manifest//@SHA256:$platform@/$sha}"
  elif $host_only; then
    # Drop this platform's entry: the five lines from its selector to its bin.
    manifest="$(printf '%s\n' "$manifest" | awk -v p="$platform" '
      /^  - selector:/ { block = $0; getline; block = block "\n" $0
        split(p, a, "-"); if ($0 ~ "os: " a[1] ", arch: " a[2]) { skip = 4; next }
        print block; next }
      skip > 0 { skip--; next } { print }')"
  else
    echo "no archive for $platform in $out: build it there, or pass --host" >&2
    exit 1
  fi
done
if printf '%s\n' "$manifest" | grep -q '@SHA256:'; then
  echo "a sha256 was left unfilled" >&2
  exit 1
fi
printf '%s\n' "$manifest" > "$out/weir.yaml"
echo "wrote $out/weir.yaml and $out/kubectl-weir-$os-$arch.tar.gz"
