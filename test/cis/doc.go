// Package cis checks the configs kubeup renders against the automatable items of the CIS
// Kubernetes Benchmark (v1.12: master components 1.1-1.4, etcd 2.x, worker node 4.1-4.3),
// item by item, on the master's and a node's Ignition config for configs/local.yaml. An item
// kubeup does not meet is listed with the reason, and docs/security.md must list every item
// with the same status, so a regression or a stale document fails make test.
package cis
