// Package etcdsnapshot saves consistent snapshots of a cluster's etcd to the host, with no SSH:
// the host reaches the etcd static pod through the API server's port-forward, and talks to it
// with the secrets bundle's etcd healthcheck-client certificate. A snapshot is the one copy of
// the cluster's state that survives losing the master's disks, so it is written like a secret:
// 0600, and only once it is whole. Restore turns one back into an etcd data directory for the
// master's member, which a provider puts on the master's new etcd volume.
package etcdsnapshot
