#!/usr/bin/env bash
# Builds the pinned third-party tools the tests run for real, into a cache outside the repo keyed
# by version, and prints the path of the requested tool. Reused when present; written atomically
# (built into a temp dir, then renamed), so an interrupted build never leaves a half tool behind.
#
#   hack/tools.sh ignition        -> .../ignition-v2.26.0/ignition (also ignition-apply, ignition-validate)
#   hack/tools.sh staticcheck     -> .../staticcheck-v0.8.2/staticcheck
#   hack/tools.sh containerd      -> /usr/bin/containerd (Debian's package, installed when missing)
set -euo pipefail

IGNITION_VERSION=v2.26.0
STATICCHECK_VERSION=v0.8.2

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/tools"
mkdir -p "$cache"

log() { printf 'tools: %s\n' "$*" >&2; }

# need_pkg installs Debian packages that a build needs, once; CI machines start with only Go and gcc.
need_pkg() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_ignition() {
  local dir="$cache/ignition-$IGNITION_VERSION"
  if [ -x "$dir/ignition" ]; then echo "$dir/ignition"; return; fi
  need_pkg libblkid-dev pkg-config
  log "building ignition $IGNITION_VERSION from the module proxy (about 4 minutes cold)"
  local tmp; tmp=$(mktemp -d "$cache/.ignition.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  (
    cd "$tmp"
    go mod init kubeup.dev/tools/ignition >/dev/null 2>&1
    go get "github.com/coreos/ignition/v2/internal@$IGNITION_VERSION" \
      "github.com/coreos/ignition/v2/validate@$IGNITION_VERSION" 2>&1 | grep -v '^go: ' >&2 || true
    local ldflags="-X github.com/coreos/ignition/v2/internal/version.Raw=$IGNITION_VERSION"
    ldflags+=" -X github.com/coreos/ignition/v2/internal/distro.selinuxRelabel=false"
    CGO_ENABLED=1 go build -trimpath -ldflags "$ldflags" -o out/ignition github.com/coreos/ignition/v2/internal
    CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/coreos/ignition/v2/internal/version.Raw=$IGNITION_VERSION" \
      -o out/ignition-validate github.com/coreos/ignition/v2/validate
    # ignition dispatches on argv[0]: ignition-apply is the same binary under another name.
    ln -s ignition out/ignition-apply
  )
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  echo "$dir/ignition"
}

build_staticcheck() {
  local dir="$cache/staticcheck-$STATICCHECK_VERSION"
  if [ -x "$dir/staticcheck" ]; then echo "$dir/staticcheck"; return; fi
  log "building staticcheck $STATICCHECK_VERSION"
  local tmp; tmp=$(mktemp -d "$cache/.staticcheck.XXXXXX")
  GOBIN="$tmp" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$dir/staticcheck"
}

# containerd is Debian's (1.6): the bundle import test runs a private instance of it.
install_containerd() {
  need_pkg containerd runc
  command -v containerd
}

case "${1:-}" in
  ignition) build_ignition ;;
  staticcheck) build_staticcheck ;;
  containerd) install_containerd ;;
  *) echo "usage: hack/tools.sh ignition|staticcheck|containerd" >&2; exit 2 ;;
esac
