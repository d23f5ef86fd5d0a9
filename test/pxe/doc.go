// Package pxe is the network-boot end-to-end test (make e2e, as root): QEMU machines with no
// disk image boot from `kubeup pxe serve` over a host bridge, with the site's own DHCP server (a
// plain dnsmasq in a network namespace), pxe/dnsmasq.sh in proxy-DHCP mode and QEMU's iPXE ROM,
// and form a cluster whose every phase passes; the server is restarted while the machines
// fetch, a made-up token gets a 404 and a log line, and kubeup status shows the agents' reports.
package pxe
