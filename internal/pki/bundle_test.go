package pki_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/pki"
)

func TestBundleFilesAndPermissions(t *testing.T) {
	var created []string
	dir, b := newBundle(t, loadConfig(t), pki.Options{Progress: func(rel string) { created = append(created, rel) }})
	snap := snapshot(t, dir)
	if got := regularFiles(snap); !slices.Equal(got, bundleFiles) {
		t.Errorf("bundle files:\n got %v\nwant %v", got, bundleFiles)
	}
	if got := b.Files(); !slices.Equal(got, bundleFiles) {
		t.Errorf("Bundle.Files() = %v, want %v", got, bundleFiles)
	}
	slices.Sort(created)
	if !slices.Equal(created, bundleFiles) {
		t.Errorf("Progress reported %v, want every file once: %v", created, bundleFiles)
	}
	for rel, st := range snap {
		switch {
		case st.info.IsDir():
			if st.info.Mode().Perm() != 0o700 {
				t.Errorf("directory %s has mode %v, want 0700", rel, st.info.Mode().Perm())
			}
		case st.info.Mode().IsRegular():
			if st.info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", rel, st.info.Mode().Perm())
			}
			if string(b.File(rel)) != string(st.data) {
				t.Errorf("Bundle.File(%s) differs from the file on disk", rel)
			}
		default:
			t.Errorf("%s is neither a file nor a directory (%v)", rel, st.info.Mode())
		}
	}
}

// An existing, too open bundle directory is tightened to 0700.
func TestEnsureTightensDirectories(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Ensure(dir, loadConfig(t), pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "pki"), filepath.Join(dir, "pki", "etcd")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}

var tokenFormat = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

func readToken(t *testing.T, dir string) pki.Token {
	t.Helper()
	var tok pki.Token
	if err := json.Unmarshal(readFile(t, dir, pki.TokenFile), &tok); err != nil {
		t.Fatalf("%s: %v", pki.TokenFile, err)
	}
	if !tokenFormat.MatchString(tok.ID + "." + tok.Secret) {
		t.Errorf("token %q.%q is not in kubeadm format", tok.ID, tok.Secret)
	}
	return tok
}

func TestBootstrapTokenFormatAndTTL(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
		ttl   time.Duration
	}{
		{name: "default 24h", edits: []string{"pki:\n  bootstrapTokenTTL: 24h\n", ""}, ttl: 24 * time.Hour},
		{name: "2h", edits: []string{"bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 2h"}, ttl: 2 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t, tc.edits...)
			now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
			dir, b := newBundle(t, cfg, pki.Options{Now: now})
			tok := readToken(t, dir)
			if !tok.Expires.Equal(now.Add(tc.ttl)) {
				t.Errorf("token expires %v, want now+%v = %v", tok.Expires, tc.ttl, now.Add(tc.ttl))
			}
			if b.Token != tok {
				t.Errorf("Bundle.Token %+v, file %+v", b.Token, tok)
			}
			if !tokenFormat.MatchString(b.Token.String()) {
				t.Errorf("Token.String() = %q, not in kubeadm format", b.Token.String())
			}
		})
	}
	// With the real clock (Options.Now zero) too.
	before := time.Now()
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	if tok := readToken(t, dir); !near(tok.Expires, before.Add(24*time.Hour), time.Minute) {
		t.Errorf("token expires %v, want about %v", tok.Expires, before.Add(24*time.Hour))
	}
}

// Two bundles never share a token.
func TestBootstrapTokensDiffer(t *testing.T) {
	dir1, _ := newBundle(t, loadConfig(t), pki.Options{})
	dir2, _ := newBundle(t, loadConfig(t), pki.Options{})
	if a, b := readToken(t, dir1), readToken(t, dir2); a.ID == b.ID || a.Secret == b.Secret {
		t.Errorf("two bundles share a token ID or secret: %s, %s", a.ID+"."+a.Secret, b.ID+"."+b.Secret)
	}
}

func TestEncryptionConfig(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	var ec apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(readFile(t, dir, pki.EncryptionConfigFile), &ec); err != nil {
		t.Fatalf("%s: %v", pki.EncryptionConfigFile, err)
	}
	if ec.APIVersion != "apiserver.config.k8s.io/v1" || ec.Kind != "EncryptionConfiguration" {
		t.Errorf("apiVersion/kind %s/%s, want apiserver.config.k8s.io/v1 EncryptionConfiguration", ec.APIVersion, ec.Kind)
	}
	var secrets *apiserverv1.ResourceConfiguration
	for i := range ec.Resources {
		if slices.Contains(ec.Resources[i].Resources, "secrets") {
			secrets = &ec.Resources[i]
			break
		}
	}
	if secrets == nil {
		t.Fatalf("no resource entry covers secrets: %+v", ec.Resources)
	}
	if len(secrets.Providers) == 0 {
		t.Fatal("no providers for secrets")
	}
	first := secrets.Providers[0]
	var keys []apiserverv1.Key
	switch {
	case first.Secretbox != nil:
		keys = first.Secretbox.Keys
	case first.AESGCM != nil:
		keys = first.AESGCM.Keys
	case first.AESCBC != nil:
		keys = first.AESCBC.Keys
	default:
		t.Fatalf("first provider for secrets %+v encrypts nothing", first)
	}
	if len(keys) == 0 {
		t.Fatal("first provider for secrets has no key")
	}
	key, err := base64.StdEncoding.DecodeString(keys[0].Secret)
	if err != nil {
		t.Fatalf("key %s: %v", keys[0].Name, err)
	}
	if len(key) != 32 {
		t.Errorf("key %s is %d bytes, want 32", keys[0].Name, len(key))
	}
	if keys[0].Name == "" {
		t.Errorf("key has no name")
	}
	// Every bundle gets its own key.
	dir2, _ := newBundle(t, loadConfig(t), pki.Options{})
	if string(readFile(t, dir, pki.EncryptionConfigFile)) == string(readFile(t, dir2, pki.EncryptionConfigFile)) {
		t.Errorf("two bundles have the same encryption key")
	}
}

func TestAuditPolicy(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	var p auditv1.Policy
	if err := yaml.UnmarshalStrict(readFile(t, dir, pki.AuditPolicyFile), &p); err != nil {
		t.Fatalf("%s: %v", pki.AuditPolicyFile, err)
	}
	if p.APIVersion != "audit.k8s.io/v1" || p.Kind != "Policy" {
		t.Errorf("apiVersion/kind %s/%s, want audit.k8s.io/v1 Policy", p.APIVersion, p.Kind)
	}
	if len(p.Rules) == 0 {
		t.Fatal("policy has no rules")
	}
	// Bodies hold Secrets and tokens: no rule may log them.
	for i, r := range p.Rules {
		if r.Level == auditv1.LevelRequest || r.Level == auditv1.LevelRequestResponse {
			t.Errorf("rule %d logs bodies (level %s)", i, r.Level)
		}
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	cfg := loadConfig(t)
	now := time.Now()
	dir, first := newBundle(t, cfg, pki.Options{Now: now})
	before := snapshot(t, dir)
	// Later, without Now, and with the bundle's own algorithm given explicitly.
	for _, opt := range []pki.Options{
		{Progress: noProgress(t)},
		{Progress: noProgress(t), Now: now.Add(time.Hour), KeyAlgorithm: pki.ECDSAP256},
	} {
		b, err := pki.Ensure(dir, cfg, opt)
		if err != nil {
			t.Fatalf("second Ensure: %v", err)
		}
		assertUnchanged(t, before, snapshot(t, dir))
		if b.Token != first.Token || b.Meta != first.Meta {
			t.Errorf("second Ensure reads token %+v / meta %+v, first made %+v / %+v", b.Token, b.Meta, first.Token, first.Meta)
		}
		for _, rel := range bundleFiles {
			if string(b.File(rel)) != string(before[rel].data) {
				t.Errorf("Bundle.File(%s) differs from the file on disk", rel)
			}
		}
	}
	// Load is the read-only form of a second Ensure.
	if _, err := pki.Load(dir, cfg); err != nil {
		t.Errorf("Load: %v", err)
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

// ensureConflicts runs Ensure with cfg on the bundle in dir, asserts it reports a conflict and
// changes nothing, and returns the conflicts.
func ensureConflicts(t *testing.T, dir string, edits []string, opt pki.Options) []string {
	t.Helper()
	before := snapshot(t, dir)
	opt.Progress = noProgress(t)
	b, err := pki.Ensure(dir, loadConfig(t, edits...), opt)
	ce := conflictError(t, err)
	if b != nil {
		t.Errorf("Ensure returned a bundle together with its conflict error")
	}
	if ce.Dir != dir {
		t.Errorf("ConflictError.Dir %q, want %q", ce.Dir, dir)
	}
	msg := err.Error()
	for _, c := range ce.Conflicts {
		if !strings.Contains(msg, c) {
			t.Errorf("error message does not list conflict %q", c)
		}
	}
	assertUnchanged(t, before, snapshot(t, dir))
	return ce.Conflicts
}

// conflictFor returns the one conflict that starts with rel, failing if there is not exactly one.
func conflictFor(t *testing.T, conflicts []string, rel string) string {
	t.Helper()
	var found []string
	for _, c := range conflicts {
		if strings.HasPrefix(c, rel+":") {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d conflicts for %s, want 1; conflicts:\n%s", len(found), rel, strings.Join(conflicts, "\n"))
	}
	return found[0]
}

var newSAN = []string{"certSANs: [127.0.0.1, localhost]", "certSANs: [127.0.0.1, localhost, api.example.com]"}

func TestConflictNewCertSAN(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	conflicts := ensureConflicts(t, dir, newSAN, pki.Options{ConfigPath: "configs/local.yaml"})
	if len(conflicts) != 1 {
		t.Errorf("conflicts %q, want only pki/apiserver.crt", conflicts)
	}
	c := conflictFor(t, conflicts, "pki/apiserver.crt")
	for _, want := range []string{"api.example.com", "kubeup certs renew apiserver --config configs/local.yaml"} {
		if !strings.Contains(c, want) {
			t.Errorf("conflict %q does not mention %q", c, want)
		}
	}
	// Dropping a SAN is a conflict too.
	conflicts = ensureConflicts(t, dir, []string{"certSANs: [127.0.0.1, localhost]", "certSANs: [127.0.0.1]",
		"endpoint: 10.10.0.10:6443", "endpoint: 127.0.0.1:6443"}, pki.Options{})
	c = conflictFor(t, conflicts, "pki/apiserver.crt")
	if !strings.Contains(c, "localhost") || !strings.Contains(c, "kubeup certs renew apiserver") {
		t.Errorf("conflict %q does not name the dropped SAN localhost and the renew command", c)
	}
}

func TestConflictNewEndpoint(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	conflicts := ensureConflicts(t, dir, []string{"endpoint: 10.10.0.10:6443", "endpoint: localhost:16443"}, pki.Options{})
	for _, name := range []string{"admin.conf", "super-admin.conf", "kubelet.conf"} {
		c := conflictFor(t, conflicts, name)
		for _, want := range []string{"https://localhost:16443", "kubeup certs renew " + name} {
			if !strings.Contains(c, want) {
				t.Errorf("conflict %q does not mention %q", c, want)
			}
		}
	}
	// The master's own components use its address, which did not change.
	if len(conflicts) != 3 {
		t.Errorf("conflicts %q, want admin.conf, super-admin.conf and kubelet.conf only", conflicts)
	}
}

func TestRenamedClusterIsAnError(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	before := snapshot(t, dir)
	_, err := pki.Ensure(dir, loadConfig(t, "name: local", "name: other"), pki.Options{Progress: noProgress(t)})
	if err == nil {
		t.Fatal("Ensure accepted another cluster's bundle")
	}
	if !strings.Contains(err.Error(), `"local"`) || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("error %q does not name both clusters", err)
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

func TestOtherKeyAlgorithmIsAnError(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	before := snapshot(t, dir)
	for _, alg := range []pki.KeyAlgorithm{pki.RSA2048, pki.RSA4096} {
		_, err := pki.Ensure(dir, cfg, pki.Options{KeyAlgorithm: alg, Progress: noProgress(t)})
		if err == nil {
			t.Fatalf("Ensure with %s accepted an %s bundle", alg, pki.ECDSAP256)
		}
		if !strings.Contains(err.Error(), string(alg)) || !strings.Contains(err.Error(), string(pki.ECDSAP256)) {
			t.Errorf("error %q does not name both algorithms", err)
		}
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

func TestConflictExpiredBootstrapToken(t *testing.T) {
	cfg := loadConfig(t)
	now := time.Now()
	dir, b := newBundle(t, cfg, pki.Options{Now: now})
	// Still valid one second before expiry.
	if _, err := pki.Ensure(dir, cfg, pki.Options{Now: b.Token.Expires.Add(-time.Second), Progress: noProgress(t)}); err != nil {
		t.Errorf("Ensure before the token expired: %v", err)
	}
	conflicts := ensureConflicts(t, dir, nil, pki.Options{Now: now.Add(25 * time.Hour)})
	if len(conflicts) != 1 {
		t.Errorf("conflicts %q, want only the token", conflicts)
	}
	c := conflictFor(t, conflicts, pki.TokenFile)
	if !strings.Contains(c, "kubeup certs renew bootstrap-token") || !strings.Contains(c, b.Token.ID) {
		t.Errorf("conflict %q does not name the token and `certs renew bootstrap-token`", c)
	}
	if strings.Contains(c, b.Token.Secret) {
		t.Errorf("conflict %q leaks the token secret", c)
	}
}

// With the node token pool, the bundle's token expiring is expected: the pool's newer tokens
// go into node configs (docs/bootstrap-tokens.md), so ignition-gen and kubeup up go on.
func TestExpiredBootstrapTokenWithThePool(t *testing.T) {
	cfg := loadConfig(t)
	now := time.Now()
	dir, _ := newBundle(t, cfg, pki.Options{Now: now})
	cfg.PKI.BootstrapTokenPool = true
	if _, err := pki.Ensure(dir, cfg, pki.Options{Now: now.Add(25 * time.Hour), Progress: noProgress(t)}); err != nil {
		t.Errorf("Ensure with the pool after the bundle's token expired: %v", err)
	}
}

func TestAllConflictsAreListed(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	edits := []string{
		"certSANs: [127.0.0.1, localhost]", "certSANs: [127.0.0.1, localhost, api.example.com]",
		"endpoint: 10.10.0.10:6443", "endpoint: api.example.com:6443",
	}
	conflicts := ensureConflicts(t, dir, edits, pki.Options{Now: time.Now().Add(48 * time.Hour)})
	for _, rel := range []string{"pki/apiserver.crt", "admin.conf", "super-admin.conf", "kubelet.conf", pki.TokenFile} {
		conflictFor(t, conflicts, rel)
	}
	if len(conflicts) != 5 {
		t.Errorf("%d conflicts, want 5:\n%s", len(conflicts), strings.Join(conflicts, "\n"))
	}
}

// A certificate whose key is gone cannot be repaired without losing trust: Ensure stops and
// makes no new key, for a leaf as for a CA.
func TestCertificateWithoutKeyIsAnError(t *testing.T) {
	for _, base := range []string{"apiserver", "etcd/peer", "etcd/ca", "ca"} {
		t.Run(base, func(t *testing.T) {
			dir, _ := newBundle(t, loadConfig(t), pki.Options{})
			keyRel := "pki/" + base + ".key"
			if err := os.Remove(filepath.Join(dir, keyRel)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := pki.Ensure(dir, loadConfig(t), pki.Options{Progress: noProgress(t)})
			if err == nil {
				t.Fatalf("Ensure accepted pki/%s.crt without its key", base)
			}
			if !strings.Contains(err.Error(), keyRel) {
				t.Errorf("error %q does not name %s", err, keyRel)
			}
			assertUnchanged(t, before, snapshot(t, dir))
		})
	}
}

// A crash between writing a key and its certificate leaves the key alone: Ensure issues the
// certificate for that key and touches nothing else.
func TestKeyWithoutCertificateIsCompleted(t *testing.T) {
	for _, base := range []string{"apiserver", "etcd/server", "front-proxy-client"} {
		t.Run(base, func(t *testing.T) {
			cfg := loadConfig(t)
			dir, _ := newBundle(t, cfg, pki.Options{})
			certRel := "pki/" + base + ".crt"
			if err := os.Remove(filepath.Join(dir, certRel)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			var created []string
			if _, err := pki.Ensure(dir, cfg, pki.Options{Progress: func(rel string) { created = append(created, rel) }}); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if !slices.Equal(created, []string{certRel}) {
				t.Errorf("created %v, want only %s", created, certRel)
			}
			after := snapshot(t, dir)
			assertUnchanged(t, before, without(after, certRel))
			c := certFile(t, dir, base)
			if !samePublicKey(c.PublicKey, keyFile(t, dir, base).Public()) {
				t.Errorf("new %s is not for the existing key", certRel)
			}
			for _, w := range localLeaves {
				if w.name == base {
					checkLeaf(t, dir, w, c, time.Now())
				}
			}
			if _, err := pki.Ensure(dir, cfg, pki.Options{Progress: noProgress(t)}); err != nil {
				t.Errorf("Ensure after the repair: %v", err)
			}
		})
	}
}

// A certificate and key that do not belong together (a key restored from another backup) is a
// conflict that renew can fix, not silent acceptance.
func TestMismatchedKeyIsAConflict(t *testing.T) {
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	other, _ := newBundle(t, loadConfig(t), pki.Options{})
	data := readFile(t, other, "pki/apiserver-etcd-client.key")
	if err := os.WriteFile(filepath.Join(dir, "pki", "apiserver-etcd-client.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	conflicts := ensureConflicts(t, dir, nil, pki.Options{})
	c := conflictFor(t, conflicts, "pki/apiserver-etcd-client.crt")
	if !strings.Contains(c, "kubeup certs renew apiserver-etcd-client") {
		t.Errorf("conflict %q does not name the renew command", c)
	}
}

func TestLoad(t *testing.T) {
	cfg := loadConfig(t)
	empty := t.TempDir()
	if _, err := pki.Load(empty, cfg); err == nil {
		t.Errorf("Load of an empty directory succeeded")
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Load of an empty directory created %d entries", len(entries))
	}
	dir, made := newBundle(t, cfg, pki.Options{})
	b, err := pki.Load(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.Token != made.Token || b.Meta != made.Meta || !slices.Equal(b.Files(), bundleFiles) {
		t.Errorf("Load read another bundle than Ensure made")
	}
}

// Load creates nothing: a bundle with a file missing is an error, and stays as it was.
func TestLoadCreatesNothing(t *testing.T) {
	for _, rel := range []string{pki.AuditPolicyFile, pki.TokenFile, "pki/apiserver.crt", "admin.conf"} {
		t.Run(rel, func(t *testing.T) {
			cfg := loadConfig(t)
			dir, _ := newBundle(t, cfg, pki.Options{})
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := pki.Load(dir, cfg)
			if err == nil {
				t.Errorf("Load accepted a bundle without %s", rel)
			} else if !strings.Contains(err.Error(), rel) {
				t.Errorf("error %q does not name %s", err, rel)
			}
			assertUnchanged(t, before, snapshot(t, dir))
		})
	}
}

// TestKeyReadableByOthersIsRefused: a bundle file found readable by others (a ca.key chmod'ed
// 0644) stops Ensure and Load, naming the file, the fix and what to replace, and nothing changes.
func TestKeyReadableByOthersIsRefused(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	key := filepath.Join(dir, "pki", "ca.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	for name, run := range map[string]func() error{
		"Ensure": func() error { _, err := pki.Ensure(dir, cfg, pki.Options{}); return err },
		"Load":   func() error { _, err := pki.Load(dir, cfg); return err },
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), key+" is mode 0644") || !strings.Contains(err.Error(), "chmod 600 "+key) ||
			!strings.Contains(err.Error(), "rotate-ca") {
			t.Errorf("%s with %s at 0644: %v", name, key, err)
		}
	}
	assertUnchanged(t, before, snapshot(t, dir))
}

// TestKilledWriteLeavesNoKey: the temporary file a run killed mid-write leaves beside a key
// (it holds the whole key) is gone after the next run; Load, which writes nothing, leaves it.
func TestKilledWriteLeavesNoKey(t *testing.T) {
	cfg := loadConfig(t)
	dir, _ := newBundle(t, cfg, pki.Options{})
	var stale []string
	for _, d := range []string{dir, filepath.Join(dir, "pki"), filepath.Join(dir, "pki", "etcd")} {
		f := filepath.Join(d, ".ca.key.tmp-123456")
		if err := os.WriteFile(f, readFile(t, dir, "pki/ca.key"), 0o600); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, f)
	}
	if _, err := pki.Load(dir, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale[0]); err != nil {
		t.Errorf("Load removed %s: %v", stale[0], err)
	}
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the next run: %v", f, err)
		}
	}
}
