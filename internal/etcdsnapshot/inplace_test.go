package etcdsnapshot

import (
	"os"
	"path/filepath"
	"testing"
)

// A snapshot that fails its check replaces nothing: the member stays as it was, and nothing
// else is left in the data directory. (The control-plane test restores a real one in place.)
func TestRestoreInPlaceKeepsTheMemberOnFailure(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, []byte("not a snapshot, and no trailer either, but long enough to have one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if kept, err := RestoreInPlace(bad, dir, Member{Name: "master", PeerURL: "https://10.0.0.1:2380"}); err == nil || kept {
		t.Fatalf("a damaged snapshot: kept %v, %v; want an error", kept, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "member" {
		t.Errorf("the data directory holds %v after a failed restore, want the member alone", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "member", "snap")); err != nil {
		t.Errorf("the member changed: %v", err)
	}
}
