package machine

import (
	"os"
	"path/filepath"
	"testing"
)

// The kernel link is followed inside the image, never onto the build host's own files.
func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1"), []byte("kernel"), 0o644)
	os.Symlink("boot/vmlinuz-6.1", filepath.Join(root, "vmlinuz"))
	os.Symlink("/boot/vmlinuz-6.1", filepath.Join(root, "abs"))
	os.Symlink("/etc/hostname-of-the-host-not-there", filepath.Join(root, "escape"))
	for _, p := range []string{"vmlinuz", "abs"} {
		got, err := ResolveIn(root, p)
		if err != nil || got != filepath.Join(root, "boot/vmlinuz-6.1") {
			t.Errorf("%s: %s, %v", p, got, err)
		}
	}
	if _, err := ResolveIn(root, "escape"); err == nil {
		t.Error("a link out of the image resolved")
	}
}
