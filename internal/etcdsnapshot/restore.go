package etcdsnapshot

import (
	"fmt"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Member is the etcd member a restored data directory is made for: the name and peer URL the
// master's etcd static pod runs with (manifests.EtcdPeerURL), since etcd reads its membership
// from its data, not from its flags, once the data directory exists.
type Member struct {
	Name    string
	PeerURL string
}

// RevisionBump is how far a restore moves etcd's revision past the snapshot's, with every older
// revision marked compacted. The cluster's clients (the kubelets, the controllers, every
// informer) hold resource versions from before the loss, which can be newer than the snapshot's:
// with the revision moved past them, their watches end as "too old" and they list again, rather
// than wait for revisions that were lost or read other objects under them. The amount is the
// one Kubernetes' etcd operations guide gives.
const RevisionBump = 1_000_000_000

// clusterToken is etcd's default --initial-cluster-token, which the master's etcd runs with.
const clusterToken = "etcd-cluster"

// Restore makes a new etcd data directory dir (absent or empty) from the snapshot at path,
// for a one-member cluster of member. The snapshot's SHA-256 trailer is checked first.
func Restore(path, dir string, member Member) error {
	if err := Check(path); err != nil {
		return err
	}
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        path,
		Name:                member.Name,
		OutputDataDir:       dir,
		PeerURLs:            []string{member.PeerURL},
		InitialCluster:      member.Name + "=" + member.PeerURL,
		InitialClusterToken: clusterToken,
		RevisionBump:        RevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return fmt.Errorf("restore %s into %s: %w", path, dir, err)
	}
	return nil
}
