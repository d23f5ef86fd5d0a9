package etcdsnapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"kubeup.dev/kubeup/internal/fsutil"
)

// fakeSnapshot writes a bbolt database laid out as etcd's (a key bucket keyed by revision) and
// appends the SHA-256 trailer etcd's snapshot stream ends with. The real thing is saved from a
// running etcd by the control-plane test.
func fakeSnapshot(t *testing.T, revs ...uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		for _, r := range revs {
			k := make([]byte, 17)
			binary.BigEndian.PutUint64(k, r)
			k[8] = '_'
			if err := b.Put(k, []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || db.Close() != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(path, append(data, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckAndRevision(t *testing.T) {
	path := fakeSnapshot(t, 7, 412, 30)
	if err := Check(path); err != nil {
		t.Fatal(err)
	}
	if rev, err := Revision(path); err != nil || rev != 412 {
		t.Errorf("Revision: %d, %v; want the newest, 412", rev, err)
	}
	data, _ := os.ReadFile(path)
	data[100] ^= 1
	os.WriteFile(path, data, 0o600)
	if err := Check(path); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a changed byte: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.db")
	os.WriteFile(short, []byte("x"), 0o600)
	if err := Check(short); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a short file: %v", err)
	}
	if _, err := Revision(fakeSnapshot(t)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty key bucket: %v", err)
	}
}

// A stream whose trailer does not match fails the write as it ends: nothing appears at the path.
func TestDamagedStreamLeavesNoFile(t *testing.T) {
	data, err := os.ReadFile(fakeSnapshot(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 1
	path := filepath.Join(t.TempDir(), "out.db")
	v := &verifier{r: bytes.NewReader(data), name: "stream", whole: sha256.New(), db: sha256.New()}
	if err := fsutil.CreateFrom(path, v, 0o600); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("CreateFrom of a damaged stream: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
