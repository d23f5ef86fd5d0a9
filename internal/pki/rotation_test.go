package pki_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/pki"
)

// Starting a rotation makes a new CA beside each of the three, 0600, and touches none of the
// bundle's own files; the new CAs are real CAs with the old names and new keys.
func TestStartRotation(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	before := snapshot(t, dir)
	r, started, err := pki.StartRotation(dir, cfg, time.Now())
	if err != nil || !started || !r.InProgress() {
		t.Fatalf("StartRotation: %+v %v %v", r, started, err)
	}
	after := snapshot(t, dir)
	for rel := range after {
		if !strings.HasPrefix(rel, pki.RotationDir) {
			continue
		}
		if after[rel].info.Mode().IsRegular() {
			checkMode(t, filepath.Join(dir, rel), 0o600)
		} else if after[rel].info.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", rel, after[rel].info.Mode().Perm())
		}
		delete(after, rel)
	}
	assertUnchanged(t, before, after)
	news, err := pki.RotationCAs(dir)
	if err != nil || len(news) != 3 {
		t.Fatalf("RotationCAs: %d %v", len(news), err)
	}
	for _, n := range news {
		c := parseCert(t, string(n.CA), n.Cert)
		old := certFile(t, dir, string(n.CA))
		k, _ := parseKey(t, string(n.CA), n.Key)
		if !c.IsCA || c.Subject.CommonName != old.Subject.CommonName || !samePublicKey(c.PublicKey, k.Public()) {
			t.Errorf("%s: new CA %v (IsCA %v) does not match its key or the old CA's name %v", n.CA, c.Subject, c.IsCA, old.Subject)
		}
		if bytes.Equal(c.RawSubjectPublicKeyInfo, old.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: the new CA has the old key", n.CA)
		}
	}
}

// Starting again while the rotation is in progress is a no-op: the same rotation, no new key,
// no file touched. A run that stopped after making some keys is resumed with those keys.
func TestStartRotationAgainIsNoOp(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	first, _, err := pki.StartRotation(dir, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	again, started, err := pki.StartRotation(dir, cfg, time.Now().Add(time.Hour))
	if err != nil || started || again.ID != first.ID {
		t.Fatalf("second start: %+v started=%v %v; want the first rotation %s, not started again", again, started, err, first.ID)
	}
	assertUnchanged(t, before, snapshot(t, dir))

	// A start that stopped after writing one key and nothing else.
	dir2, _ := newBundle(t, cfg, pki.Options{})
	keyPEM := readFile(t, dir, pki.RotationDir+"/pki/ca.key")
	os.MkdirAll(filepath.Join(dir2, pki.RotationDir, "pki", "etcd"), 0o700)
	if err := os.WriteFile(filepath.Join(dir2, pki.RotationDir, "pki", "ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, started, err := pki.StartRotation(dir2, cfg, time.Now()); err != nil || !started {
		t.Fatalf("resume: %v", err)
	}
	if got := readFile(t, dir2, pki.RotationDir+"/pki/ca.key"); !bytes.Equal(got, keyPEM) {
		t.Error("the resumed start replaced the key it had already made")
	}
	news, _ := pki.RotationCAs(dir2)
	k, _ := parseKey(t, "ca.key", keyPEM)
	if !samePublicKey(parseCert(t, "ca.crt", news[0].Cert).PublicKey, k.Public()) {
		t.Error("the new CA certificate is not for the key made before the stop")
	}
}

// A damaged bundle is no place to start a rotation: the error says what is wrong, nothing is
// created.
func TestStartRotationRefusesDamagedBundle(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	os.Remove(filepath.Join(dir, "pki/front-proxy-client.crt"))
	_, _, err := pki.StartRotation(dir, cfg, time.Now())
	if err == nil || !strings.Contains(err.Error(), "pki/front-proxy-client.crt") {
		t.Fatalf("StartRotation on a damaged bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, pki.RotationDir)); err == nil {
		t.Error("a rotation directory was created anyway")
	}
}

// Finishing makes the new CAs the bundle's, re-issues every leaf and kubeconfig from them with
// the same keys, keeps every replaced file as .old, and leaves a bundle that Load accepts.
// Finishing again changes nothing; a new start afterwards archives the finished rotation.
func TestFinishRotation(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	if _, err := pki.FinishRotation(dir, cfg, time.Now()); err == nil {
		t.Error("finishing with no rotation started did not fail")
	}
	r, _, err := pki.StartRotation(dir, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	news, _ := pki.RotationCAs(dir)
	oldCA := readFile(t, dir, "pki/ca.crt")
	oldKey := readFile(t, dir, "pki/ca.key")
	apiPub := certFile(t, dir, "apiserver").PublicKey
	changed, err := pki.FinishRotation(dir, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3+len(pki.RenewableNames(cfg))-1 {
		t.Errorf("changed %v: want the 3 CAs and every leaf and kubeconfig", changed)
	}
	b, err := pki.Load(dir, cfg)
	if err != nil {
		t.Fatalf("Load after finishing: %v", err)
	}
	for _, n := range news {
		if !bytes.Equal(b.File("pki/"+string(n.CA)+".crt"), n.Cert) || !bytes.Equal(b.File("pki/"+string(n.CA)+".key"), n.Key) {
			t.Errorf("%s is not the new CA", n.CA)
		}
	}
	if !samePublicKey(certFile(t, dir, "apiserver").PublicKey, apiPub) {
		t.Error("the apiserver certificate got a new key")
	}
	// Load checks every certificate against its CA, so the old CA is gone from every chain;
	// the old CA itself is kept as a copy.
	var keptCert, keptKey bool
	entries, _ := os.ReadDir(filepath.Join(dir, "pki"))
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, "pki", e.Name()))
		keptCert = keptCert || strings.HasPrefix(e.Name(), "ca.crt.") && bytes.Equal(data, oldCA)
		keptKey = keptKey || strings.HasPrefix(e.Name(), "ca.key.") && bytes.Equal(data, oldKey)
	}
	if !keptCert || !keptKey {
		t.Errorf("the old CA was not kept as a copy (cert %v, key %v)", keptCert, keptKey)
	}
	done, _ := pki.ReadRotation(dir)
	if done.InProgress() || done.ID != r.ID {
		t.Errorf("rotation after finishing: %+v", done)
	}

	before := snapshot(t, dir)
	if changed, err := pki.FinishRotation(dir, cfg, time.Now()); err != nil || len(changed) != 0 {
		t.Errorf("second finish: %v %v, want nothing changed", changed, err)
	}
	assertUnchanged(t, before, snapshot(t, dir))

	next, started, err := pki.StartRotation(dir, cfg, time.Now().Add(2*time.Second))
	if err != nil || !started || next.ID == r.ID {
		t.Fatalf("a new rotation after a finished one: %+v %v %v", next, started, err)
	}
	if _, err := os.Stat(filepath.Join(dir, pki.RotationDir+"."+r.ID, "state.json")); err != nil {
		t.Errorf("the finished rotation was not archived: %v", err)
	}
}

// A leaf can be re-issued under a trust bundle whose first CA signs and whose others issued
// it (how a rotation moves leaves to the new CA); a CA outside the bundle is still refused.
func TestReissueUnderTrustBundle(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	if _, _, err := pki.StartRotation(dir, cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	news, _ := pki.RotationCAs(dir)
	leaf := readFile(t, dir, "pki/apiserver.crt")
	if _, err := pki.Reissue(leaf, news[0].Cert, news[0].Key, time.Now(), time.Hour); err == nil {
		t.Error("Reissue under a CA that did not issue the leaf, without the old CA in the bundle, succeeded")
	}
	bundle := append(append([]byte{}, news[0].Cert...), readFile(t, dir, "pki/ca.crt")...)
	out, err := pki.Reissue(leaf, bundle, news[0].Key, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := parseCert(t, "reissued", out).CheckSignatureFrom(parseCert(t, "new CA", news[0].Cert)); err != nil {
		t.Errorf("the re-issued leaf is not signed by the new CA: %v", err)
	}
}
