// Package cli tests kubeup's commands as a user runs them: the built binaries (kubeup,
// ignition-gen, kubeup-agent, the Packer plugin) with their version stamped, their exit codes,
// `-o json|yaml` documents that parse, and `kubeup kubeconfig --merge` read back by the real
// kubectl. What needs a running API server (verify, certs status, tokens list against a real
// control plane) is in test/controlplane.
package cli
