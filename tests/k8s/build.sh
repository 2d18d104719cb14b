#!/usr/bin/env bash
# Build kube-apiserver and etcd from sources on the Go module proxy, for the tests in tests/k8s/.
#
# Called by `make k8s-apiserver` (CI) and by hand; tests/k8s/conftest.py finds the binaries in
# ${FLOWLAKE_CACHE:-/var/cache/flowlake}/k8s/<version>/bin. A second run with the binaries present
# does nothing. Needs only `go` (>= the version in k8s.io/kubernetes' go.mod) and GOPROXY access.
# Measured on 2 vCPUs: ~7 min cold; ~0.55 GB of modules and ~3 GB of Go build cache while building,
# kept in $CACHE/go and deleted afterwards (KEEP_GO_CACHE=1 keeps them); the binaries are 138 MB.
#
# Why not `go install k8s.io/kubernetes/cmd/kube-apiserver@vX`: k8s.io/kubernetes' go.mod replaces
# every k8s.io/* staging module with ./staging/src/..., and a module zip leaves nested modules out,
# so those directories do not exist. We copy the module, point each replace at the same staging
# module as published on the proxy (k8s.io/api v0.<minor>.<patch>, ...), and build in the copy.
# etcd's server module has replace directives too; we build its main package from a tiny module
# that requires it (replace directives of dependencies are ignored there).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.0}"
CACHE="${FLOWLAKE_CACHE:-/var/cache/flowlake}/k8s/${K8S_VERSION}"
BIN="$CACHE/bin"

if [[ -x "$BIN/kube-apiserver" && -x "$BIN/etcd" ]]; then
  echo "k8s test binaries already built in $BIN"
  exit 0
fi
# Any Go >= 1.21 should do: GOTOOLCHAIN=auto (set below) fetches the Go release k8s.io/kubernetes'
# go.mod asks for (go 1.26.0 for v1.37) through the module proxy when the local one is older.
command -v go >/dev/null || { echo "go not found: install Go >= 1.21 (https://go.dev/dl/) and put it on PATH" >&2; exit 1; }

started=$(date +%s)
mkdir -p "$BIN"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=auto
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"  # private: removed below, nothing else grows
staging="v0.${K8S_VERSION#v1.}"  # v1.37.2 -> v0.37.2, the tag of every published staging module

# -- kube-apiserver ----------------------------------------------------------------------------
if [[ ! -x "$BIN/kube-apiserver" ]]; then
  dir=$(cd "$CACHE" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$dir" ]] || { echo "go mod download k8s.io/kubernetes@$K8S_VERSION gave no directory" >&2; exit 1; }
  src="$CACHE/src"
  rm -rf "$src" && mkdir -p "$src"
  # Only what the build reads: go.mod/go.sum and the Go packages (skips docs, test data, vendor).
  (cd "$dir" && tar cf - go.mod go.sum cmd pkg plugin third_party) | tar xf - -C "$src"
  chmod -R u+w "$src"
  # `k8s.io/x => ./staging/src/k8s.io/x`  ->  `k8s.io/x => k8s.io/x v0.M.P`, only for modules the
  # main module requires (sample-* are replaced but never required, and not all are published).
  required=$(sed -n 's/^\s*\(k8s\.io\/[a-z0-9-]*\) v0\.0\.0\( \/\/ indirect\)\{0,1\}$/\1/p' "$src/go.mod")
  awk -v v="$staging" -v req="$required" '
    BEGIN { n = split(req, r, "\n"); for (i = 1; i <= n; i++) want[r[i]] = 1 }
    /=> \.\/staging\/src\// { if ($1 in want) print "\t" $1 " => " $1 " " v; next }
    { print }' "$src/go.mod" > "$src/go.mod.new"
  mv "$src/go.mod.new" "$src/go.mod"
  (cd "$src" && go build -trimpath -o "$BIN/kube-apiserver" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
                -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" ./cmd/kube-apiserver)
  rm -rf "$src"
fi

# -- etcd --------------------------------------------------------------------------------------
if [[ ! -x "$BIN/etcd" ]]; then
  mod="$CACHE/etcd-build"
  rm -rf "$mod" && mkdir -p "$mod"
  (cd "$mod" && go mod init flowlake.local/etcdbuild >/dev/null 2>&1 \
      && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
      && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$mod"
fi

echo "built kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION into $BIN in $(( $(date +%s) - started ))s"
if [[ "${KEEP_GO_CACHE:-0}" != 1 ]]; then
  du -sh "$CACHE/go" | sed 's/^/Go caches used: /'
  chmod -R u+w "$CACHE/go" && rm -rf "$CACHE/go"  # module files are read-only
fi
du -sh "$BIN"
