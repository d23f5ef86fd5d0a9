//go:build e2e

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/verify"
	"kubeup.dev/kubeup/test/testenv"
)

// env is a cluster brought up by the real `kubeup up` for one test.
type env struct {
	t          *testing.T
	config     string
	kubeup     string
	state      string
	spec       *qemu.Spec
	kubeconfig string
	client     kubernetes.Interface
}

// up runs `kubeup up` with configs/local.yaml (what `make up` runs) and nodes nodes; at the
// end of the test it collects logs if the test failed and runs `kubeup down`.
func up(t *testing.T, nodes int) *env {
	return upWith(t, nodes, "configs/local.yaml")
}

// upWith is up with another cluster config (a path from the repository root, or absolute).
func upWith(t *testing.T, nodes int, config string) *env {
	return upPrepared(t, nodes, config, nil)
}

// atVersion is config (a path from the repository root, or absolute) as an absolute path, or
// a copy of it whose kubernetesVersion is release, where that is another.
func atVersion(t *testing.T, config, release string) string {
	if !filepath.IsAbs(config) {
		config = filepath.Join(testenv.RepoRoot(), config)
	}
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`(?m)^kubernetesVersion: .*$`)
	if !version.Match(data) {
		t.Fatalf("%s names no kubernetesVersion", config)
	}
	changed := version.ReplaceAll(data, []byte("kubernetesVersion: "+release))
	if bytes.Equal(changed, data) {
		return config
	}
	copied := filepath.Join(t.TempDir(), release+"-"+filepath.Base(config))
	if err := os.WriteFile(copied, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	return copied
}

// upPrepared is upWith with prepare run on the (empty) state directory before `kubeup up`.
func upPrepared(t *testing.T, nodes int, config string, prepare func(state string)) *env {
	return upAt(t, nodes, config, testenv.Kubernetes(t), prepare)
}

// upAt is upPrepared at another release than the one under test, from its image.
func upAt(t *testing.T, nodes int, config, release string, prepare func(state string)) *env {
	img := testenv.ImageDirOf(t, release)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("QEMU is not installed: " + qemu.InstallHint + " (make e2e does it)")
	}
	e := &env{t: t, config: atVersion(t, config, release), state: filepath.Join(t.TempDir(), "state")}
	e.kubeconfig = filepath.Join(e.state, "qemu", "admin.conf")
	e.kubeup = testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
	t.Cleanup(func() {
		if t.Failed() {
			e.collect()
		}
		if out, err := e.run("down"); err != nil {
			t.Errorf("kubeup down: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(e.state, "qemu")); !os.IsNotExist(err) {
			t.Errorf("kubeup down left %s/qemu behind", e.state)
		}
	})
	if prepare != nil {
		prepare(e.state)
	}
	start := time.Now()
	cmd := exec.Command(e.kubeup, "up", "--config", e.config, "--state", e.state, "--image", img,
		fmt.Sprintf("--num-nodes=%d", nodes), "--timeout", "40m")
	cmd.Dir = testenv.RepoRoot()
	out := &lineLog{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.Flush()
	if err != nil {
		t.Fatalf("kubeup up: %v", err)
	}
	t.Logf("kubeup up: every phase passed %v after it started", time.Since(start).Round(time.Second))
	if e.spec, err = qemu.Load(filepath.Join(e.state, "qemu")); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second // a rebooting master must not hang a poll
	if e.client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// stream runs kubeup with args against the cluster, its output in the test log as it comes.
func (e *env) stream(t *testing.T, args ...string) error {
	cmd := exec.Command(e.kubeup, append(args, "--config", e.config, "--state", e.state)...)
	cmd.Dir = testenv.RepoRoot()
	log := &lineLog{t: t}
	cmd.Stdout, cmd.Stderr = log, log
	err := cmd.Run()
	log.Flush()
	return err
}

func (e *env) run(args ...string) (string, error) {
	cmd := exec.Command(e.kubeup, append(args, "--config", e.config, "--state", e.state)...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lineLog passes a command's output to the test log line by line, as it comes.
type lineLog struct {
	t   *testing.T
	buf []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLog) Flush() {
	if len(l.buf) > 0 {
		l.t.Log(string(l.buf))
	}
}

// checkAll runs every phase's checks, as `kubeup verify --phase all` does.
func (e *env) checkAll(t *testing.T, ctx context.Context) {
	t.Helper()
	cfg, _ := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	var nodes []string
	for _, m := range e.spec.Machines {
		nodes = append(nodes, m.Name)
	}
	k, err := verify.New(cfg, verify.Options{Nodes: nodes, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range k.Run(ctx, "all") {
		t.Log(r.String())
		if !r.Pass {
			t.Errorf("%s", r)
		}
	}
}

var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// checkBringUp asserts what `kubeup up`'s own checks do not: every machine published its
// phase-1 report on its Node, nothing was pulled from a registry, and the configs the nodes
// were handed hold no private key.
func (e *env) checkBringUp(ctx context.Context) {
	t := e.t
	for _, m := range e.spec.Machines {
		var n *corev1.Node
		var err error
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, err = e.client.CoreV1().Nodes().Get(ctx, m.Name, metav1.GetOptions{})
			if err == nil && n.Annotations[agent.Phase1Annotation] != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Second) // polling the API for the agent's annotation
		}
		if err != nil {
			t.Errorf("node %s: %v", m.Name, err)
			continue
		}
		var r machine.Phase1Report
		if err := json.Unmarshal([]byte(n.Annotations[agent.Phase1Annotation]), &r); err != nil || !r.Pass || r.Machine != m.Name {
			t.Errorf("node %s: phase-1 annotation %q: %v", m.Name, n.Annotations[agent.Phase1Annotation], err)
		}
		if m.Role == "master" {
			continue
		}
		raw, err := os.ReadFile(m.Ignition)
		if err != nil {
			t.Fatal(err)
		}
		_, files := testenv.IgnitionFiles(t, raw)
		for path, data := range files {
			if privateKeyPEM.Match(data) || strings.HasSuffix(path, ".key") {
				t.Errorf("%s's config writes a private key to %s", m.Name, path)
			}
		}
	}
	events, err := e.client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	present := 0
	for _, ev := range events.Items {
		switch ev.Reason {
		case "Pulling", "Failed", "ErrImagePull", "BackOff":
			if ev.Reason == "Pulling" || strings.Contains(ev.Message, "image") {
				t.Errorf("event %s %s/%s: %s", ev.Reason, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.Message)
			}
		case "Pulled":
			if strings.Contains(ev.Message, "already present on machine") {
				present++
			} else {
				t.Errorf("an image was pulled: %s/%s: %s", ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.Message)
			}
		}
	}
	if present == 0 {
		t.Errorf("no kubelet said an image was already present: did the kubelets report events? (%d events)", len(events.Items))
	}
	e.checkScriptOutput()
}

// checkScriptOutput reads the cluster as a script would: kubeup status -o json and -o yaml
// (every machine Ready, with its bring-up timeline, the API answering) and the kubeconfig
// kubeup kubeconfig names.
func (e *env) checkScriptOutput() {
	t := e.t
	for _, format := range []string{"json", "yaml"} {
		cmd := exec.Command(e.kubeup, "status", "-o", format, "--config", e.config, "--state", e.state)
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.Output()
		var st struct {
			Cluster    string `json:"cluster"`
			APIAnswers bool   `json:"apiAnswers"`
			Machines   []struct {
				Name     string            `json:"name"`
				Stage    string            `json:"stage"`
				Timeline *machine.Timeline `json:"timeline"`
			} `json:"machines"`
		}
		if yerr := yaml.Unmarshal(out, &st); err != nil || yerr != nil {
			t.Errorf("kubeup status -o %s: %v, %v\n%s", format, err, yerr, out)
			continue
		}
		if !st.APIAnswers || st.Cluster == "" || len(st.Machines) != len(e.spec.Machines) {
			t.Errorf("kubeup status -o %s: cluster %q, API answers %v, %d machines, want %d", format, st.Cluster, st.APIAnswers, len(st.Machines), len(e.spec.Machines))
		}
		for _, m := range st.Machines {
			if m.Stage != "Ready" || m.Timeline == nil {
				t.Errorf("kubeup status -o %s: machine %s at stage %q, timeline %v; want Ready with a timeline", format, m.Name, m.Stage, m.Timeline)
			}
		}
	}
	if out, err := e.run("kubeconfig"); err != nil || strings.TrimSpace(out) != e.kubeconfig {
		t.Errorf("kubeup kubeconfig: %v, %q; want %s", err, out, e.kubeconfig)
	}
}

// TestSmoke is CI's guard: a master and one node, every phase, no faults.
func TestSmoke(t *testing.T) {
	e := up(t, 1)
	e.checkBringUp(context.Background())
}

// TestCluster is the full e2e: a master and two nodes, every phase, then a master reboot
// (the cluster returns to all-pass and keeps its data) and a node power cycle (it rejoins).
func TestCluster(t *testing.T) {
	ctx := context.Background()
	e := up(t, 2)
	e.checkBringUp(ctx)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives-reboot", Namespace: "default"}, Data: map[string]string{"written": time.Now().String()}}
	if _, err := e.client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var snapshot string // saved below, restored at the end
	t.Run("etcd snapshot through the API server", func(t *testing.T) {
		cur, err := e.client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e.kubeup, "etcd", "snapshot", "save", "-o", "json", "--config", e.config, "--state", e.state)
		cmd.Dir = testenv.RepoRoot()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var res etcdsnapshot.Result
		if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil {
			t.Fatalf("kubeup etcd snapshot save: %v, %v\n%s%s", err, jerr, out, stderr.String())
		}
		t.Logf("snapshot: %+v", res)
		written, _ := strconv.ParseInt(cur.ResourceVersion, 10, 64)
		st, err := os.Stat(res.Path)
		if err != nil || st.Mode().Perm() != 0o600 || filepath.Dir(res.Path) != filepath.Join(e.state, "snapshots") || res.Revision < written {
			t.Errorf("snapshot %+v: %v; want a 0600 file in %s/snapshots at revision %d or later", res, err, e.state, written)
		}
		if err := etcdsnapshot.Check(res.Path); err != nil {
			t.Error(err)
		}
		snapshot = res.Path
	})
	t.Run("master reboot", func(t *testing.T) {
		before := e.bootID(t, ctx, "master")
		if err := e.spec.Reboot("master"); err != nil {
			t.Fatal(err)
		}
		e.waitRebooted(t, ctx, "master", before, 15*time.Minute)
		e.checkAll(t, ctx)
		got, err := e.client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil || got.Data["written"] != cm.Data["written"] {
			t.Errorf("ConfigMap after the reboot: %v %v", got.Data, err)
		}
	})
	t.Run("node power cycle", func(t *testing.T) {
		before := e.bootID(t, ctx, "node-2")
		if err := e.spec.PowerCycle("node-2"); err != nil {
			t.Fatal(err)
		}
		e.waitRebooted(t, ctx, "node-2", before, 10*time.Minute)
	})
	t.Run("node replaced", func(t *testing.T) {
		// What an upgrade does to every machine: power off, a fresh disk from the image, the
		// machine's config again, through the provider seam.
		n, err := e.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := cluster.Load(e.config)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pki.Load(e.state, cfg)
		if err != nil {
			t.Fatal(err)
		}
		configs, err := ignition.Configs(cfg, b, ignition.Options{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(configs, func(c ignition.Config) bool { return c.Name == "node-1" })
		p := &qemu.Provider{Config: cfg, Dir: filepath.Join(e.state, "qemu")}
		if err := p.Replace(ctx, "node-1", configs[i]); err != nil {
			t.Fatal(err)
		}
		e.waitRebooted(t, ctx, "node-1", n.Status.NodeInfo.BootID, 10*time.Minute)
		after, err := e.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.Status.NodeInfo.MachineID == n.Status.NodeInfo.MachineID {
			t.Errorf("node-1 kept its machine ID %s: its disk was not replaced", n.Status.NodeInfo.MachineID)
		}
		ms, err := p.Machines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Name == "node-1" && (m.Console.Ignition != "ok" || m.Console.Boots < 2) {
				t.Errorf("node-1's console after the replacement: %+v (want its config applied again, on a later boot)", m.Console)
			}
		}
		e.checkAll(t, ctx)
	})
	t.Run("master lost, restored from the bundle and the snapshot", func(t *testing.T) {
		if snapshot == "" {
			t.Fatal("no snapshot was saved")
		}
		after := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-snapshot", Namespace: "default"}}
		if _, err := e.client.CoreV1().ConfigMaps("default").Create(ctx, after, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		nodes := map[string]string{}
		for _, n := range []string{"node-1", "node-2"} {
			nodes[n] = e.bootID(t, ctx, n)
		}
		if err := e.spec.Destroy("master"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := e.stream(t, "etcd", "snapshot", "restore", snapshot); err != nil {
			t.Fatalf("kubeup etcd snapshot restore: %v", err)
		}
		t.Logf("restored in %v", time.Since(start).Round(time.Second))
		if got, err := e.client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err != nil || got.Data["written"] != cm.Data["written"] {
			t.Errorf("the ConfigMap written before the snapshot: %v, %v", got, err)
		}
		if _, err := e.client.CoreV1().ConfigMaps("default").Get(ctx, after.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the ConfigMap written after the snapshot: %v, want it gone", err)
		}
		// The restored Nodes carry the snapshot's status (node-2 has been power-cycled since):
		// each kubelet posts its boot ID again within its status interval (10 s).
		for n, boot := range nodes {
			var got string
			err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
				got = e.bootID(t, ctx, n)
				return got == boot, nil
			})
			if err != nil {
				t.Errorf("%s reports boot %s, before the restore %s: the nodes should reconnect as they are, not boot again", n, got, boot)
			}
		}
		e.checkAll(t, ctx)
		// A second restore while the master has its etcd disk is refused, and changes nothing.
		if out, err := e.run("etcd", "snapshot", "restore", snapshot); err == nil || !strings.Contains(out, "--overwrite") {
			t.Errorf("a restore over the master's etcd disk: %v\n%s; want a refusal naming --overwrite", err, out)
		}
	})
}

// bootID is the node's boot ID as its kubelet reports it, asked until the API answers.
func (e *env) bootID(t *testing.T, ctx context.Context, node string) string {
	t.Helper()
	var last error
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			return n.Status.NodeInfo.BootID
		}
		last = err
	}
	t.Fatalf("node %s: %v", node, last)
	return ""
}

// waitRebooted polls until node reports a new boot ID and is Ready again.
func (e *env) waitRebooted(t *testing.T, ctx context.Context, node, bootID string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	seen := "no answer from the API"
	for time.Since(start) < timeout {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			seen = err.Error()
		} else {
			ready := false
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					ready = c.Status == corev1.ConditionTrue
				}
			}
			seen = fmt.Sprintf("boot ID %s (before: %s), Ready %v", n.Status.NodeInfo.BootID, bootID, ready)
			if ready && n.Status.NodeInfo.BootID != bootID {
				t.Logf("%s is back and Ready %v after the fault", node, time.Since(start).Round(time.Second))
				return
			}
		}
		time.Sleep(3 * time.Second) // polling the API while the machine reboots
	}
	t.Fatalf("%s not back after %v: %s", node, timeout, seen)
}

// collect keeps what explains a failure in one folder that outlives the test: every serial
// log, the agents' reports, and every event.
func (e *env) collect() {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kubeup-e2e-%s-%s", e.t.Name(), time.Now().Format("20060102-150405")))
	dir = strings.ReplaceAll(dir, " ", "_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Log(err)
		return
	}
	qdir := filepath.Join(e.state, "qemu")
	logs, _ := filepath.Glob(filepath.Join(qdir, "*.serial.log"))
	for _, l := range logs {
		copyFile(l, filepath.Join(dir, filepath.Base(l)))
		// The agents' lines alone, for a quick read.
		if f, err := os.Open(l); err == nil {
			var b strings.Builder
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "kubeup") {
					b.WriteString(sc.Text() + "\n")
				}
			}
			f.Close()
			os.WriteFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(l), ".serial.log")+".reports.log"), []byte(b.String()), 0o644)
		}
	}
	if out, err := e.run("status"); err == nil || out != "" {
		os.WriteFile(filepath.Join(dir, "status.txt"), []byte(out), 0o644)
	}
	if e.client == nil {
		if cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig); err == nil {
			cfg.Timeout = 20 * time.Second
			e.client, _ = kubernetes.NewForConfig(cfg)
		}
	}
	if e.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if evs, err := e.client.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
			var b strings.Builder
			for _, ev := range evs.Items {
				at := ev.LastTimestamp.Time
				if at.IsZero() { // recorded through events.k8s.io (the agents)
					at = ev.EventTime.Time
				}
				fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", at.Format(time.RFC3339), ev.Type, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.Reason, ev.Message)
			}
			os.WriteFile(filepath.Join(dir, "events.txt"), []byte(b.String()), 0o644)
		} else {
			os.WriteFile(filepath.Join(dir, "events.txt"), []byte(err.Error()), 0o644)
		}
	}
	e.t.Logf("logs of the failed cluster: %s", dir)
	fmt.Fprintf(os.Stderr, "kubeup e2e: logs of the failed cluster: %s\n", dir)
}

func copyFile(from, to string) {
	in, err := os.Open(from)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return
	}
	defer out.Close()
	io.Copy(out, in)
}
