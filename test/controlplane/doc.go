// Package controlplane holds the control-plane test: real etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, built from source at the pinned version, started
// on loopback with the command lines of the static pod manifests that the real Ignition wrote
// from the generated master config. Phase 3's exit criteria, TLS bootstrap with a node config's
// credentials, the agent and `kubeup verify` are checked against it with client-go.
package controlplane
