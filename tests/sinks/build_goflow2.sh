#!/usr/bin/env bash
# Build goflow2 (BSD-3-Clause), the real IPFIX collector the IPFIX sink tests send to, from the Go module
# proxy into a cache folder reused across runs. Called by `make goflow2`, and by tests/sinks/goflow2.py when
# the binary is missing. Prints the binary's path as its last line.
#
#   GOFLOW2_VERSION  module version of github.com/netsampler/goflow2/v2 (default below)
#   FLOWLAKE_CACHE   cache root (default /var/cache/flowlake); the binary lands in
#                    $FLOWLAKE_CACHE/goflow2/$VERSION/goflow2
#
# A second run finds the binary and exits at once. About 20 s on two cores; CGO off (pure Go).
set -euo pipefail

VERSION="${GOFLOW2_VERSION:-v2.2.6}"
DIR="${FLOWLAKE_CACHE:-/var/cache/flowlake}/goflow2/${VERSION}"
BIN="${DIR}/goflow2"

if [ -x "${BIN}" ]; then
  echo "${BIN}"
  exit 0
fi
command -v go >/dev/null || { echo "build_goflow2.sh: go not found; install Go >= 1.23" >&2; exit 1; }
mkdir -p "${DIR}"
work="$(mktemp -d "${DIR}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
echo "building goflow2 ${VERSION} into ${DIR} (first time only)" >&2
GOBIN="${work}" CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local \
  go install -trimpath -ldflags="-s -w" "github.com/netsampler/goflow2/v2/cmd/goflow2@${VERSION}"
mv -f "${work}/goflow2" "${BIN}"  # same folder: the rename is atomic, a reader never sees half a binary
echo "${BIN}"
