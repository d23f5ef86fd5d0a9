package ignition

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/test/testenv"
)

func generate(t *testing.T, cfg *cluster.Config, opt Options) []Output {
	t.Helper()
	b := newBundle(t, cfg)
	if opt.OutDir == "" {
		opt.OutDir = t.TempDir()
	}
	outs, err := Generate(cfg, b, opt)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return outs
}

func TestEveryConfigParsesWithoutWarnings(t *testing.T) {
	for _, name := range []string{"local.yaml", "metal.yaml", "aws.yaml", "vsphere.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg := loadConfig(t, name, nil)
			outs := generate(t, cfg, Options{})
			outs = append(outs, generate(t, cfg, Options{Role: cluster.RoleNode})...)
			for _, o := range outs {
				raw, err := os.ReadFile(o.File)
				if err != nil {
					t.Fatal(err)
				}
				c, rep, err := v3_4.Parse(raw)
				if err != nil || len(rep.Entries) > 0 {
					t.Fatalf("%s: %v %s", o.Name, err, rep)
				}
				if c.Ignition.Version != "3.4.0" {
					t.Errorf("%s: spec %s, want 3.4.0", o.Name, c.Ignition.Version)
				}
			}
		})
	}
}

var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// A node config must carry no private key of any kind and no secret but the bootstrap token.
func TestNodeConfigsHoldNoPrivateKey(t *testing.T) {
	cfg := loadConfig(t, "local.yaml", nil)
	b := newBundle(t, cfg)
	out := t.TempDir()
	outs, err := Generate(cfg, b, Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	role, err := Generate(cfg, b, Options{OutDir: out, Role: cluster.RoleNode})
	if err != nil {
		t.Fatal(err)
	}
	// Distinctive material of every secret of the bundle except the CA certificate and the
	// bootstrap token: key bodies, kubeconfig client keys, the encryption key.
	secrets := map[string][]string{}
	for _, rel := range b.Files() {
		for _, line := range strings.Split(string(b.File(rel)), "\n") {
			switch {
			case strings.HasSuffix(rel, ".key") && len(line) > 40,
				strings.Contains(line, "client-key-data:"),
				strings.Contains(line, "secret:"):
				secrets[rel] = append(secrets[rel], strings.TrimSpace(line))
			}
		}
	}
	if len(secrets) < 10 {
		t.Fatalf("found secret material in only %d bundle files", len(secrets))
	}
	nodes := 0
	for _, o := range append(outs, role...) {
		raw, _ := os.ReadFile(o.File)
		_, files := testenv.IgnitionFiles(t, raw)
		if o.Role == cluster.RoleMaster {
			if !privateKeyPEM.Match(files[manifests.PKIDir+"/ca.key"]) {
				t.Errorf("master config lacks the CA key")
			}
			continue
		}
		nodes++
		if privateKeyPEM.Match(raw) {
			t.Errorf("%s: raw config contains a PEM private key", o.Name)
		}
		for path, data := range files {
			if privateKeyPEM.Match(data) {
				t.Errorf("%s: %s holds a private key", o.Name, path)
			}
			if strings.HasSuffix(path, ".key") {
				t.Errorf("%s: writes a key file %s", o.Name, path)
			}
			for what, lines := range secrets {
				for _, line := range lines {
					if strings.Contains(string(data), line) {
						t.Errorf("%s: %s contains material of %s", o.Name, path, what)
						break
					}
				}
			}
		}
		boot := string(files[manifests.BootstrapKubeconf])
		if !strings.Contains(boot, "token: "+b.Token.String()) {
			t.Errorf("%s: bootstrap kubeconfig lacks the bootstrap token", o.Name)
		}
	}
	if nodes != 3 {
		t.Fatalf("checked %d node configs, want 3 (2 machines + role)", nodes)
	}
}

func TestSameInputsSameBytes(t *testing.T) {
	cfg := loadConfig(t, "metal.yaml", nil)
	b := newBundle(t, cfg)
	var first map[string]string
	for i := range 3 {
		out := t.TempDir()
		if _, err := Generate(cfg, b, Options{OutDir: out}); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(out, e.Name()))
			got[e.Name()] = string(data)
		}
		if i == 0 {
			first = got
			continue
		}
		for name, data := range first {
			if got[name] != data {
				t.Fatalf("run %d: %s differs from run 0", i, name)
			}
		}
	}
}

func TestRerunChangesNoFile(t *testing.T) {
	cfg := loadConfig(t, "local.yaml", nil)
	b := newBundle(t, cfg)
	out := t.TempDir()
	if _, err := Generate(cfg, b, Options{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	stat := func() map[string]time.Time {
		m := map[string]time.Time{}
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			info, _ := e.Info()
			m[e.Name()] = info.ModTime()
		}
		return m
	}
	before := stat()
	// Let the clock move so that a rewrite would show in the mtime.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && time.Since(before["master.ign"]) < 20*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	if _, err := Generate(cfg, b, Options{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	after := stat()
	if len(after) != len(before) {
		t.Fatalf("files %v, then %v", before, after)
	}
	for name, mt := range before {
		if !after[name].Equal(mt) {
			t.Errorf("%s rewritten on an unchanged re-run", name)
		}
	}
}

func TestRoleNodeConfigIsAnonymous(t *testing.T) {
	cfg := loadConfig(t, "aws.yaml", nil)
	outs := generate(t, cfg, Options{Role: cluster.RoleNode})
	if len(outs) != 1 || filepath.Base(outs[0].File) != "node.ign" {
		t.Fatalf("outputs %+v, want one node.ign", outs)
	}
	raw, _ := os.ReadFile(outs[0].File)
	_, files := testenv.IgnitionFiles(t, raw)
	for _, p := range []string{"/etc/hostname", machine.KubeletEnv, "/etc/systemd/network/10-kubeup.network"} {
		if _, ok := files[p]; ok {
			t.Errorf("role config writes machine-specific %s", p)
		}
	}
	for _, p := range []string{manifests.PKIDir + "/ca.crt", manifests.BootstrapKubeconf, manifests.KubeletConfigFile, "/etc/kubeup/agent.yaml"} {
		if _, ok := files[p]; !ok {
			t.Errorf("role config lacks %s", p)
		}
	}
}

func TestMasterConfigHoldsTheControlPlane(t *testing.T) {
	cfg := loadConfig(t, "local.yaml", nil)
	outs := generate(t, cfg, Options{})
	raw, _ := os.ReadFile(outs[0].File)
	c, files := testenv.IgnitionFiles(t, raw)
	want := []string{
		"/etc/hostname", machine.KubeletEnv,
		"/etc/kubernetes/pki/ca.key", "/etc/kubernetes/pki/etcd/ca.key", "/etc/kubernetes/pki/front-proxy-ca.key",
		"/etc/kubernetes/pki/sa.key", "/etc/kubernetes/pki/sa.pub", "/etc/kubernetes/pki/apiserver.crt",
		"/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf", "/etc/kubernetes/kubelet.conf",
		"/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf",
		manifests.EncryptionConfig, manifests.AuditPolicy,
		"/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/manifests/kube-apiserver.yaml",
		"/etc/kubernetes/manifests/kube-controller-manager.yaml", "/etc/kubernetes/manifests/kube-scheduler.yaml",
		"/etc/kubeup/addons/00-cluster-admins.yaml", "/etc/kubeup/addons/10-bootstrap.yaml",
		"/etc/kubeup/addons/20-kube-proxy.yaml", "/etc/kubeup/addons/30-flannel.yaml",
		"/etc/kubeup/addons/40-coredns.yaml", "/etc/kubeup/addons/50-metrics-server.yaml", "/etc/kubeup/addons/60-kubeup-agent.yaml",
		manifests.AuthenticationConfigFile, manifests.AdmissionConfigFile,
	}
	for _, p := range want {
		if _, ok := files[p]; !ok {
			t.Errorf("master config lacks %s", p)
		}
	}
	for _, f := range c.Storage.Files {
		isSecret := strings.HasSuffix(f.Path, ".key") || strings.HasSuffix(f.Path, ".conf") && strings.HasPrefix(f.Path, "/etc/kubernetes/") ||
			strings.HasPrefix(f.Path, manifests.AddonsDir)
		if isSecret && *f.Mode != 0o600 {
			t.Errorf("%s has mode %o, want 0600", f.Path, *f.Mode)
		}
	}
	if string(files["/etc/hostname"]) != "master\n" {
		t.Errorf("hostname %q", files["/etc/hostname"])
	}
	api := string(files["/etc/kubernetes/manifests/kube-apiserver.yaml"])
	for _, flag := range []string{"--encryption-provider-config=", "--audit-policy-file=", "--audit-log-path=", "--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=DenyServiceExternalIPs,NodeRestriction", "--authentication-config=", "--admission-control-config-file=", "--enable-bootstrap-token-auth=true", "--service-cluster-ip-range=10.96.0.0/12", "--advertise-address=10.10.0.10"} {
		if !strings.Contains(api, flag) {
			t.Errorf("kube-apiserver manifest lacks %s", flag)
		}
	}
	units := map[string]bool{}
	for _, u := range c.Systemd.Units {
		units[u.Name] = u.Enabled != nil && *u.Enabled
	}
	for _, u := range []string{"containerd.service", "kubelet.service", "kubeup-agent.service"} {
		if !units[u] {
			t.Errorf("unit %s not enabled", u)
		}
	}
}

func TestAddonsFollowTheConfig(t *testing.T) {
	cfg := loadConfig(t, "local.yaml", func(s string) string {
		return strings.Replace(s, "addons: [kube-proxy, coredns, metrics-server]", "addons: [coredns]", 1)
	})
	outs := generate(t, cfg, Options{})
	raw, _ := os.ReadFile(outs[0].File)
	_, files := testenv.IgnitionFiles(t, raw)
	if _, ok := files["/etc/kubeup/addons/40-coredns.yaml"]; !ok {
		t.Error("coredns missing")
	}
	if _, ok := files["/etc/kubeup/addons/30-flannel.yaml"]; !ok {
		t.Error("flannel (the CNI) must always be installed")
	}
	for _, p := range []string{"/etc/kubeup/addons/20-kube-proxy.yaml", "/etc/kubeup/addons/50-metrics-server.yaml"} {
		if _, ok := files[p]; ok {
			t.Errorf("%s rendered although not in addons", p)
		}
	}
}

func TestButaneSnippetsAreMerged(t *testing.T) {
	cfg := loadConfig(t, "metal.yaml", func(s string) string {
		return strings.Replace(s, "    mac: \"0c:c4:7a:00:00:11\"\n", "    mac: \"0c:c4:7a:00:00:11\"\n    butane: |\n      storage:\n        files:\n          - path: /etc/worker-1\n            contents:\n              inline: hello\n", 1)
	})
	outs := generate(t, cfg, Options{})
	byName := map[string]map[string][]byte{}
	for _, o := range outs {
		raw, _ := os.ReadFile(o.File)
		_, byName[o.Name] = testenv.IgnitionFiles(t, raw)
	}
	if _, ok := byName["worker-1"]["/etc/motd"]; !ok {
		t.Error("role snippet (butane.node) not merged into worker-1")
	}
	if string(byName["worker-1"]["/etc/worker-1"]) != "hello" {
		t.Errorf("machine snippet not merged: %q", byName["worker-1"]["/etc/worker-1"])
	}
	if _, ok := byName["worker-2"]["/etc/worker-1"]; ok {
		t.Error("worker-1's snippet leaked into worker-2")
	}
	if _, ok := byName["cp-1"]["/etc/motd"]; ok {
		t.Error("the node role snippet reached the master")
	}
}

// A snippet may add to a machine, never replace what kubeup writes: Ignition's merge would let
// it win silently. Drop-ins for kubeup's units stay allowed.
func TestButaneSnippetCannotReplaceKubeupsOwn(t *testing.T) {
	snippet := func(body string) func(string) string {
		return func(s string) string {
			return strings.Replace(s, "    mac: \"0c:c4:7a:00:00:11\"\n", "    mac: \"0c:c4:7a:00:00:11\"\n    butane: |\n"+body, 1)
		}
	}
	// What worker-1 holds without a snippet: the paths and unit the refusals below name.
	plain := generate(t, loadConfig(t, "metal.yaml", nil), Options{})
	i := slices.IndexFunc(plain, func(o Output) bool { return o.Name == "worker-1" })
	raw, _ := os.ReadFile(plain[i].File)
	_, files := testenv.IgnitionFiles(t, raw)
	const ca = "/etc/kubernetes/pki/ca.crt"
	if _, ok := files[ca]; !ok {
		t.Fatalf("worker-1 has no %s to collide with", ca)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"a file", "      storage:\n        files:\n          - path: " + ca + "\n            contents: {inline: mine}\n", "file " + ca},
		{"a link", "      storage:\n        links:\n          - path: " + ca + "\n            target: /tmp/x\n", "link " + ca},
		{"a unit", "      systemd:\n        units:\n          - name: kubelet.service\n            enabled: false\n", "unit kubelet.service"},
	} {
		cfg := loadConfig(t, "metal.yaml", snippet(tc.body))
		_, err := Generate(cfg, newBundle(t, cfg), Options{OutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "machines[worker-1].butane") || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s: %v; want a refusal naming machines[worker-1].butane, %s and the fix", tc.name, err, tc.want)
		}
	}
	cfg := loadConfig(t, "metal.yaml", snippet("      systemd:\n        units:\n          - name: kubelet.service\n            dropins:\n              - name: 50-mine.conf\n                contents: |\n                  [Service]\n                  Environment=MINE=1\n"))
	generate(t, cfg, Options{})
}

// TestKubeletWaitsLongerForAnEmulatedRuntime: on the QEMU target (emulated where KVM does not
// work) every machine's kubelet waits EmulatedRuntimeRequestTimeout for a runtime call, so a
// slow sandbox is made once instead of asked for again while containerd still makes it; on
// real hardware the kubelet keeps its default.
func TestKubeletWaitsLongerForAnEmulatedRuntime(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   time.Duration
	}{
		{"local.yaml", manifests.EmulatedRuntimeRequestTimeout},
		{"metal.yaml", 0},
	} {
		t.Run(tc.config, func(t *testing.T) {
			for _, out := range generate(t, loadConfig(t, tc.config, nil), Options{}) {
				raw, err := os.ReadFile(out.File)
				if err != nil {
					t.Fatal(err)
				}
				_, files := testenv.IgnitionFiles(t, raw)
				var c kubeletv1beta1.KubeletConfiguration
				if err := yaml.UnmarshalStrict(files[manifests.KubeletConfigFile], &c); err != nil {
					t.Fatalf("%s: %s: %v", out.File, manifests.KubeletConfigFile, err)
				}
				if got := c.RuntimeRequestTimeout.Duration; got != tc.want {
					t.Errorf("%s: runtimeRequestTimeout %v, want %v", out.File, got, tc.want)
				}
			}
		})
	}
}
