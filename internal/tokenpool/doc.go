// Package tokenpool keeps a node bootstrap token valid for fleets, and hands the current one to
// whoever puts it into node configs (docs/bootstrap-tokens.md).
//
// A fleet's role config (an Auto Scaling group's launch template, the PXE server's default
// role) is used for as long as the fleet lives, far longer than a bootstrap token should. So
// the master's agent runs a Pool: the bootstrap-token Secrets labelled
// kubeup.dev/token-pool=node, of which it mints a successor whenever the newest has less than a
// share (a third) of its TTL left. Older tokens are left to expire (the controller-manager's
// token cleaner deletes them), so configs already handed out keep working for that overlap.
// The current token is copied to one Secret, kube-system/kubeup-node-token, that only the
// kubeup:token-distributors group may read; the distributors (Source) read it with a client
// certificate issued in memory from the cluster CA for that group and nothing else.
package tokenpool
