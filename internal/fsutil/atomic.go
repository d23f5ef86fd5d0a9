package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is returned by CreateFile when the target already exists.
var ErrExists = fs.ErrExist

// CreateFile writes data to path with perm, atomically, and only if path does not exist yet.
// The no-overwrite check and the creation are one step (link(2) fails if the name is taken), so
// two concurrent runs cannot both create the same key.
func CreateFile(path string, data []byte, perm fs.FileMode) error {
	return CreateFrom(path, bytes.NewReader(data), perm)
}

// CreateFrom is CreateFile for content read from r, streamed to disk (an etcd snapshot): until
// r is read to its end and the file is synced, nothing is at path.
func CreateFrom(path string, r io.Reader, perm fs.FileMode) error {
	tmp, err := writeTemp(path, r, perm, true)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// ReplaceFile writes data to path with perm atomically, replacing what is there. Only explicit
// operations (certificate renewal) use it; they keep a copy of the old file first.
func ReplaceFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, bytes.NewReader(data), perm, true)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFile writes a derived output file (a rendered config) atomically, replacing any previous
// version, and leaves it untouched when its content is already data (so a re-run changes no
// mtime). Readers never see a partial file, but it is not fsynced: after a crash the worst case
// is a missing output, which the next run, being deterministic, writes again. Skipping the two
// fsyncs per file makes rendering a thousand machines several times faster.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == perm {
			return nil
		}
	}
	tmp, err := writeTemp(path, bytes.NewReader(data), perm, false)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// MkdirAll creates dir and its parents with perm, and tightens dir itself to perm if it exists.
func MkdirAll(dir string, perm fs.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return os.Chmod(dir, perm)
}

// tempPattern names writeTemp's files: hidden, beside the file they replace.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// RemoveTemps removes from dir the temporary files that writes killed half-way left behind
// (their content may be a whole secret). Run it where no other write into dir is under way: that
// write would fail.
func RemoveTemps(dir string) error {
	stale, err := filepath.Glob(filepath.Join(dir, tempPattern("*")))
	if err != nil {
		return err
	}
	for _, f := range stale {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeTemp writes what r holds to a new temporary file beside path, fsynced when sync is set.
func writeTemp(path string, r io.Reader, perm fs.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// Set the mode before any data lands, so a secret is never readable by others, even briefly.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		return fail(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return name, nil
}

// SyncDir makes the entries of dir (a rename or a link into it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
