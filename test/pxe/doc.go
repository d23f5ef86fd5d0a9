// Package pxe is the network-boot end-to-end test (make e2e, as root): QEMU machines with no
// disk image boot from `kubeup pxe serve` over a host bridge with dnsmasq (pxe/dnsmasq.sh) and
// QEMU's iPXE ROM, and form a cluster whose every phase passes; the server is restarted while
// the machines fetch, and a wrong token gets a 404 and a log line.
package pxe
