package cli_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/versions"
	"kubeup.dev/kubeup/test/testenv"
)

const commit = "c0ffee1"

// bins are the commands, built once for the package with the commit stamped as `make build` does.
var bins = map[string]string{}

func bin(t *testing.T, name string) string {
	t.Helper()
	if p, ok := bins[name]; ok {
		return p
	}
	pkg := "./" + name
	if name == "packer-plugin-kubeup" {
		pkg = "./packer-plugin"
	}
	dir, err := os.MkdirTemp("", "kubeup-cli-test-")
	if err != nil {
		t.Fatal(err)
	}
	bins[name] = testenv.Build(t, pkg, filepath.Join(dir, name), "-ldflags", "-X kubeup.dev/kubeup/internal/versions.Commit="+commit)
	return bins[name]
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range bins {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// result is one run of a command.
type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	return runIn(t, testenv.RepoRoot(), env, name, args...)
}

// runIn is run in directory dir.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// Every binary answers version, --version and version -o json|yaml with the stamped commit and
// the Kubernetes release kubeup brings up; the Packer plugin answers version too.
func TestVersion(t *testing.T) {
	for _, name := range []string{"kubeup", "ignition-gen", "kubeup-agent"} {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{"version"}, {"--version"}} {
				r := run(t, nil, name, args...)
				want := name + " " + versions.Kubeup + " (commit " + commit
				if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, versions.Kubernetes) {
					t.Errorf("%s %v: exit %d, %q; want %q... naming %s", name, args, r.code, r.stdout, want, versions.Kubernetes)
				}
			}
			for _, format := range []string{"json", "yaml"} {
				r := run(t, nil, name, "version", "-o", format)
				var v cli.VersionInfo
				if err := yaml.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
					t.Fatalf("version -o %s: exit %d, %v:\n%s", format, r.code, err, r.stdout)
				}
				if v.Command != name || v.Kubeup != versions.Kubeup || v.Commit != commit || len(v.Kubernetes) == 0 || v.Kubernetes[0] != versions.Kubernetes {
					t.Errorf("version -o %s: %+v", format, v)
				}
			}
		})
	}
	r := run(t, nil, "packer-plugin-kubeup", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "packer-plugin-kubeup "+versions.Kubeup+" (commit "+commit) {
		t.Errorf("packer-plugin-kubeup version: exit %d, %q", r.code, r.stdout)
	}
	// Packer reads the same version from describe.
	r = run(t, nil, "packer-plugin-kubeup", "describe")
	var d struct{ Version string }
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Version != versions.Kubeup {
		t.Errorf("packer-plugin-kubeup describe: %v, version %q, want %s", err, d.Version, versions.Kubeup)
	}
}

// Every command's --help ends with the exit codes, and says no more than a screen or two:
// the details are in docs/.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"up"}, {"verify"}, {"certs", "rotate-ca", "start"}, {"pxe", "serve"}, {"kubeconfig"}, {"etcd", "snapshot", "save"}, {"upgrade"}} {
		r := run(t, nil, "kubeup", append(args, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, cli.ExitCodesHelp) {
			t.Errorf("kubeup %v --help: exit %d, no exit codes:\n%s", args, r.code, r.stdout)
		}
		if n := strings.Count(r.stdout, "\n"); n > 60 {
			t.Errorf("kubeup %v --help: %d lines; keep it short and link docs/", args, n)
		}
	}
	for _, name := range []string{"ignition-gen", "kubeup-agent"} {
		if r := run(t, nil, name, "--help"); r.code != 0 || !strings.Contains(r.stdout, cli.ExitCodesHelp) {
			t.Errorf("%s --help: exit %d, no exit codes", name, r.code)
		}
	}
}

// A fresh secrets bundle in a directory of the test, and the path of its cluster config.
func bundle(t *testing.T) (config, state string) {
	t.Helper()
	state = filepath.Join(t.TempDir(), "state")
	config = filepath.Join(testenv.RepoRoot(), "configs/local.yaml")
	if r := run(t, nil, "ignition-gen", "--config", config, "--state", state, "--out", filepath.Join(t.TempDir(), "out")); r.code != 0 {
		t.Fatalf("ignition-gen: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return config, state
}

// A kubeconfig whose server is a loopback port nothing listens on.
func deadKubeconfig(t *testing.T, state string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	kc, err := clientcmd.LoadFromFile(filepath.Join(state, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(t.TempDir(), "dead.conf")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The exit codes --help promises: 2 for bad usage or a config that does not load, 3 when the
// cluster cannot be reached or was never brought up, each with a message that says why.
func TestExitCodes(t *testing.T) {
	config, state := bundle(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: kubeup.dev/v1alpha1\nkind: Cluster\nname: x\ntarget: mars\n"), 0o600)
	dead := deadKubeconfig(t, state)
	for _, c := range []struct {
		name string
		cmd  string
		args []string
		code int
		says string
	}{
		{"unknown flag", "kubeup", []string{"verify", "--no-such-flag"}, cli.ExitUsage, "unknown flag: --no-such-flag"},
		{"unknown subcommand", "kubeup", []string{"certs", "bogus"}, cli.ExitUsage, `unknown command "bogus"`},
		{"group without subcommand", "kubeup", []string{"tokens"}, cli.ExitUsage, "needs a subcommand"},
		{"extra argument", "kubeup", []string{"status", "extra"}, cli.ExitUsage, "unknown command"},
		{"unknown output format", "kubeup", []string{"certs", "status", "-o", "xml"}, cli.ExitUsage, "-o xml: use table, json or yaml"},
		{"unknown phase", "kubeup", []string{"verify", "--phase", "9", "--kubeconfig", dead}, cli.ExitUsage, `unknown phase "9"`},
		{"config that does not load", "kubeup", []string{"status", "--config", bad}, cli.ExitUsage, bad},
		{"ignition-gen validate", "ignition-gen", []string{"validate", "--config", bad}, cli.ExitUsage, bad},
		{"named kubeconfig missing", "kubeup", []string{"verify", "--kubeconfig", filepath.Join(state, "none.conf")}, cli.ExitUsage, "none.conf"},
		{"unknown certificate", "kubeup", []string{"certs", "renew", "no-such-cert", "--config", config, "--state", state}, cli.ExitUsage, `no certificate "no-such-cert"`},
		{"moved command", "ignition-gen", []string{"certs", "rotate-ca", "start", "--config", config}, cli.ExitUsage, "run 'kubeup certs rotate-ca start --config " + config + "'"},
		{"never brought up: verify", "kubeup", []string{"verify", "--config", config, "--state", state}, cli.ExitUnreachable, "run 'kubeup up --config " + config + "'"},
		{"never brought up: status", "kubeup", []string{"status", "--config", config, "--state", state, "-o", "json"}, cli.ExitUnreachable, "no cluster made by 'kubeup up'"},
		{"never brought up: kubeconfig", "kubeup", []string{"kubeconfig", "--config", config, "--state", state}, cli.ExitUnreachable, "has not been brought up"},
		{"API server down: verify", "kubeup", []string{"verify", "--kubeconfig", dead}, cli.ExitUnreachable, "does not answer"},
		{"API server down: certs status", "kubeup", []string{"certs", "status", "--kubeconfig", dead}, cli.ExitUnreachable, "connection refused"},
		{"API server down: tokens list", "kubeup", []string{"tokens", "list", "--kubeconfig", dead, "-o", "json"}, cli.ExitUnreachable, "connection refused"},
		{"upgrade without --to", "kubeup", []string{"upgrade", "--dry-run", "--kubeconfig", dead}, cli.ExitUsage, "--to: name the release"},
		{"upgrade to a release the config does not name", "kubeup", []string{"upgrade", "--to", "v1.36.3", "--config", config, "--state", state, "--kubeconfig", dead}, cli.ExitUsage, "kubernetesVersion is v1.37.2, and --to asks for v1.36.3 (fix: set kubernetesVersion: v1.36.3 in " + config},
		{"upgrade with no node to replace", "kubeup", []string{"upgrade", "--to", "v1.37.2", "--max-unavailable", "0", "--kubeconfig", dead}, cli.ExitUsage, "--max-unavailable 0"},
		{"API server down: upgrade", "kubeup", []string{"upgrade", "--to", "v1.37.2", "--config", config, "--state", state, "--kubeconfig", dead}, cli.ExitUnreachable, "the API server's version"},
		{"API server down: upgrade plan", "kubeup", []string{"upgrade", "--to", "v1.37.2", "--dry-run", "--config", config, "--state", state, "--kubeconfig", dead}, cli.ExitUnreachable, "the API server's version"},
		{"API server down: etcd snapshot", "kubeup", []string{"etcd", "snapshot", "save", filepath.Join(t.TempDir(), "s.db"), "--config", config, "--state", state, "--kubeconfig", dead}, cli.ExitUnreachable, "find the etcd pod"},
		{"snapshot over a file", "kubeup", []string{"etcd", "snapshot", "save", config, "--config", config, "--state", state, "--kubeconfig", dead}, cli.ExitUsage, "a snapshot is never overwritten"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, nil, c.cmd, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.says) {
				t.Errorf("%s %v: exit %d, stderr %q; want exit %d saying %q", c.cmd, c.args, r.code, r.stderr, c.code, c.says)
			}
			if strings.Contains(r.stderr, "inClusterConfig") || strings.Contains(r.stderr, "W1") || strings.Contains(r.stderr, "E1") {
				t.Errorf("client-go's log lines leak into the output:\n%s", r.stderr)
			}
			if r.stdout != "" && c.code == cli.ExitUnreachable {
				t.Errorf("stdout of a failed run: %q", r.stdout)
			}
		})
	}
}

// `kubeup kubeconfig` prints the host kubeconfig 'kubeup up' wrote; --merge adds it to the
// kubeconfig kubectl uses as context kubeup-<cluster>, keeping what was there, 0600, and the
// real kubectl reads it back.
func TestKubeconfigMerge(t *testing.T) {
	config, state := bundle(t)
	host := filepath.Join(state, "qemu", "admin.conf")
	os.MkdirAll(filepath.Dir(host), 0o700)
	kc, err := clientcmd.LoadFromFile(filepath.Join(state, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://127.0.0.1:16443" // as 'kubeup up' writes it: the forwarded port
	}
	if err := clientcmd.WriteToFile(*kc, host); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "kubeup", "kubeconfig", "--config", config, "--state", state)
	if r.code != 0 || strings.TrimSpace(r.stdout) != host {
		t.Fatalf("kubeup kubeconfig: exit %d, %q; want %s\n%s", r.code, r.stdout, host, r.stderr)
	}

	// The user's kubeconfig already has a context of its own.
	user := filepath.Join(t.TempDir(), "config")
	mine := clientcmdapi.NewConfig()
	mine.Clusters["mine"] = &clientcmdapi.Cluster{Server: "https://mine.example:6443"}
	mine.AuthInfos["mine"] = &clientcmdapi.AuthInfo{Token: "t"}
	mine.Contexts["mine"] = &clientcmdapi.Context{Cluster: "mine", AuthInfo: "mine"}
	mine.CurrentContext = "mine"
	if err := clientcmd.WriteToFile(*mine, user); err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBECONFIG=" + user}
	for range 2 { // a second merge replaces the first
		r = run(t, env, "kubeup", "kubeconfig", "--merge", "--config", config, "--state", state)
		if r.code != 0 || !strings.Contains(r.stdout, "as context kubeup-local") {
			t.Fatalf("kubeup kubeconfig --merge: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
	}
	merged, err := clientcmd.LoadFromFile(user)
	if err != nil {
		t.Fatal(err)
	}
	if merged.CurrentContext != "kubeup-local" || merged.Contexts["mine"] == nil || len(merged.Contexts) != 2 {
		t.Errorf("merged kubeconfig: current %q, contexts %v; want kubeup-local current and mine kept", merged.CurrentContext, keys(merged.Contexts))
	}
	if c := merged.Clusters["kubeup-local"]; c == nil || c.Server != "https://127.0.0.1:16443" || len(c.CertificateAuthorityData) == 0 {
		t.Errorf("cluster kubeup-local: %+v", c)
	}
	if u := merged.AuthInfos["kubeup-local"]; u == nil || len(u.ClientCertificateData) == 0 || len(u.ClientKeyData) == 0 {
		t.Error("user kubeup-local lacks its client certificate and key")
	}
	if fi, err := os.Stat(user); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("merged kubeconfig mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	kubectl := exec.Command(filepath.Join(testenv.ToolchainDir(t), "kubectl"), "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	kubectl.Env = append(os.Environ(), env...)
	out, err := kubectl.CombinedOutput()
	if err != nil || string(out) != "https://127.0.0.1:16443" {
		t.Errorf("kubectl config view --minify: %v, %q; want the kubeup-local server", err, out)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The shell completion offers the values of --provider, -o and --phase, yaml files for
// --config, and the bundle's certificate names for certs renew (cobra's __complete is what the
// generated completion scripts call).
func TestCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"up", "--provider", ""}, []string{"qemu", "aws", "vsphere"}},
		{[]string{"status", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"verify", "--phase", ""}, []string{"3", "4.1", "4.2", "5", "6", "all"}},
		{[]string{"status", "--config", ""}, []string{"yaml", "yml"}},
		{[]string{"certs", "renew", "--config", "configs/local.yaml", ""}, []string{"apiserver", "etcd/server", "admin.conf", "bootstrap-token"}},
	} {
		r := run(t, nil, "kubeup", append([]string{"__complete"}, c.args...)...)
		lines := strings.Split(r.stdout, "\n")
		for _, w := range c.want {
			if !slices.Contains(lines, w) {
				t.Errorf("kubeup %v: completions %q lack %q", c.args, lines, w)
			}
		}
	}
}

// In a directory with no cluster config, a command says so and how to fix it (exit 2); up with
// --provider writes the starter kubeup.yaml there, says so, goes on with it, and leaves it for
// the next commands; a second up does not write it again.
func TestNoConfigHere(t *testing.T) {
	dir := t.TempDir()
	in := func(args ...string) result {
		t.Helper()
		return runIn(t, dir, nil, "kubeup", args...)
	}
	if r := in("status"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "no cluster config here") || !strings.Contains(r.stderr, "--provider") {
		t.Errorf("status with no config: exit %d, %q", r.code, r.stderr)
	}
	if r := in("up", "--provider", "mars"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, `--provider "mars"`) {
		t.Errorf("up --provider mars: exit %d, %q", r.code, r.stderr)
	}
	// vSphere: the starter is written; what it cannot default (the template) is named.
	r := in("up", "--provider", "vsphere", "--dry-run")
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "wrote kubeup.yaml, a starter for target vsphere") || !strings.Contains(r.stderr, "vsphere.template is empty") {
		t.Errorf("up --provider vsphere in an empty directory: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "kubeup.yaml")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("kubeup.yaml: %v %v", fi, err)
	}
	r = in("up", "--provider", "vsphere", "--dry-run")
	if strings.Contains(r.stdout, "wrote kubeup.yaml") || !strings.Contains(r.stderr, "vsphere.template is empty") {
		t.Errorf("a second up: %q %q", r.stdout, r.stderr)
	}
	// Later commands find it: status reads the starter's vSphere block, and asks for the server
	// it cannot default.
	if r := in("status"); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "no vSphere server: set vsphere.server in the cluster config or GOVC_URL") {
		t.Errorf("status with kubeup.yaml: exit %d, %q", r.code, r.stderr)
	}
}
