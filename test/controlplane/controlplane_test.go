package controlplane

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/verify"
	"kubeup.dev/kubeup/test/testenv"
)

// env is one running control plane and what the test made it from.
type env struct {
	cfg       *cluster.Config
	bundle    *pki.Bundle
	out       string // rendered configs
	root      string // the master's tree, as the real Ignition wrote it
	logs      string
	admin     *rest.Config
	adminCS   kubernetes.Interface
	agentCfg  agent.Config
	toolchain string
	startedAt time.Time
	procs     map[string]*proc // by component name
}

// Timeouts are generous: the machine has two cores shared with the build.
const apiTimeout = 3 * time.Minute

// setup starts a control plane from the master's config as the real Ignition writes it; each
// of before runs on the tree Ignition wrote, before anything starts.
func setup(t *testing.T, before ...func(root string)) *env {
	t.Helper()
	e := &env{toolchain: testenv.ToolchainDir(t), startedAt: time.Now(), procs: map[string]*proc{}}
	testenv.IgnitionDir(t) // fail early, before anything starts, if Ignition is missing
	portsFree(t, "127.0.0.10:6443", "127.0.0.1:2379", "127.0.0.10:2379", "127.0.0.10:2380", "127.0.0.1:2381", "127.0.0.1:10257", "127.0.0.1:10259")
	var err error
	if e.cfg, err = cluster.Load("testdata/cluster.yaml"); err != nil {
		t.Fatal(err)
	}
	// The release of the binaries: KUBEUP_KUBERNETES=v1.36.3 runs this on the older one.
	e.cfg.KubernetesVersion = testenv.Kubernetes(t)
	state := t.TempDir()
	if _, err = pki.Ensure(state, e.cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.SetRegistryAuth(state, mirrorHost, &mirrorCredential); err != nil {
		t.Fatal(err)
	}
	if e.bundle, err = pki.Load(state, e.cfg); err != nil {
		t.Fatal(err)
	}
	e.out = t.TempDir()
	if _, err := ignition.Generate(e.cfg, e.bundle, ignition.Options{OutDir: e.out}); err != nil {
		t.Fatal(err)
	}
	e.root = testenv.Apply(t, filepath.Join(e.out, "master.ign"))
	e.logs = t.TempDir()
	for _, f := range before {
		f(e.root)
	}

	// The command lines are the static pods' own, with host paths moved under the scratch root.
	// One flag is added: the endpoint reconciler refuses a loopback advertise address, and a
	// loopback master is what lets the test run on this machine (a real master has a real one).
	apiserver := append(staticPodCommand(t, e.root, "kube-apiserver.yaml"), "--endpoint-reconciler-type=none")
	for _, args := range [][]string{
		staticPodCommand(t, e.root, "etcd.yaml"),
		apiserver,
		staticPodCommand(t, e.root, "kube-controller-manager.yaml"),
		staticPodCommand(t, e.root, "kube-scheduler.yaml"),
	} {
		p := start(t, e.toolchain, args, e.logs)
		e.procs[p.name] = p
	}

	data, err := os.ReadFile(filepath.Join(e.root, machine.AgentConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &e.agentCfg); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = clientcmd.BuildConfigFromFlags("", filepath.Join(e.root, "etc/kubernetes/admin.conf")); err != nil {
		t.Fatal(err)
	}
	e.adminCS = kubernetes.NewForConfigOrDie(e.admin)
	return e
}

func TestControlPlane(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	m := &agent.Master{Config: e.agentCfg, Root: e.root, Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}}}

	t.Run("agent bootstraps the cluster", func(t *testing.T) {
		res, err := m.Bootstrap(ctx, apiTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("API ready and bootstrap applied %v after start", time.Since(e.startedAt).Round(time.Second))
		// The rendered flags are the same for every release: each release's binaries must take them.
		if info, err := e.adminCS.Discovery().ServerVersion(); err != nil || info.GitVersion != e.cfg.KubernetesVersion {
			t.Fatalf("the API server's version: %+v, %v; want %s", info, err, e.cfg.KubernetesVersion)
		}
		// Every document of every file Ignition wrote into the addons directory.
		files, _ := filepath.Glob(filepath.Join(e.root, e.agentCfg.AddonsDir, "*.yaml"))
		docs := 0
		for _, f := range files {
			data, _ := os.ReadFile(f)
			docs += strings.Count(string(data), "\n---\n") + 1
		}
		if docs < 30 || res.Objects != docs || res.Changed != res.Objects {
			t.Fatalf("first bootstrap: %+v, want all %d objects of %d files created", res, docs, len(files))
		}
		again, err := m.Bootstrap(ctx, apiTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if again.Objects != res.Objects || again.Changed != 0 {
			t.Fatalf("second bootstrap: %+v, want the same %d objects and none changed", again, res.Objects)
		}
		// The command, as the kubeup-agent unit runs it, over the tree Ignition wrote.
		bin := testenv.Build(t, "./kubeup-agent", filepath.Join(t.TempDir(), "kubeup-agent"))
		out, err := exec.CommandContext(ctx, bin, "--config", filepath.Join(e.root, machine.AgentConfig), "--root", e.root, "--once").CombinedOutput()
		if want := fmt.Sprintf("Bootstrap ok: applied %d objects (0 changed)", docs); err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("kubeup-agent --once: %v, want %q in:\n%s", err, want, out)
		}

		// The controller-manager's bootstrapsigner signs cluster-info with the token, which is
		// what lets a kubeadm-style join trust it.
		jws := "jws-kubeconfig-" + e.bundle.Token.ID
		waitFor(t, ctx, "bootstrapsigner signs kube-public/cluster-info", time.Minute, func() error {
			cm, err := e.adminCS.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data[jws] == "" {
				return fmt.Errorf("cluster-info has keys %v, no %s", slices.Collect(maps.Keys(cm.Data)), jws)
			}
			return nil
		})
		// Events are sent in the background, by client-go's events library: waited for.
		waitFor(t, ctx, "a KubeupPhase3Bootstrap Event on Node master", 30*time.Second, func() error {
			if eventReasons(ctx, t, e.adminCS)["KubeupPhase3Bootstrap"] == 0 {
				return errors.New("none yet")
			}
			return nil
		})
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("admin.conf is cluster-admin through RBAC, not system:masters", func(t *testing.T) {
		r, err := e.adminCS.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		groups := r.Status.UserInfo.Groups
		if slices.Contains(groups, "system:masters") || !slices.Contains(groups, pki.ClusterAdminsGroup) {
			t.Fatalf("admin.conf groups %v", groups)
		}
		if _, err := e.adminCS.CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			t.Fatalf("admin cannot list secrets: %v", err)
		}
	})

	t.Run("anonymous requests are refused but for the health endpoints", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(e.bundle.File("pki/ca.crt"))
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
		get := func(path string) int {
			resp, err := hc.Get(e.admin.Host + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// Not even authenticated (401), so RBAC is not what stands in the way: the structured
		// authentication config lets anonymous requests through for the health paths only.
		for _, path := range []string{"/api/v1/namespaces/default/pods", "/api/v1/namespaces/kube-system/secrets", "/api/v1/nodes",
			"/version", "/api/v1/namespaces/kube-public/configmaps/cluster-info", "/livez/etcd", "/metrics"} {
			if code := get(path); code != http.StatusUnauthorized {
				t.Errorf("anonymous GET %s: %d, want 401", path, code)
			}
		}
		for _, path := range manifests.AnonymousPaths {
			if code := get(path); code != http.StatusOK {
				t.Errorf("anonymous GET %s: %d, want 200 (the static pods' probes send no credentials)", path, code)
			}
		}
	})

	t.Run("agent metrics only for a scraper the API server allows", func(t *testing.T) { checkAgentMetrics(t, ctx, e) })
	t.Run("secrets are encrypted at rest", func(t *testing.T) { checkEncryption(t, ctx, e) })
	t.Run("etcd snapshot with the bundle's healthcheck-client certificate", func(t *testing.T) { checkSnapshot(t, ctx, e) })

	var node1 *rest.Config
	t.Run("TLS bootstrap with a node config's credentials", func(t *testing.T) { node1 = checkTLSBootstrap(t, ctx, e) })
	if node1 == nil {
		t.FailNow()
	}
	t.Run("node registers itself", func(t *testing.T) { registerNode(t, ctx, node1, "node-1", "127.0.0.11") })
	t.Run("a node's agent writes the mirrors' credentials, the one Secret it may read", func(t *testing.T) {
		checkRegistryHosts(t, ctx, e, node1)
	})
	t.Run("kubelet-serving CSRs are approved by the agent, only for the node's own addresses", func(t *testing.T) {
		checkServingCSRs(t, ctx, e, node1)
	})

	t.Run("kubeup verify --phase 3", func(t *testing.T) {
		bin := testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
		cmd := exec.Command(bin, "verify", "--kubeconfig", filepath.Join(e.root, "etc/kubernetes/admin.conf"), "--phase", "3", "-o", "json")
		out, err := cmd.Output()
		var results []verify.Result
		if jerr := json.Unmarshal(out, &results); jerr != nil {
			t.Fatalf("kubeup verify -o json: %v (%v)\n%s", jerr, err, out)
		}
		checks := map[string]bool{}
		for _, r := range results {
			t.Log(r.String())
			checks[r.Check] = r.Pass
		}
		for _, c := range []string{"api-pods", "controller-manager", "scheduler", "kube-controller-manager-lease", "kube-scheduler-lease", "anonymous-api"} {
			if !checks[c] {
				t.Errorf("phase 3 check %s did not pass", c)
			}
		}
		if err != nil {
			t.Errorf("kubeup verify exited with %v", err)
		}
		// -o yaml is the same document with the same field names.
		out, err = exec.Command(bin, "verify", "--kubeconfig", filepath.Join(e.root, "etc/kubernetes/admin.conf"), "--phase", "3", "-o", "yaml").Output()
		var again []verify.Result
		if yerr := yaml.Unmarshal(out, &again); yerr != nil || err != nil || len(again) != len(results) {
			t.Errorf("kubeup verify -o yaml: %v, %v, %d results, want %d\n%s", err, yerr, len(again), len(results), out)
		}
		// Without a usable kubeconfig nothing can pass: the command must say so by its exit code
		// (2: the named file is missing; test/cli checks the others).
		bad := exec.Command(bin, "verify", "--kubeconfig", filepath.Join(e.out, "missing.conf"), "--phase", "3")
		if err := bad.Run(); bad.ProcessState == nil || bad.ProcessState.ExitCode() != 2 {
			t.Errorf("kubeup verify with a missing kubeconfig: %v, want exit 2", err)
		}
	})

	t.Run("audit log is written", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(e.root, "var/log/kubernetes/audit/audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"kind":"Event"`) || !strings.Contains(string(data), `"resource":"secrets"`) {
			t.Fatalf("audit log (%d bytes) records no secret access", len(data))
		}
		if strings.Contains(string(data), `"requestObject"`) {
			t.Error("audit log holds request bodies: the policy must log metadata only")
		}
	})

	t.Run("kubeadm certs check-expiration reads the tree", func(t *testing.T) {
		// --rootfs: kubeadm chroots into the tree and finds everything at its kubeadm path.
		cmd := exec.Command(filepath.Join(e.toolchain, "kubeadm"), "certs", "check-expiration", "--rootfs", e.root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubeadm: %v\n%s", err, out)
		}
		for _, name := range []string{"admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
			"controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server", "front-proxy-client",
			"scheduler.conf", "super-admin.conf", "ca", "etcd-ca", "front-proxy-ca"} {
			if !strings.Contains(string(out), name) {
				t.Errorf("kubeadm does not list %s:\n%s", name, out)
			}
		}
		if strings.Contains(string(out), "MISSING") || strings.Contains(string(out), "invalid") {
			t.Errorf("kubeadm reports a problem:\n%s", out)
		}
	})
}

// testWriter sends the agent's console lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
