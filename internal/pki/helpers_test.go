package pki_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// localYAML is the repository's example config, which the tests take as the baseline.
const localYAML = "../../configs/local.yaml"

// loadConfig parses configs/local.yaml after applying edits (old → new replacements, each of
// which must match), so every test config is a small, visible change from a valid one.
func loadConfig(t *testing.T, edits ...string) *cluster.Config {
	t.Helper()
	if len(edits)%2 != 0 {
		t.Fatalf("loadConfig: odd number of edit arguments")
	}
	src, err := os.ReadFile(localYAML)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("loadConfig: %q not found in %s", edits[i], localYAML)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	cfg, err := cluster.Parse("local.yaml", []byte(s))
	if err != nil {
		t.Fatalf("config does not parse: %v", err)
	}
	return cfg
}

// newBundle creates a fresh bundle for cfg in a temporary directory.
func newBundle(t *testing.T, cfg *cluster.Config, opt pki.Options) (string, *pki.Bundle) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	b, err := pki.Ensure(dir, cfg, opt)
	if err != nil {
		t.Fatalf("Ensure on an empty directory: %v", err)
	}
	return dir, b
}

// The files every bundle has, relative to its directory.
var bundleFiles = []string{
	"admin.conf",
	"audit-policy.yaml",
	"bootstrap-token.json",
	"bundle.json",
	"controller-manager.conf",
	"encryption-config.yaml",
	"kubelet.conf",
	"pki/apiserver-etcd-client.crt",
	"pki/apiserver-etcd-client.key",
	"pki/apiserver-kubelet-client.crt",
	"pki/apiserver-kubelet-client.key",
	"pki/apiserver.crt",
	"pki/apiserver.key",
	"pki/ca.crt",
	"pki/ca.key",
	"pki/etcd/ca.crt",
	"pki/etcd/ca.key",
	"pki/etcd/healthcheck-client.crt",
	"pki/etcd/healthcheck-client.key",
	"pki/etcd/peer.crt",
	"pki/etcd/peer.key",
	"pki/etcd/server.crt",
	"pki/etcd/server.key",
	"pki/front-proxy-ca.crt",
	"pki/front-proxy-ca.key",
	"pki/front-proxy-client.crt",
	"pki/front-proxy-client.key",
	"pki/sa.key",
	"pki/sa.pub",
	"scheduler.conf",
	"super-admin.conf",
}

// fileState is what a test remembers of one file or directory.
type fileState struct {
	info fs.FileInfo
	data []byte
}

// snapshot records every file and directory under dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fileState{info: info}
		if !d.IsDir() {
			if st.data, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertUnchanged fails for every file that appeared, disappeared, or whose content, mode,
// mtime or inode changed between two snapshots. Directories are compared by mode only.
func assertUnchanged(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	for rel, a := range before {
		b, ok := after[rel]
		switch {
		case !ok:
			t.Errorf("%s disappeared", rel)
		case a.info.Mode() != b.info.Mode():
			t.Errorf("%s: mode changed from %v to %v", rel, a.info.Mode(), b.info.Mode())
		case a.info.IsDir():
		case !bytes.Equal(a.data, b.data):
			t.Errorf("%s: content changed", rel)
		case !a.info.ModTime().Equal(b.info.ModTime()):
			t.Errorf("%s: mtime changed from %v to %v", rel, a.info.ModTime(), b.info.ModTime())
		case !os.SameFile(a.info, b.info):
			t.Errorf("%s: replaced by another file", rel)
		}
	}
	for rel := range after {
		if _, ok := before[rel]; !ok {
			t.Errorf("%s appeared", rel)
		}
	}
}

// without returns a copy of a snapshot without the named entries.
func without(s map[string]fileState, rels ...string) map[string]fileState {
	out := make(map[string]fileState, len(s))
	for k, v := range s {
		out[k] = v
	}
	for _, r := range rels {
		delete(out, r)
	}
	return out
}

// regularFiles lists the regular files of a snapshot, sorted.
func regularFiles(s map[string]fileState) []string {
	var out []string
	for rel, st := range s {
		if st.info.Mode().IsRegular() {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func readFile(t *testing.T, dir, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pemBlock decodes the single PEM block of data and checks its type.
func pemBlock(t *testing.T, what string, data []byte, wantType string) *pem.Block {
	t.Helper()
	b, rest := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", what)
	}
	if b.Type != wantType {
		t.Fatalf("%s: PEM type %q, want %q", what, b.Type, wantType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: trailing data after the PEM block", what)
	}
	return b
}

func parseCert(t *testing.T, what string, data []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(pemBlock(t, what, data, "CERTIFICATE").Bytes)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return c
}

// parseKey parses a private key in either of the PEM forms kubeadm writes and returns its type.
func parseKey(t *testing.T, what string, data []byte) (crypto.Signer, string) {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", what)
	}
	var (
		k   crypto.Signer
		err error
	)
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		t.Fatalf("%s: unexpected PEM type %q", what, b.Type)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return k, b.Type
}

func certFile(t *testing.T, dir, base string) *x509.Certificate {
	t.Helper()
	return parseCert(t, "pki/"+base+".crt", readFile(t, dir, "pki/"+base+".crt"))
}

func keyFile(t *testing.T, dir, base string) crypto.Signer {
	t.Helper()
	k, _ := parseKey(t, "pki/"+base+".key", readFile(t, dir, "pki/"+base+".key"))
	return k
}

// kubeconfig is what the tests read from a kubeconfig file, by following its current context.
type kubeconfig struct {
	server string
	caPEM  []byte
	cert   *x509.Certificate
	key    crypto.Signer
	keyPEM []byte
}

func readKubeconfig(t *testing.T, dir, name string) kubeconfig {
	t.Helper()
	cfg, err := clientcmd.Load(readFile(t, dir, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		t.Fatalf("%s: no current context %q", name, cfg.CurrentContext)
	}
	cl, au := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cl == nil || au == nil {
		t.Fatalf("%s: context %q names a missing cluster or user", name, cfg.CurrentContext)
	}
	key, _ := parseKey(t, name+" client-key-data", au.ClientKeyData)
	return kubeconfig{
		server: cl.Server,
		caPEM:  cl.CertificateAuthorityData,
		cert:   parseCert(t, name+" client-certificate-data", au.ClientCertificateData),
		key:    key,
		keyPEM: au.ClientKeyData,
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// conflictError asserts that err is a *pki.ConflictError and returns it.
func conflictError(t *testing.T, err error) *pki.ConflictError {
	t.Helper()
	var ce *pki.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want *pki.ConflictError", err, err)
	}
	return ce
}

// noProgress is a Progress callback that fails the test: the run must create nothing.
func noProgress(t *testing.T) func(string) {
	return func(rel string) { t.Errorf("Ensure created %s", rel) }
}

// near reports whether two times are within tolerance of each other.
func near(a, b time.Time, tolerance time.Duration) bool {
	d := a.Sub(b)
	return d <= tolerance && d >= -tolerance
}
