package fsutil_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"kubeup.dev/kubeup/internal/fsutil"
)

// names lists the entries of dir, sorted, so a test sees any temporary file left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func checkFile(t *testing.T, path, want string, perm fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Errorf("%s holds %q, want %q", path, data, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), perm)
	}
}

func TestCreateFileCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")
	if err := fsutil.CreateFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "secret", 0o600)
	if got := names(t, dir); !slices.Equal(got, []string{"ca.key"}) {
		t.Errorf("directory holds %v, want only ca.key (no temporary files)", got)
	}
}

// The mode is the one asked for, whatever the umask: 0644 is not narrowed, 0600 not widened.
func TestCreateFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, perm := range []fs.FileMode{0o600, 0o640, 0o644} {
		path := filepath.Join(dir, perm.String())
		if err := fsutil.CreateFile(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, "x", perm)
	}
}

func TestCreateFileRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")
	if err := fsutil.CreateFile(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	err = fsutil.CreateFile(path, []byte("second"), 0o644)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file = %v, want fs.ErrExist", err)
	}
	if !errors.Is(err, fsutil.ErrExists) {
		t.Errorf("error %v is not fsutil.ErrExists", err)
	}
	checkFile(t, path, "first", 0o600)
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("the existing file was replaced or touched")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"ca.key"}) {
		t.Errorf("directory holds %v after the refused write, want only ca.key", got)
	}
}

// Any name that is taken is refused, not only a regular file: a directory or a dangling link.
func TestCreateFileRefusesTakenNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"d", "link"} {
		if err := fsutil.CreateFile(filepath.Join(dir, name), []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
			t.Errorf("CreateFile(%s) = %v, want fs.ErrExist", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CreateFile wrote through the dangling link")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"d", "link"}) {
		t.Errorf("directory holds %v, want only d and link", got)
	}
}

func TestCreateFileInMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	err := fsutil.CreateFile(filepath.Join(dir, "missing", "ca.key"), []byte("x"), 0o600)
	if err == nil {
		t.Fatal("CreateFile into a missing directory succeeded")
	}
	if errors.Is(err, fs.ErrExist) {
		t.Errorf("error %v claims the file exists", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("directory holds %v, want nothing", got)
	}
}

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apiserver.crt")
	if err := fsutil.ReplaceFile(path, []byte("new"), 0o600); err != nil {
		t.Fatalf("ReplaceFile of a missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.ReplaceFile(path, []byte("newer"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "newer", 0o600)
	if got := names(t, dir); !slices.Equal(got, []string{"apiserver.crt"}) {
		t.Errorf("directory holds %v, want only apiserver.crt", got)
	}
}

func TestWriteFileKeepsUnchangedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.ign")
	if err := fsutil.WriteFile(path, []byte("config"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFile(path, []byte("config"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("WriteFile replaced a file whose content was already right")
	}
	// Other content, or another mode, is written.
	if err := fsutil.WriteFile(path, []byte("config"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "config", 0o600)
	if err := fsutil.WriteFile(path, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "other", 0o600)
	if got := names(t, dir); !slices.Equal(got, []string{"master.ign"}) {
		t.Errorf("directory holds %v, want only master.ign", got)
	}
}

func TestMkdirAllTightensExistingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "pki")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}
