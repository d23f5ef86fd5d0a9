#!/usr/bin/env bash
# Builds the small userlands some images need besides their own binary, from Debian's packages
# (the only distribution source reachable), into the cache, and prints the directory holding one
# root filesystem per set:
#   busybox   busybox-static, with cp and sh: the flannel images' init containers run cp
#   iptables  iptables (nft backend) and the libraries it needs: flanneld and kube-proxy call it
# Each set is keyed by its packages' versions, so a Debian update makes a new set.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/userland"

declare -A sets=(
  [busybox]="busybox-static"
  [iptables]="iptables libip4tc2 libip6tc2 libxtables12 libmnl0 libnetfilter-conntrack3 libnfnetlink0 libnftnl11 libc6 libgcc-s1 conntrack"
)

# versions PKG...: pkg=version for each, from apt's lists (updated once if they are empty).
versions() {
  local out
  out=$(apt-cache policy "$@" 2>/dev/null | awk '/^[a-z0-9]/{p=$1} /Candidate:/{print p $2}')
  if [ -z "$out" ] || echo "$out" | grep -q '(none)'; then
    log "updating apt's package lists"
    apt-get update -qq >/dev/null
    out=$(apt-cache policy "$@" | awk '/^[a-z0-9]/{p=$1} /Candidate:/{print p $2}')
  fi
  echo "$out"
}

build_set() {
  local name=$1; shift
  log "building userland $name from Debian packages: $*"
  mkdir debs
  (cd debs && apt-get -o APT::Sandbox::User=root download "$@" >/dev/null)
  mkdir -p out
  for d in debs/*.deb; do dpkg-deb -x "$d" out; done
  # Documentation is no use in an image.
  rm -rf out/usr/share/doc out/usr/share/man out/usr/share/info out/usr/share/locale out/usr/share/lintian
  case $name in
    busybox)
      for a in cp sh cat ls mkdir; do ln -sf busybox "out/bin/$a"; done ;;
    iptables)
      # Debian sets these with update-alternatives at install time; here there is no install.
      for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        ln -sf xtables-nft-multi "out/usr/sbin/$t"
      done ;;
  esac
}

for name in busybox iptables; do
  read -r -a pkgs <<<"${sets[$name]}"
  key=$(versions "${pkgs[@]}" | sha256sum | cut -c1-12)
  cached "$cache/$name-$key" build_set "$name" "${pkgs[@]}"
  ln -sfn "$name-$key" "$cache/$name"
  versions "${pkgs[@]}" > "$cache/$name-$key.packages"
done
echo "$cache"
