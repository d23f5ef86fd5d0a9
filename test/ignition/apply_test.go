package ignition

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/test/testenv"
)

var repoRoot = testenv.RepoRoot()

// ignitionGen builds the ignition-gen command once per test binary.
var ignitionGenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ignition-gen-")
	if err != nil {
		panic(err)
	}
	ignitionGenBin = filepath.Join(dir, "ignition-gen")
	build := exec.Command("go", "build", "-o", ignitionGenBin, "./ignition-gen")
	build.Dir = repoRoot
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build ignition-gen: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs ignition-gen in dir and returns its combined output and exit code.
func run(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(ignitionGenBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// workdir is a scratch directory holding a copy of configs/.
func workdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "configs"), os.DirFS(filepath.Join(repoRoot, "configs"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

func parse(t *testing.T, path string) types.Config {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, rep, err := v3_4.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("%s: %v %s", path, err, rep)
	}
	return cfg
}

func contents(t *testing.T, f types.File) []byte {
	t.Helper()
	src := *f.Contents.Source
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:;base64,"))
	if err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		data, _ = io.ReadAll(zr)
	}
	return data
}

// checkTree asserts that every file, directory and unit of cfg is in root as the config says.
func checkTree(t *testing.T, root string, cfg types.Config) {
	t.Helper()
	for _, f := range cfg.Storage.Files {
		p := filepath.Join(root, f.Path)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: not written: %v", f.Path, err)
			continue
		}
		if got := st.Mode().Perm(); got != fs.FileMode(*f.Mode) {
			t.Errorf("%s: mode %o, want %o", f.Path, got, *f.Mode)
		}
		got, _ := os.ReadFile(p)
		if !bytes.Equal(got, contents(t, f)) {
			t.Errorf("%s: content differs from the config", f.Path)
		}
	}
	for _, d := range cfg.Storage.Directories {
		st, err := os.Stat(filepath.Join(root, d.Path))
		if err != nil || !st.IsDir() {
			t.Errorf("%s: directory not created: %v", d.Path, err)
			continue
		}
		if got := st.Mode().Perm(); got != fs.FileMode(*d.Mode) {
			t.Errorf("%s: mode %o, want %o", d.Path, got, *d.Mode)
		}
	}
	preset, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system-preset/20-ignition.preset"))
	for _, u := range cfg.Systemd.Units {
		if u.Enabled != nil && *u.Enabled && !strings.Contains(string(preset), "enable "+u.Name+"\n") {
			t.Errorf("unit %s not enabled (preset file: %q)", u.Name, preset)
		}
		if u.Contents != nil {
			got, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", u.Name))
			if err != nil || string(got) != *u.Contents {
				t.Errorf("unit %s not written as configured: %v", u.Name, err)
			}
		}
	}
}

var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// scanForKeys fails the test for any file under root that holds a private key or is named *.key.
func scanForKeys(t *testing.T, root string) {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, _ := os.ReadFile(p)
		if privateKeyPEM.Match(data) || strings.HasSuffix(p, ".key") {
			t.Errorf("node tree holds a private key: %s", strings.TrimPrefix(p, root))
		}
		return nil
	})
	if n < 5 {
		t.Fatalf("only %d files in the node tree: nothing was applied", n)
	}
}

func TestRealIgnitionAppliesEveryConfig(t *testing.T) {
	dir := workdir(t)
	out, code := run(t, dir, "--config", "configs/local.yaml", "--out", "out")
	if code != 0 {
		t.Fatalf("ignition-gen failed (%d):\n%s", code, out)
	}
	for _, want := range []string{"creating secrets bundle in .kubeup/local", "MACHINE", "BYTES GZIP+B64", "delivery on target qemu:", "  master: fw_cfg opt/com.coreos/config", "node-1", "node-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, code = run(t, dir, "--config", "configs/local.yaml", "--role=node", "--out", "out")
	if code != 0 {
		t.Fatalf("ignition-gen --role=node failed (%d):\n%s", code, out)
	}

	t.Run("master", func(t *testing.T) {
		cfgPath := filepath.Join(dir, "out/master.ign")
		root := testenv.Apply(t, cfgPath)
		checkTree(t, root, parse(t, cfgPath))
		if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "master\n" {
			t.Errorf("hostname %q", b)
		}
		key, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.key"))
		bundleKey, _ := os.ReadFile(filepath.Join(dir, ".kubeup/local/pki/ca.key"))
		if err != nil || !bytes.Equal(key, bundleKey) {
			t.Errorf("the master's CA key is not the bundle's: %v", err)
		}
		for _, m := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			b, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/manifests", m+".yaml"))
			if err != nil || !strings.Contains(string(b), "image: registry.k8s.io/") {
				t.Errorf("static pod %s missing or without its image: %v", m, err)
			}
		}
	})
	for _, node := range []string{"node-1", "node"} {
		t.Run(node, func(t *testing.T) {
			cfgPath := filepath.Join(dir, "out", node+".ign")
			root := testenv.Apply(t, cfgPath)
			checkTree(t, root, parse(t, cfgPath))
			scanForKeys(t, root)
			ca, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
			bundleCA, _ := os.ReadFile(filepath.Join(dir, ".kubeup/local/pki/ca.crt"))
			if !bytes.Equal(ca, bundleCA) {
				t.Error("node's CA certificate is not the bundle's")
			}
			_, err := os.Stat(filepath.Join(root, "etc/hostname"))
			if named := node != "node"; named != (err == nil) {
				t.Errorf("hostname written: %v, want %v", err == nil, named)
			}
		})
	}
}

func TestBrokenConfigListsEveryProblem(t *testing.T) {
	dir := workdir(t)
	broken := `apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: Bad_Name
kubernetesVersion: v1.20.0
network:
  podCIDR: 10.96.0.0/16
  serviceCIDR: 10.96.0.0/12
machines:
  - name: a
    role: master
    mac: "52:54:00:00:00:01"
    address: 10.10.0.10/24
  - name: a
    role: node
    mac: "52:54:00:00:00:01"
    adress: 10.10.0.11/24
`
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, dir, "validate", "--config", "broken.yaml")
	if code != 2 { // a config that does not load: bad usage
		t.Fatalf("validate exit %d, want 2:\n%s", code, out)
	}
	for _, want := range []string{
		"broken.yaml:16: machines[1].adress: unknown field",
		"broken.yaml:3: name:",
		"broken.yaml:4: kubernetesVersion:",
		"broken.yaml:7: network.serviceCIDR: service CIDR 10.96.0.0/12 overlaps pod CIDR",
		"broken.yaml:13: machines[1].name: duplicate machine name",
		"broken.yaml:15: machines[1].mac: duplicate MAC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, code := run(t, dir, "--config", "broken.yaml"); code != 2 {
		t.Errorf("generating from a broken config exited %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(dir, ".kubeup")); err == nil {
		t.Error("a broken config created a secrets bundle")
	}
}

// The cluster config's registries become containerd's hosts.toml on every machine, with the
// mirrors in order and the mirrors' CA beside it, applied by the real Ignition; a machine of a
// config without registries gets none.
func TestRealIgnitionWritesTheRegistryMirrors(t *testing.T) {
	dir := workdir(t)
	cfgPath := filepath.Join(dir, "configs/local.yaml")
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := mirrorCA(t)
	block := "registries:\n  - registry: registry.k8s.io\n    mirrors: [https://mirror.example.internal:5000, http://10.10.0.2:5000]\n    ca: |\n"
	for _, l := range strings.SplitAfter(ca, "\n") {
		if l != "" {
			block += "      " + l
		}
	}
	if !bytes.Contains(src, []byte("\nmachines:\n")) {
		t.Fatal("configs/local.yaml has no machines: line to put registries before")
	}
	src = bytes.Replace(src, []byte("\nmachines:\n"), []byte("\n"+block+"machines:\n"), 1)
	if err := os.WriteFile(cfgPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, dir, "--config", "configs/local.yaml", "--out", "out"); code != 0 {
		t.Fatalf("ignition-gen failed (%d):\n%s", code, out)
	}
	const d = "etc/containerd/certs.d/registry.k8s.io/"
	want := `# registry.k8s.io's mirrors, from the cluster config's registries, tried in order before registry.k8s.io itself.

[host."https://mirror.example.internal:5000"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/registry.k8s.io/ca.crt"

[host."http://10.10.0.2:5000"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/registry.k8s.io/ca.crt"
`
	for _, m := range []string{"master", "node-1"} {
		root := testenv.Apply(t, filepath.Join(dir, "out", m+".ign"))
		if got, err := os.ReadFile(filepath.Join(root, d, "hosts.toml")); err != nil || string(got) != want {
			t.Errorf("%s: hosts.toml (%v):\n%s\nwant:\n%s", m, err, got, want)
		}
		if got, err := os.ReadFile(filepath.Join(root, d, "ca.crt")); err != nil || string(got) != ca {
			t.Errorf("%s: ca.crt (%v) is not the config's CA", m, err)
		}
	}

	// With the first mirror's credentials in the bundle, the master's hosts.toml sends them
	// (0600), and its agent's add-ons publish the same files for the nodes' agents; the node's
	// config holds them in no form.
	const password = "pull-s3cret"
	if _, err := pki.SetRegistryAuth(filepath.Join(dir, ".kubeup/local"), "mirror.example.internal:5000",
		&pki.RegistryCredential{Username: "puller", Password: password}); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, dir, "--config", "configs/local.yaml", "--out", "out"); code != 0 {
		t.Fatalf("ignition-gen with credentials failed (%d):\n%s", code, out)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("puller:" + password))
	withAuth := strings.Replace(want, "registry.k8s.io/ca.crt\"\n\n", "registry.k8s.io/ca.crt\"\n  [host.\"https://mirror.example.internal:5000\".header]\n    Authorization = \"Basic "+basic+"\"\n\n", 1)
	master := testenv.Apply(t, filepath.Join(dir, "out", "master.ign"))
	hosts := filepath.Join(master, d, "hosts.toml")
	if got, err := os.ReadFile(hosts); err != nil || string(got) != withAuth {
		t.Errorf("master: hosts.toml with credentials (%v):\n%s\nwant:\n%s", err, got, withAuth)
	}
	if fi, err := os.Stat(hosts); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master: hosts.toml holds credentials: want mode 0600 (%v)", err)
	}
	addon, err := os.ReadFile(filepath.Join(master, "etc/kubeup/addons/15-registry-hosts.yaml"))
	if err != nil || !strings.Contains(string(addon), "name: kubeup-registry-hosts") {
		t.Errorf("master: no add-on publishing the registry files to the nodes (%v):\n%s", err, addon)
	}
	node := testenv.Apply(t, filepath.Join(dir, "out", "node-1.ign"))
	if got, err := os.ReadFile(filepath.Join(node, d, "hosts.toml")); err != nil || string(got) != want {
		t.Errorf("node-1: hosts.toml with credentials in the bundle (%v):\n%s\nwant it without them:\n%s", err, got, want)
	}
	if texts := configTexts(t, filepath.Join(dir, "out", "node-1.ign")); strings.Contains(texts, password) || strings.Contains(texts, basic) {
		t.Error("node-1's config holds the mirror's credentials")
	}
}

// configTexts is everything a config says, decoded: the JSON, every file's content and every
// unit's.
func configTexts(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(raw)
	cfg := parse(t, path)
	for _, f := range cfg.Storage.Files {
		b.Write(contents(t, f))
	}
	for _, u := range cfg.Systemd.Units {
		if u.Contents != nil {
			b.WriteString(*u.Contents)
		}
	}
	return b.String()
}

// mirrorCA is a new self-signed CA certificate, PEM: a mirror's CA as an operator pastes it.
func mirrorCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mirror CA"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// An upgrade's rollback to its snapshot puts the snapshot in the master's config: the real
// Ignition writes it 0600 where the restore unit looks, and the unit, enabled, which the
// kubelet requires and which runs the agent's restore with the master's etcd member.
func TestRealIgnitionWritesTheSnapshotToRestore(t *testing.T) {
	dir := workdir(t)
	if out, code := run(t, dir, "--config", "configs/local.yaml", "--out", "out"); code != 0 {
		t.Fatalf("ignition-gen failed (%d):\n%s", code, out)
	}
	cfg, err := cluster.Load(filepath.Join(dir, "configs/local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out", "master.ign"))
	if err != nil {
		t.Fatal(err)
	}
	snapshot := make([]byte, 256<<10)
	if _, err := rand.Read(snapshot); err != nil {
		t.Fatal(err)
	}
	withSnap, err := ignition.WithEtcdRestore(raw, cfg, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out", "master-restore.ign")
	if err := os.WriteFile(path, withSnap, 0o600); err != nil {
		t.Fatal(err)
	}
	root := testenv.Apply(t, path)
	checkTree(t, root, parse(t, path))
	got, err := os.ReadFile(filepath.Join(root, machine.EtcdRestoreSnapshot))
	if fi, serr := os.Stat(filepath.Join(root, machine.EtcdRestoreSnapshot)); err != nil || serr != nil || !bytes.Equal(got, snapshot) || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: not the snapshot, 0600 (%v)", machine.EtcdRestoreSnapshot, err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", machine.EtcdRestoreUnit))
	m := cfg.Master()
	for _, want := range []string{"RequiredBy=" + machine.KubeletUnit, "Before=" + machine.KubeletUnit,
		"restore-etcd --name=" + m.Name + " --peer-url=" + manifests.EtcdPeerURL(m.IP().String())} {
		if err != nil || !strings.Contains(string(unit), want) {
			t.Errorf("%s lacks %q (%v):\n%s", machine.EtcdRestoreUnit, want, err, unit)
		}
	}
	// Everything the master's own config wrote is still there, as it was.
	checkTree(t, root, parse(t, filepath.Join(dir, "out", "master.ign")))
}
