// Package agent is what runs on every machine after Ignition: it reports each phase's progress
// (serial console, the PXE server's report endpoint, Kubernetes events) and, on the master,
// bootstraps the cluster (RBAC, token, cluster-info, add-ons by server-side apply) and approves
// kubelet-serving CSRs. This file set so far holds its configuration, the contract between
// ignition-gen, which writes it, and the agent, which reads it.
package agent
