// Package cluster holds the end-to-end test of the product: `kubeup up` brings a cluster up in
// QEMU VMs from the baked image with no SSH, every phase's exit criteria pass, and the cluster
// survives a master reboot and a node power cycle. Run with `make e2e` (full) or `make smoke`
// (1 master + 1 node, no faults: what CI runs).
package cluster
