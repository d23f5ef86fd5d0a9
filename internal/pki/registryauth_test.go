package pki_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/pki"
)

const mirrorBlock = "registries:\n  - registry: docker.io\n    mirrors: [https://mirror.example.internal:5000]\nmachines:"

// A mirror's credentials are kept 0600 and read back by Load; dropping the last one removes the
// file; a changed credential replaces the file, an unchanged one does not touch it.
func TestRegistryAuthKeptAndRead(t *testing.T) {
	cfg := loadConfig(t, "machines:", mirrorBlock)
	dir, _ := newBundle(t, cfg, pki.Options{})
	c := &pki.RegistryCredential{Username: "puller", Password: "p:a ss"}
	if changed, err := pki.SetRegistryAuth(dir, "mirror.example.internal:5000", c); err != nil || !changed {
		t.Fatalf("SetRegistryAuth: %v, %v", changed, err)
	}
	path := filepath.Join(dir, pki.RegistryAuthFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want mode 0600", path, err)
	}
	b, err := pki.Load(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.RegistryAuth["mirror.example.internal:5000"]; got != *c {
		t.Errorf("Load read %+v, want %+v", got, *c)
	}
	if got := b.RegistryAuthFor(cfg.Registries[0]); got["https://mirror.example.internal:5000"] != *c {
		t.Errorf("RegistryAuthFor: %v", got)
	}
	if got, want := c.BasicAuth(), "Basic cHVsbGVyOnA6YSBzcw=="; got != want {
		t.Errorf("BasicAuth() = %q, want %q", got, want)
	}
	if changed, err := pki.SetRegistryAuth(dir, "mirror.example.internal:5000", c); err != nil || changed {
		t.Errorf("the same credential again: changed %v, %v", changed, err)
	}
	if changed, err := pki.SetRegistryAuth(dir, "mirror.example.internal:5000", nil); err != nil || !changed {
		t.Fatalf("drop: %v, %v", changed, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the last credential dropped: %s still there (%v)", path, err)
	}
	if changed, err := pki.SetRegistryAuth(dir, "mirror.example.internal:5000", nil); err != nil || changed {
		t.Errorf("dropping what is not there: changed %v, %v", changed, err)
	}
}

// Credentials for a mirror the config does not name are a conflict that names the command to
// drop them; a file that does not parse names itself; neither changes anything.
func TestRegistryAuthRefused(t *testing.T) {
	cfg := loadConfig(t, "machines:", mirrorBlock)
	dir, _ := newBundle(t, cfg, pki.Options{})
	if _, err := pki.SetRegistryAuth(dir, "old-mirror.example.internal", &pki.RegistryCredential{Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	_, err := pki.Ensure(dir, cfg, pki.Options{Progress: noProgress(t), ConfigPath: "local.yaml"})
	ce := conflictError(t, err)
	if len(ce.Conflicts) != 1 || !strings.Contains(ce.Conflicts[0], "kubeup registry logout old-mirror.example.internal --config local.yaml") {
		t.Errorf("conflicts %q, want the logout command", ce.Conflicts)
	}
	path := filepath.Join(dir, pki.RegistryAuthFile)
	if err := os.WriteFile(path, []byte(`{"auths": {"mirror.example.internal:5000": {"auth": "bm9jb2xvbg=="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Load(dir, cfg); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "kubeup registry login mirror.example.internal:5000") {
		t.Errorf("a credential without ':': %v, want an error naming %s and the fix", err, path)
	}
	if _, err := pki.SetRegistryAuth(dir, "mirror.example.internal:5000", &pki.RegistryCredential{Username: "u", Password: "p"}); err == nil {
		t.Error("SetRegistryAuth replaced a file it could not read")
	}
	assertUnchanged(t, without(before, pki.RegistryAuthFile), without(snapshot(t, dir), pki.RegistryAuthFile))
}
