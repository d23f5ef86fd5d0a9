# Shared by the hack/ build scripts: logging, Debian packages, and cached builds.
# shellcheck shell=bash

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }

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

# cached DIR FN ARGS...: unless DIR holds a finished build, runs FN ARGS... in a fresh temp
# directory next to DIR, where FN leaves its results in ./out; then moves ./out to DIR. An
# interrupted build leaves no DIR, so the next run starts over instead of using half a build.
cached() {
  local dir=$1; shift
  [ -f "$dir/.done" ] && return 0
  mkdir -p "$(dirname "$dir")"
  local tmp; tmp=$(mktemp -d "$(dirname "$dir")/.build.XXXXXX")
  (cd "$tmp" && mkdir out && "$@") || { rm -rf "$tmp"; return 1; }
  touch "$tmp/out/.done"
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
}

# throwaway_module NAME: a go.mod for building other modules' commands with our replace lines.
throwaway_module() { printf 'module kubeup.dev/build/%s\n\ngo 1.26\n' "$1" > go.mod; }

# go_get ARGS...: go get quietly, and loudly on failure.
go_get() { GOFLAGS=-mod=mod go get "$@" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "$@"; }

# release [VERSION]: prints "KUBERNETES STAGING ETCD" for a release in internal/versions/releases.txt
# (the default release, its first, without VERSION or with an empty one); fails naming the
# releases there for any other.
release() {
  local file table row
  file="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/internal/versions/releases.txt"
  table=$(grep -v -e '^#' -e '^\s*$' "$file")
  if [ -z "${1:-}" ]; then
    row=$(head -n1 <<<"$table")
  else
    row=$(awk -v v="$1" '$1 == v' <<<"$table")
  fi
  if [ -z "$row" ]; then
    log "Kubernetes $1 is not a release kubeup brings up: use one of $(cut -d' ' -f1 <<<"$table" | tr '\n' ' ')(internal/versions/releases.txt)"
    return 1
  fi
  awk '{print $1, $2, $3}' <<<"$row"
}

# kubernetes_module VERSION STAGING PKG...: a throwaway module that builds packages of
# k8s.io/kubernetes at VERSION, with its staging modules pinned to STAGING.
kubernetes_module() {
  local version=$1 staging=$2; shift 2
  throwaway_module kubernetes
  echo "require k8s.io/kubernetes $version" >> go.mod
  # k8s.io/kubernetes points its staging modules at ./staging: pin each to its release instead.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "replace ("
    sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$staging"'|p' "$gomod"
    echo ")"
  } >> go.mod
  # At the release: a bare package path means @upgrade, the newest Kubernetes, whose imports the
  # older release's staging modules do not have.
  go_get "${@/%/@$version}"
}

# kubernetes_ldflags VERSION: without these the binaries call themselves v0.0.0-master; a fixed
# build date keeps them reproducible.
kubernetes_ldflags() {
  local ld="-s -w" p minor
  minor=$(echo "$1" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$1 -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}
