#!/usr/bin/env bash
# Builds what `make conformance` runs against a cluster, from source through the Go module
# proxy, into a cache outside the repo keyed by release, and prints the directory holding them:
#
#   hack/conformance-tools.sh                            -> .../kubeup/conformance/v1.37.2
#   KUBEUP_KUBERNETES=v1.36.3 hack/conformance-tools.sh  -> .../kubeup/conformance/v1.36.3
#     e2e.test  Kubernetes' end-to-end suite (k8s.io/kubernetes/test/e2e) at the release
#     ginkgo    the Ginkgo CLI at the version the suite is built with
#
# The release comes from internal/versions/releases.txt, as hack/toolchain.sh's does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

read -r K8S_VERSION STAGING_VERSION _ < <(release "${KUBEUP_KUBERNETES:-}") || exit 1
out="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/conformance/$K8S_VERSION"

build() {
  log "building e2e.test and ginkgo for Kubernetes $K8S_VERSION from source"
  kubernetes_module "$K8S_VERSION" "$STAGING_VERSION" k8s.io/kubernetes/test/e2e || return 1
  # e2e.test is the test binary of the package test/e2e, versioned as the release's binaries are.
  CGO_ENABLED=0 go test -c -mod=mod -trimpath -ldflags "$(kubernetes_ldflags "$K8S_VERSION")" \
    -o out/e2e.test k8s.io/kubernetes/test/e2e
  # The CLI at the library's version in the suite's module graph: the two must agree.
  local ginkgo
  ginkgo=$(go list -mod=mod -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)
  go_get "github.com/onsi/ginkgo/v2/ginkgo@$ginkgo" || return 1
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/ginkgo github.com/onsi/ginkgo/v2/ginkgo
}

cached "$out" build
echo "$out"
