#!/usr/bin/env bash
# Builds what `make conformance` runs against a cluster, from source through the Go module
# proxy and from Debian's packages, into a cache outside the repo keyed by release, and prints
# the directory holding them:
#
#   hack/conformance-tools.sh                            -> .../kubeup/conformance/v1.37.2
#   KUBEUP_KUBERNETES=v1.36.3 hack/conformance-tools.sh  -> .../kubeup/conformance/v1.36.3
#     e2e.test   Kubernetes' end-to-end suite (k8s.io/kubernetes/test/e2e) at the release
#     ginkgo     the Ginkgo CLI at the version the suite is built with
#     bin/       what the suite's test images run (go run ./hack/conformance push): agnhost and
#                nnp (test/images), kube-sample-apiserver, etcd at the suite's tag, and links to
#                the bundle's pause and CoreDNS
#     userland/  the Debian package sets under those images, each with its dependencies:
#                agnhost (glibc-dns-testing too), busybox, nginx
#
# The release comes from internal/versions/releases.txt, as hack/toolchain.sh's does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

read -r K8S_VERSION STAGING_VERSION _ < <(release "${KUBEUP_KUBERNETES:-}") || exit 1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup"
out="$cache/conformance/$K8S_VERSION"
# The etcd of the suite's sample-apiserver test: its image tag, 3.7.0-0, built from that release.
SUITE_ETCD_VERSION=v3.7.0

build_suite() {
  log "building e2e.test, ginkgo and the test images' programs for Kubernetes $K8S_VERSION from source"
  kubernetes_module "$K8S_VERSION" "$STAGING_VERSION" k8s.io/kubernetes/test/e2e \
    k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs || return 1
  go_get "k8s.io/sample-apiserver@$STAGING_VERSION" || return 1
  local ld
  ld=$(kubernetes_ldflags "$K8S_VERSION")
  # e2e.test is the test binary of the package test/e2e, versioned as the release's binaries are.
  CGO_ENABLED=0 go test -c -mod=mod -trimpath -ldflags "$ld" -o out/e2e.test k8s.io/kubernetes/test/e2e
  # The CLI at the library's version in the suite's module graph: the two must agree.
  local ginkgo
  ginkgo=$(go list -mod=mod -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)
  go_get "github.com/onsi/ginkgo/v2/ginkgo@$ginkgo" || return 1
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/ginkgo github.com/onsi/ginkgo/v2/ginkgo
  mkdir -p out/bin
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ld" -o out/bin/agnhost k8s.io/kubernetes/test/images/agnhost
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/bin/nnp k8s.io/kubernetes/test/images/nonewprivs
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ld" -o out/bin/kube-sample-apiserver k8s.io/sample-apiserver
}

build_etcd() {
  log "building etcd $SUITE_ETCD_VERSION (the suite's sample-apiserver test runs it)"
  throwaway_module etcd
  go_get "go.etcd.io/etcd/server/v3@$SUITE_ETCD_VERSION" || return 1
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3
}

# The Debian package sets the images stand on, each package with what it depends on (not what
# it recommends): unpacked, not installed, as hack/userland.sh does. Debian's essential packages
# are nobody's dependency, so sh (dash), seq and test (coreutils), grep and sed are named: the
# suite's commands run them, as upstream's Alpine images have them from busybox. The DNS specs'
# probes run getent (libc-bin) in agnhost and glibc-dns-testing.
shell="dash coreutils grep sed"
declare -A sets=(
  [agnhost]="$shell libc-bin bash bind9-dnsutils curl netcat-openbsd iproute2 iputils-ping iperf util-linux socat"
  [busybox]="busybox-static"
  [nginx]="nginx"
)

build_set() {
  local name=$1; shift
  log "building the $name userland from Debian's packages: $* and their dependencies"
  local pkgs
  pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" | grep '^[a-z0-9]' | sort -u)
  mkdir debs
  # shellcheck disable=SC2086
  (cd debs && apt-get -o APT::Sandbox::User=root download $pkgs >/dev/null)
  mkdir -p out
  for d in debs/*.deb; do dpkg-deb -x "$d" out; done
  # The links update-alternatives would make when the packages are configured (nc, awk,
  # which): from each package's postinst, the first provider there is winning, as the
  # suite's commands name them.
  local link target
  for d in debs/*.deb; do
    dpkg-deb -I "$d" postinst 2>/dev/null | sed ':a;/\\$/{N;s/\\\n//;ba}' | tr -s ' \t' '  ' |
      grep -o -- '--\(install\|slave\) [^ ]* [^ ]* [^ ]*' | while read -r _ link _ target; do
      [ -e "out$target" ] && [ ! -e "out$link" ] && [ ! -L "out$link" ] || continue
      mkdir -p "out$(dirname "$link")"
      ln -s "$(realpath --relative-to="out$(dirname "$link")" "out$target")" "out$link"
    done
  done
  # libc-bin's postinst installs its nsswitch.conf (hosts: files, then dns), as an installed
  # Debian has it; glibc's default without one asks DNS first and, answered "not found", never
  # reads /etc/hosts (nsswitch.conf(5)).
  if [ -f out/usr/share/libc-bin/nsswitch.conf ] && [ ! -e out/etc/nsswitch.conf ]; then
    cp out/usr/share/libc-bin/nsswitch.conf out/etc/nsswitch.conf
  fi
  rm -rf out/usr/share/doc out/usr/share/man out/usr/share/info out/usr/share/locale out/usr/share/lintian
  if [ "$name" = busybox ]; then
    # Every applet, as busybox --install would link them, relative so the image needs no host path.
    local a
    for a in $(out/bin/busybox --list-full); do
      [ -e "out/$a" ] && continue
      mkdir -p "out/$(dirname "$a")"
      ln -s "$(realpath --relative-to="out/$(dirname "$a")" out/bin/busybox)" "out/$a"
    done
  fi
}

cached "$out/suite" build_suite
cached "$cache/conformance/etcd-$SUITE_ETCD_VERSION" build_etcd
for name in "${!sets[@]}"; do
  read -r -a pkgs <<<"${sets[$name]}"
  key=$({ apt-cache policy "${pkgs[@]}"; declare -f build_set; } | sha256sum | cut -c1-12) # the recipe too
  cached "$cache/conformance/userland/$name-$key" build_set "$name" "${pkgs[@]}"
  mkdir -p "$out/userland"
  ln -sfn "$cache/conformance/userland/$name-$key" "$out/userland/$name"
done
# One directory of the images' programs, the bundle's pause and CoreDNS beside them (the
# bundle's build makes both, cached).
hack="$(dirname "$0")"
bundle_bins="$cache/bundle-bins/$K8S_VERSION"
[ -x "$bundle_bins/pause" ] || KUBEUP_KUBERNETES=$K8S_VERSION "$hack/bundle.sh" >/dev/null
mkdir -p "$out/bin"
for f in "$out/suite/bin/"*; do ln -sfn "$f" "$out/bin/$(basename "$f")"; done
ln -sfn "$cache/conformance/etcd-$SUITE_ETCD_VERSION/etcd" "$out/bin/etcd"
ln -sfn "$bundle_bins/pause" "$out/bin/pause"
ln -sfn "$("$hack/components.sh")/coredns" "$out/bin/coredns"
ln -sfn "$out/suite/e2e.test" "$out/e2e.test"
ln -sfn "$out/suite/ginkgo" "$out/ginkgo"
echo "$out"
