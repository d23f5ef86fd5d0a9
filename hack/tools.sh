#!/usr/bin/env bash
# Builds the pinned third-party tools the tests run for real, into a cache outside the repo keyed
# by version, and prints the path of the requested tool. Reused when present.
#
#   hack/tools.sh ignition        -> .../ignition-v2.26.0/ignition (also ignition-apply, ignition-validate)
#   hack/tools.sh staticcheck     -> .../staticcheck-v0.8.2/staticcheck
#   hack/tools.sh packer          -> .../packer-v1.9.4/packer
#   hack/tools.sh packer-install  -> .../packer-v1.11.2/packer (only to test `packer plugins install --path`)
#   hack/tools.sh matchbox        -> .../matchbox-v0.11.0/matchbox (make bench's peer for kubeup pxe serve)
#   hack/tools.sh aemm            -> .../aemm-v1.13.0/ec2-metadata-mock (EC2 instance metadata for the AWS first-boot test)
#   hack/tools.sh registry        -> .../registry-v3.1.2/registry (distribution: the mirror make conformance serves images from)
#   hack/tools.sh image-packages  installs (apt) what the kubeup-rootfs builder runs: debootstrap, mkfs.ext4
#   hack/tools.sh e2e-packages    installs (apt) what make e2e runs: containerd, runc, iproute2, ping, QEMU, debootstrap
#   hack/tools.sh qemu            installs (apt) what kubeup up runs: QEMU
set -euo pipefail
. "$(dirname "$0")/lib.sh"

IGNITION_VERSION=v2.26.0
STATICCHECK_VERSION=v0.8.2
# The last MPL release of Packer. It bundles the amazon, vsphere and qemu plugins, so templates for
# those targets validate offline; our own plugin loads from PACKER_PLUGIN_PATH.
PACKER_VERSION=v1.9.4
# `packer plugins install --path` exists only from Packer 1.10 (BUSL-licensed); make test installs
# our plugin with it to prove the documented install works. Templates validate with 1.9.4.
PACKER_INSTALL_VERSION=v1.11.2
MATCHBOX_VERSION=v0.11.0
AEMM_VERSION=v1.13.0
REGISTRY_VERSION=v3.1.2

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/tools"

build_ignition() {
  log "building ignition $IGNITION_VERSION from the module proxy (about 4 minutes cold)"
  throwaway_module ignition
  go_get "github.com/coreos/ignition/v2/internal@$IGNITION_VERSION" "github.com/coreos/ignition/v2/validate@$IGNITION_VERSION"
  local v="-X github.com/coreos/ignition/v2/internal/version.Raw=$IGNITION_VERSION"
  CGO_ENABLED=1 go build -mod=mod -trimpath -ldflags "$v -X github.com/coreos/ignition/v2/internal/distro.selinuxRelabel=false" \
    -o out/ignition github.com/coreos/ignition/v2/internal
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$v" -o out/ignition-validate github.com/coreos/ignition/v2/validate
  # ignition dispatches on argv[0]: ignition-apply is the same binary under another name.
  ln -s ignition out/ignition-apply
}

build_staticcheck() {
  log "building staticcheck $STATICCHECK_VERSION"
  GOBIN="$PWD/out" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
}

# build_packer VERSION
build_packer() {
  log "building packer $1 from the module proxy (about 7 minutes and 2 GB of modules cold)"
  throwaway_module packer
  # go-cty's upstream tag lacks the fork Packer's HCL2 code needs (Packer's own go.mod replaces it too).
  go mod edit -replace github.com/zclconf/go-cty=github.com/nywilken/go-cty@v1.13.3
  go_get "github.com/hashicorp/packer@$1"
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/packer github.com/hashicorp/packer
}

build_aemm() {
  log "building amazon-ec2-metadata-mock $AEMM_VERSION from the module proxy"
  throwaway_module aemm
  go_get "github.com/aws/amazon-ec2-metadata-mock@$AEMM_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/ec2-metadata-mock github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
}

build_registry() {
  log "building distribution (the registry) $REGISTRY_VERSION from the module proxy"
  throwaway_module registry
  go_get "github.com/distribution/distribution/v3@$REGISTRY_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/registry github.com/distribution/distribution/v3/cmd/registry
}

build_matchbox() {
  log "building matchbox $MATCHBOX_VERSION from the module proxy (about 2 minutes cold)"
  throwaway_module matchbox
  go_get "github.com/poseidon/matchbox@$MATCHBOX_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -o out/matchbox github.com/poseidon/matchbox/cmd/matchbox
}

case "${1:-}" in
  ignition)
    need_pkg libblkid-dev pkg-config
    cached "$cache/ignition-$IGNITION_VERSION" build_ignition
    echo "$cache/ignition-$IGNITION_VERSION/ignition" ;;
  staticcheck)
    cached "$cache/staticcheck-$STATICCHECK_VERSION" build_staticcheck
    echo "$cache/staticcheck-$STATICCHECK_VERSION/staticcheck" ;;
  packer)
    cached "$cache/packer-$PACKER_VERSION" build_packer "$PACKER_VERSION"
    echo "$cache/packer-$PACKER_VERSION/packer" ;;
  packer-install)
    cached "$cache/packer-$PACKER_INSTALL_VERSION" build_packer "$PACKER_INSTALL_VERSION"
    echo "$cache/packer-$PACKER_INSTALL_VERSION/packer" ;;
  matchbox)
    cached "$cache/matchbox-$MATCHBOX_VERSION" build_matchbox
    echo "$cache/matchbox-$MATCHBOX_VERSION/matchbox" ;;
  registry)
    cached "$cache/registry-$REGISTRY_VERSION" build_registry
    echo "$cache/registry-$REGISTRY_VERSION/registry" ;;
  aemm)
    # The test runs it and Ignition in a network namespace (unshare, nsenter; ip for its address).
    need_pkg iproute2 util-linux
    cached "$cache/aemm-$AEMM_VERSION" build_aemm
    echo "$cache/aemm-$AEMM_VERSION/ec2-metadata-mock" ;;
  image-packages)
    need_pkg debootstrap e2fsprogs binutils ;;
  e2e-packages)
    # Debian's containerd (1.6): the bundle import test runs a private instance of it;
    # iproute2 and ping: the CNI test wires network namespaces; QEMU boots the image; dnsmasq and
    # iPXE (Debian's) serve the network-boot test.
    need_pkg containerd runc iproute2 iputils-ping qemu-system-x86 qemu-utils debootstrap e2fsprogs dnsmasq-base ipxe ;;
  qemu)
    # What `kubeup up` runs: QEMU and qemu-img for the overlays; nc for qemu.hostForwards.
    need_pkg qemu-system-x86 qemu-utils netcat-openbsd ;;
  *) echo "usage: hack/tools.sh ignition|staticcheck|packer|packer-install|matchbox|aemm|image-packages|e2e-packages|qemu" >&2; exit 2 ;;
esac
