// Package provider is the seam between kubeup's one bring-up flow and the places its machines
// run. Each target (the subpackages qemu, aws, vsphere and metal) implements Provider, and
// `kubeup up`, `status` and `down`, and an upgrade's machine replacement, call only this
// interface, in the same order on every target: Prepare, then the secrets bundle and the
// rendered configs, Deliver, Create, Machines until every machine is Ready, then the phases'
// checks through the host-reachable kubeconfig.
package provider
