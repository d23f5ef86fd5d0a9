// Package carotation replaces a cluster's CAs with new ones without a moment in which anything
// is trusted by nobody: a period of dual trust (old and new CA in every trust file), every leaf
// moved to the new CA one component at a time, the controller-manager's signer switched so
// kubelet certificates follow, and only then the old CA dropped. The operator's side
// (kubeup certs rotate-ca) makes the new CAs in the secrets bundle and hands them to the
// master's agent in a kube-system Secret; the agent (Master) moves the master through the
// stages and reports each one on that Secret. docs/ca-rotation.md is the user's guide.
package carotation
