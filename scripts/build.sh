#!/usr/bin/env bash
# Builds bin/vaultcrux with version, commit and build time stamped in, as
# /build-info and `vaultcrux version` report them.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p bin
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=${version} -X main.commit=${commit} -X main.builtAt=${built}" \
  -o bin/vaultcrux ./cmd/vaultcrux
echo "bin/vaultcrux ${version} (${commit})"
