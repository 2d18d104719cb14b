#!/usr/bin/env bash
# Build VictoriaLogs (Apache-2.0), the Loki-protocol receiver the Loki sink tests push to, from the Go
# module proxy into a cache folder reused across runs. Called by `make victorialogs`, .ci/run and, when the
# binary is missing, by tests/sinks/victorialogs.py. Prints the binary's path as its last line.
#
#   VICTORIALOGS_VERSION  module version (default below; v1.52.1 needs Go >= 1.26.5)
#   FLOWLAKE_CACHE        cache root (default /var/cache/flowlake); the binary lands in
#                         $FLOWLAKE_CACHE/victorialogs/$VERSION/victoria-logs
#
# A second run finds the binary and exits at once. CGO is off: the pure-Go build needs no C toolchain and
# links in about a minute less.
set -euo pipefail

VERSION="${VICTORIALOGS_VERSION:-v1.52.1}"
DIR="${FLOWLAKE_CACHE:-/var/cache/flowlake}/victorialogs/${VERSION}"
BIN="${DIR}/victoria-logs"

if [ -x "${BIN}" ]; then
  echo "${BIN}"
  exit 0
fi
command -v go >/dev/null || { echo "build_victorialogs.sh: go not found; install Go >= 1.26.5" >&2; exit 1; }
mkdir -p "${DIR}"
work="$(mktemp -d "${DIR}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
echo "building VictoriaLogs ${VERSION} into ${DIR} (first time only; a few minutes on 2 cores)" >&2
started=$(date +%s)
GOBIN="${work}" CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local \
  go install -trimpath -ldflags="-s -w" "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@${VERSION}"
mv -f "${work}/victoria-logs" "${BIN}"  # same folder: the rename is atomic, a reader never sees half a binary
echo "built in $(( $(date +%s) - started ))s" >&2
echo "${BIN}"
