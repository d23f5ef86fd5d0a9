package etcdsnapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"kubeup.dev/kubeup/internal/fsutil"
)

// The names RestoreInPlace uses inside etcd's data directory.
const (
	memberDir = "member"
	// KeptMember is where RestoreInPlace keeps the member it replaced: the data a rollback
	// gives up, kept until the next restore rather than deleted.
	KeptMember     = "member.before-restore"
	restoreScratch = ".kubeup-restore"
)

// RestoreInPlace replaces the member in etcd's data directory dataDir (the master's
// /var/lib/etcd, on its etcd disk) with one restored from the snapshot at path, on the machine,
// before etcd starts: how a master gets a snapshot's data back on a target where kubeup cannot
// write its etcd disk from the host. The snapshot is restored next to the member first, on the
// same filesystem, so a failure leaves the old member in place; then the old member is moved to
// KeptMember and the restored one takes its name. It returns whether a member was kept.
func RestoreInPlace(path, dataDir string, member Member) (kept bool, err error) {
	scratch := filepath.Join(dataDir, restoreScratch)
	// A restore that died part way left its scratch directory: it is started again.
	if err := os.RemoveAll(scratch); err != nil {
		return false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return false, err
	}
	if err := Restore(path, scratch, member); err != nil {
		return false, err
	}
	current := filepath.Join(dataDir, memberDir)
	switch _, err := os.Stat(current); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, err
	default:
		old := filepath.Join(dataDir, KeptMember)
		if err := os.RemoveAll(old); err != nil {
			return false, err
		}
		if err := os.Rename(current, old); err != nil {
			return false, fmt.Errorf("keep the current member: %w", err)
		}
		kept = true
	}
	if err := os.Rename(filepath.Join(scratch, memberDir), current); err != nil {
		return kept, fmt.Errorf("put the restored member in place: %w", err)
	}
	if err := os.RemoveAll(scratch); err != nil {
		return kept, err
	}
	return kept, fsutil.SyncDir(dataDir)
}
