#!/usr/bin/env bash
# Runs dnsmasq (Debian's dnsmasq-base) so machines on a network boot from `kubeup pxe serve`:
# legacy PXE firmware is chainloaded into iPXE over TFTP (Debian's ipxe package: undionly.kpxe,
# ipxe.efi), and iPXE is sent to the server's /boot.ipxe over HTTP.
#
#   pxe/dnsmasq.sh --interface IF --server http://10.20.0.2:8080 --proxy 10.20.0.0
#       proxy-DHCP (the usual case, as matchbox documents it): the network's own DHCP server
#       keeps handing out addresses; dnsmasq only adds the boot options. Nothing to change on
#       the existing DHCP server.
#   pxe/dnsmasq.sh --interface IF --server URL --range 10.30.0.50,10.30.0.150 [--router 10.30.0.1]
#       a DHCP server of its own, for a network that has none (a lab, the e2e's private bridge).
#
# Other options: --state DIR (config, leases and pid file; default /run/kubeup-dnsmasq-IF),
# --foreground. It prints the config it runs and the pid file.
set -euo pipefail
iface="" server="" proxy="" range="" router="" state="" foreground=""
while [ $# -gt 0 ]; do
  case "$1" in
    --interface) iface=$2; shift 2 ;;
    --server) server=${2%/}; shift 2 ;;
    --proxy) proxy=$2; shift 2 ;;
    --range) range=$2; shift 2 ;;
    --router) router=$2; shift 2 ;;
    --state) state=$2; shift 2 ;;
    --foreground) foreground=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "pxe/dnsmasq.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$iface" ] && [ -n "$server" ] || { echo "pxe/dnsmasq.sh: --interface and --server are required (see --help)" >&2; exit 2; }
if { [ -n "$proxy" ] && [ -n "$range" ]; } || { [ -z "$proxy" ] && [ -z "$range" ]; }; then
  echo "pxe/dnsmasq.sh: give exactly one of --proxy SUBNET and --range FIRST,LAST" >&2; exit 2
fi
case "$server" in http://*) ;; *) echo "pxe/dnsmasq.sh: --server must be the server's http:// URL (iPXE fetches /boot.ipxe from it)" >&2; exit 2 ;; esac

missing=()
for p in dnsmasq-base ipxe; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "pxe/dnsmasq.sh: install ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

state=${state:-/run/kubeup-dnsmasq-$iface}
mkdir -p "$state"
conf="$state/dnsmasq.conf"
{
  echo "# Written by pxe/dnsmasq.sh: network boot into kubeup pxe serve ($server)."
  echo "port=0"                       # no DNS: only DHCP (and TFTP for legacy PXE)
  echo "interface=$iface"
  echo "bind-interfaces"
  echo "log-dhcp"
  echo "dhcp-leasefile=$state/leases"
  echo "enable-tftp"
  echo "tftp-root=/usr/lib/ipxe"
  echo "dhcp-userclass=set:ipxe,iPXE" # iPXE says so in its user class
  if [ -n "$proxy" ]; then
    echo "dhcp-range=$proxy,proxy"
    # Proxy-DHCP answers PXE clients with boot services, not a filename.
    echo "pxe-service=tag:#ipxe,x86PC,\"chainload iPXE\",undionly.kpxe"
    echo "pxe-service=tag:#ipxe,X86-64_EFI,\"chainload iPXE\",ipxe.efi"
    echo "pxe-service=tag:ipxe,x86PC,\"kubeup\",$server/boot.ipxe"
    echo "pxe-service=tag:ipxe,X86-64_EFI,\"kubeup\",$server/boot.ipxe"
  else
    echo "dhcp-range=$range,12h"
    [ -n "$router" ] && echo "dhcp-option=option:router,$router"
    echo "dhcp-match=set:efi64,option:client-arch,7"
    echo "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe"
    echo "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi"
    echo "dhcp-boot=tag:ipxe,$server/boot.ipxe"
  fi
} >"$conf"
echo "pxe/dnsmasq.sh: $conf:" >&2
sed 's/^/  /' "$conf" >&2
if [ -n "$foreground" ]; then
  exec dnsmasq --conf-file="$conf" --keep-in-foreground --log-facility=-
fi
dnsmasq --conf-file="$conf" --pid-file="$state/dnsmasq.pid" --log-facility="$state/dnsmasq.log"
echo "$state/dnsmasq.pid"
