package pki_test

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/pki"
)

// checkBackup asserts that backup is a 0600 copy of old beside the file rel of the bundle.
func checkBackup(t *testing.T, dir, rel, backup string, old []byte) string {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if filepath.Dir(backup) != filepath.Dir(path) || !strings.HasPrefix(filepath.Base(backup), filepath.Base(path)+".") || !strings.HasSuffix(backup, ".old") {
		t.Errorf("backup %s is not <file>.<time>.old beside %s", backup, path)
	}
	checkMode(t, backup, 0o600)
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, old) {
		t.Errorf("backup %s is not the previous %s", backup, rel)
	}
	got, _ := filepath.Rel(dir, backup)
	return filepath.ToSlash(got)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), want)
	}
}

func TestRenewAPIServerAfterSANChange(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	cfg := loadConfig(t, newSAN...)
	ensureConflicts(t, dir, newSAN, pki.Options{})
	oldCert := readFile(t, dir, "pki/apiserver.crt")
	oldPub := certFile(t, dir, "apiserver").PublicKey
	before := snapshot(t, dir)

	now := time.Now()
	backup, err := pki.Renew(dir, cfg, "apiserver", now)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	backupRel := checkBackup(t, dir, "pki/apiserver.crt", backup, oldCert)
	// Only the certificate changed, and its backup appeared: the key is the same file.
	assertUnchanged(t, without(before, "pki/apiserver.crt"), without(snapshot(t, dir), "pki/apiserver.crt", backupRel))

	c := certFile(t, dir, "apiserver")
	if !samePublicKey(c.PublicKey, oldPub) || !samePublicKey(c.PublicKey, keyFile(t, dir, "apiserver").Public()) {
		t.Errorf("renewed certificate has another key")
	}
	checkMode(t, filepath.Join(dir, "pki", "apiserver.crt"), 0o600)
	w := localLeaves[0]
	w.dns = append(slices.Clone(w.dns), "api.example.com")
	checkLeaf(t, dir, w, c, now)

	// The bundle now matches the new config, and Ensure has nothing to do.
	if _, err := pki.Ensure(dir, cfg, pki.Options{Progress: noProgress(t)}); err != nil {
		t.Errorf("Ensure after renew: %v", err)
	}
}

func TestRenewKubeconfigKeepsKey(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	edits := []string{"endpoint: 10.10.0.10:6443", "endpoint: localhost:16443"}
	cfg := loadConfig(t, edits...)
	old := readKubeconfig(t, dir, "admin.conf")
	oldData := readFile(t, dir, "admin.conf")

	now := time.Now()
	backup, err := pki.Renew(dir, cfg, "admin.conf", now)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	checkBackup(t, dir, "admin.conf", backup, oldData)
	kc := readKubeconfig(t, dir, "admin.conf")
	if !samePublicKey(kc.key.Public(), old.key.Public()) || !samePublicKey(kc.cert.PublicKey, old.key.Public()) {
		t.Errorf("renewed admin.conf has another key")
	}
	if kc.cert.SerialNumber.Cmp(old.cert.SerialNumber) == 0 {
		t.Errorf("renewed admin.conf has the old certificate")
	}
	if kc.server != "https://localhost:16443" {
		t.Errorf("server %q, want https://localhost:16443", kc.server)
	}
	if !bytes.Equal(kc.caPEM, readFile(t, dir, "pki/ca.crt")) {
		t.Errorf("renewed admin.conf embeds another CA than pki/ca.crt")
	}
	checkLeaf(t, dir, certWant{name: "admin.conf", ca: "ca", cn: "kubernetes-admin", orgs: []string{"kubeadm:cluster-admins"}, eku: clientAuth}, kc.cert, now)

	// The other two kubeconfigs on the endpoint still conflict, admin.conf no longer does.
	conflicts := ensureConflicts(t, dir, edits, pki.Options{})
	conflictFor(t, conflicts, "super-admin.conf")
	conflictFor(t, conflicts, "kubelet.conf")
	if len(conflicts) != 2 {
		t.Errorf("conflicts after renewing admin.conf: %q", conflicts)
	}
}

// Every name Renew offers re-issues its certificate for the same key, and the bundle stays
// consistent with Ensure.
func TestRenewEveryCertificate(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	now := time.Now()
	for _, name := range pki.RenewableNames(cfg) {
		if name == pki.BootstrapTokenName {
			continue
		}
		t.Run(name, func(t *testing.T) {
			rel, pub := "pki/"+name+".crt", crypto.PublicKey(nil)
			if strings.HasSuffix(name, ".conf") {
				rel, pub = name, readKubeconfig(t, dir, name).key.Public()
			} else {
				pub = keyFile(t, dir, name).Public()
			}
			old := readFile(t, dir, rel)
			backup, err := pki.Renew(dir, cfg, name, now)
			if err != nil {
				t.Fatalf("Renew: %v", err)
			}
			checkBackup(t, dir, rel, backup, old)
			if bytes.Equal(readFile(t, dir, rel), old) {
				t.Errorf("%s unchanged by Renew", rel)
			}
			if !samePublicKey(certPublicKey(t, dir, name), pub) {
				t.Errorf("renewed %s has another key", name)
			}
		})
	}
	if _, err := pki.Ensure(dir, cfg, pki.Options{Progress: noProgress(t)}); err != nil {
		t.Errorf("Ensure after renewing everything: %v", err)
	}
}

// certPublicKey is the public key of a kubeconfig's client certificate or of a pki/ certificate.
func certPublicKey(t *testing.T, dir, name string) crypto.PublicKey {
	t.Helper()
	if strings.HasSuffix(name, ".conf") {
		return readKubeconfig(t, dir, name).cert.PublicKey
	}
	return certFile(t, dir, name).PublicKey
}

func TestRenewBootstrapToken(t *testing.T) {
	cfg := loadConfig(t, "bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 2h")
	dir, b := newBundle(t, cfg, pki.Options{})
	old := readFile(t, dir, pki.TokenFile)
	later := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	ensureConflicts(t, dir, []string{"bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 2h"}, pki.Options{Now: later})

	backup, err := pki.Renew(dir, cfg, "bootstrap-token", later)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	checkBackup(t, dir, pki.TokenFile, backup, old)
	tok := readToken(t, dir)
	if tok.ID == b.Token.ID || tok.Secret == b.Token.Secret {
		t.Errorf("renewed token %s.%s reuses the old ID or secret", tok.ID, tok.Secret)
	}
	if !tok.Expires.Equal(later.Add(2 * time.Hour)) {
		t.Errorf("renewed token expires %v, want %v", tok.Expires, later.Add(2*time.Hour))
	}
	checkMode(t, filepath.Join(dir, pki.TokenFile), 0o600)
	nb, err := pki.Ensure(dir, cfg, pki.Options{Now: later, Progress: noProgress(t)})
	if err != nil {
		t.Fatalf("Ensure after renew: %v", err)
	}
	if nb.Token != tok {
		t.Errorf("Ensure reads token %+v, want %+v", nb.Token, tok)
	}
}

func TestRenewUnknownNameListsValidNames(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	before := snapshot(t, dir)
	for _, name := range []string{"apiserver.crt", "ca", "sa", "etcd/ca", "nope", ""} {
		_, err := pki.Renew(dir, cfg, name, time.Now())
		if err == nil {
			t.Errorf("Renew(%q) succeeded", name)
			continue
		}
		for _, valid := range []string{"apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
			"etcd/healthcheck-client", "apiserver-etcd-client", "admin.conf", "super-admin.conf", "controller-manager.conf",
			"scheduler.conf", "kubelet.conf", "bootstrap-token"} {
			if !strings.Contains(err.Error(), valid) {
				t.Errorf("Renew(%q) error %q does not list %s", name, err, valid)
			}
		}
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

func TestRenewableNames(t *testing.T) {
	want := []string{"apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
		"etcd/healthcheck-client", "apiserver-etcd-client", "admin.conf", "super-admin.conf", "controller-manager.conf",
		"scheduler.conf", "kubelet.conf", "bootstrap-token"}
	if got := pki.RenewableNames(loadConfig(t)); !sameStrings(got, want) {
		t.Errorf("RenewableNames = %v, want %v", got, want)
	}
}

func TestRenewNeedsTheRightBundle(t *testing.T) {
	cfg := loadConfig(t)
	empty := t.TempDir()
	if _, err := pki.Renew(empty, cfg, "apiserver", time.Now()); err == nil {
		t.Errorf("Renew without a bundle succeeded")
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Renew without a bundle created %d entries", len(entries))
	}
	dir, _ := newBundle(t, cfg, pki.Options{})
	before := snapshot(t, dir)
	if _, err := pki.Renew(dir, loadConfig(t, "name: local", "name: other"), "apiserver", time.Now()); err == nil {
		t.Errorf("Renew with another cluster's config succeeded")
	}
	// A certificate whose key is gone is not renewed (that would need a new key).
	if err := os.Remove(filepath.Join(dir, "pki", "apiserver.key")); err != nil {
		t.Fatal(err)
	}
	before = without(before, "pki/apiserver.key")
	if _, err := pki.Renew(dir, cfg, "apiserver", time.Now()); err == nil || !strings.Contains(err.Error(), "apiserver.key") {
		t.Errorf("Renew without the key: %v, want an error naming pki/apiserver.key", err)
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

func TestRenewTwiceInOneSecondKeepsBothCopies(t *testing.T) {
	dir := t.TempDir()
	cfg := loadConfig(t)
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := pki.Renew(dir, cfg, "apiserver", now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := pki.Renew(dir, cfg, "apiserver", now)
	if err != nil {
		t.Fatalf("second renewal in the same second: %v", err)
	}
	if first == second {
		t.Fatalf("both renewals kept their copy as %s", first)
	}
	for _, p := range []string{first, second} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("copy %s: %v", p, err)
		}
	}
}
