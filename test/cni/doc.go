// Package cni holds the flannel CNI plugin test (make e2e): kubeup's plugin, with the reference
// bridge and host-local plugins built from source, wires a real network namespace to a bridge
// inside a second namespace that stands in for the node, so the host's network is never touched.
package cni
