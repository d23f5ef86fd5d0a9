//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/versions"
	"kubeup.dev/kubeup/test/testenv"
)

// TestUpgradeRollback brings up a master and two nodes at the older release with a workload.
// An upgrade with an image whose kubelet cannot start fails and rolls the master back (subtest
// rollback); one whose scheduler cannot start fails after the new API server wrote to etcd,
// and rolls the master and etcd's data back (subtest rollback to the snapshot). A test of its
// own, apart from TestUpgrade, so that each make target fits its time (Makefile).
func TestUpgradeRollback(t *testing.T) {
	from, to := versions.Supported[1], versions.Supported[0]
	ctx := context.Background()
	e := upAt(t, 2, "configs/local.yaml", from, nil)
	toImage := testenv.ImageDirOf(t, to)

	const ns = "upgrade-workload"
	workload(t, ctx, e.client, ns, fmt.Sprintf("kept-across-the-rollbacks-%d", time.Now().UnixNano()))
	e.config = atVersion(t, "configs/local.yaml", to)

	// First an image whose kubelet cannot start: the master fails at the new release, gets its
	// old root back, and the cluster serves at the old release again.
	t.Run("rollback", func(t *testing.T) {
		broken := brokenImage(t, toImage, kubelet)
		start := time.Now()
		msg, err := e.run("upgrade", "--to", to, "--image", broken, "--machine-timeout", "8m")
		t.Logf("kubeup upgrade with a broken image (%v):\n%s", time.Since(start).Round(time.Second), msg)
		if err == nil || !strings.Contains(msg, "not Ready at "+to) || !strings.Contains(msg, "back on its old root") {
			t.Fatalf("kubeup upgrade with an image whose kubelet cannot start: %v; want it to fail naming the check and the rollback", err)
		}
		if info, err := e.client.Discovery().ServerVersion(); err != nil || info.GitVersion != from {
			t.Fatalf("after the rollback the API server is %v, %v; want %s", info, err, from)
		}
		n, err := e.client.CoreV1().Nodes().Get(ctx, "master", metav1.GetOptions{})
		if err != nil || n.Status.NodeInfo.KubeletVersion != from || n.Spec.Unschedulable {
			t.Fatalf("the master after the rollback: %v, %v; want its kubelet at %s, schedulable", n.Status.NodeInfo.KubeletVersion, err, from)
		}
		if cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err != nil || cm.Data["value"] != "before the upgrade" {
			t.Fatalf("the ConfigMap after the rollback: %v, %v", cm, err)
		}
		if !strings.Contains(msg, "etcd's data is untouched") {
			t.Errorf("the rollback of a master whose API server never answered restored etcd's data too; want it kept as it was")
		}
	})
	if t.Failed() {
		return
	}
	// Then an image whose scheduler cannot start: the master's API server at the new release
	// answers and writes to etcd, phase 3 fails, and the master gets its old root and etcd's
	// data from the upgrade's snapshot back.
	t.Run("rollback to the snapshot", func(t *testing.T) {
		broken := brokenImage(t, toImage, scheduler)
		start := time.Now()
		msg, err := e.run("upgrade", "--to", to, "--image", broken, "--machine-timeout", "6m")
		t.Logf("kubeup upgrade with an image whose scheduler cannot start (%v):\n%s", time.Since(start).Round(time.Second), msg)
		if err == nil || !strings.Contains(msg, "scheduler") || !strings.Contains(msg, "etcd's data from") || !strings.Contains(msg, "back on its old root") {
			t.Fatalf("kubeup upgrade with an image whose scheduler cannot start: %v; want it to fail naming the scheduler, and the master back on its old root and the snapshot", err)
		}
		if info, err := e.client.Discovery().ServerVersion(); err != nil || info.GitVersion != from {
			t.Fatalf("after the rollback the API server is %v, %v; want %s", info, err, from)
		}
		if cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err != nil || cm.Data["value"] != "before the upgrade" {
			t.Fatalf("the ConfigMap after the rollback: %v, %v", cm, err)
		}
		// etcd's restore moves the revision 1,000,000,000 past the snapshot's: an object
		// written now shows that the data is the snapshot's.
		cm, err := e.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-the-rollback"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rv, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64); rv < 1_000_000_000 {
			t.Errorf("a ConfigMap written after the rollback has resourceVersion %s: etcd's data was not restored from the snapshot", cm.ResourceVersion)
		}
		// The master restored it itself, from its config, onto the etcd disk it kept: the way
		// every target takes.
		if log, err := os.ReadFile(filepath.Join(e.state, "qemu", "master.serial.log")); err != nil ||
			!strings.Contains(string(log), "etcd's data restored from the snapshot in this machine's config") {
			t.Errorf("the master's serial log does not say its agent restored the snapshot from its config (%v)", err)
		}
		e.checkAll(t, ctx)
	})
}

// TestUpgrade brings up a master and two nodes at the older release with a workload; then,
// with a client asking the workload every 500 ms through the API server's service proxy,
// `kubeup upgrade` moves the cluster to the newer release: every machine replaced, every phase
// passing afterwards, the data (and its encryption) kept.
func TestUpgrade(t *testing.T) {
	from, to := versions.Supported[1], versions.Supported[0]
	ctx := context.Background()
	e := upAt(t, 2, "configs/local.yaml", from, nil)
	toImage := testenv.ImageDirOf(t, to)

	const ns = "upgrade-workload"
	secretValue := fmt.Sprintf("kept-across-the-upgrade-%d", time.Now().UnixNano())
	workload(t, ctx, e.client, ns, secretValue)
	e.config = atVersion(t, "configs/local.yaml", to)

	probes := serviceClient(ctx, e.client, ns, 500*time.Millisecond)
	start := time.Now()
	err := e.stream(t, "upgrade", "--to", to, "--image", toImage)
	took := time.Since(start)
	answers := probes()
	if err != nil {
		t.Fatalf("kubeup upgrade: %v", err)
	}

	var unanswered, workloadFailed []string
	for _, a := range answers {
		switch {
		case a.Err == nil:
		case apiDown(a.Err):
			unanswered = append(unanswered, a.At.Format(time.TimeOnly)+" "+a.Err.Error())
		default:
			workloadFailed = append(workloadFailed, a.At.Format(time.TimeOnly)+" "+a.Err.Error())
		}
	}
	summary := fmt.Sprintf("upgrade %s -> %s took %v; %d requests to the workload, %d failed because the API server (the only master, being replaced) did not answer, %d failed in the workload",
		from, to, took.Round(time.Second), len(answers), len(unanswered), len(workloadFailed))
	t.Log(summary)
	for _, f := range workloadFailed {
		t.Log("workload request failed: " + f)
	}
	if n := len(unanswered); n > 0 {
		t.Logf("the API server did not answer from %s to %s (first: %s)", unanswered[0][:8], unanswered[n-1][:8], unanswered[0])
	}
	if dir := os.Getenv("KUBEUP_TEST_RESULTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, "upgrade.txt"), []byte(summary+"\n"), 0o644)
	}
	if len(workloadFailed) > 0 {
		t.Errorf("%d requests failed while the API server answered (goal: 0)", len(workloadFailed))
	}

	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if v := n.Status.NodeInfo.KubeletVersion; v != to {
			t.Errorf("node %s: kubelet %s, want %s", n.Name, v, to)
		}
		if n.Spec.Unschedulable {
			t.Errorf("node %s is still cordoned", n.Name)
		}
	}
	if info, err := e.client.Discovery().ServerVersion(); err != nil || info.GitVersion != to {
		t.Errorf("API server version %v, %v; want %s", info, err, to)
	}
	pods, err := e.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			if strings.HasPrefix(c.Image, "registry.k8s.io/kube-") && !strings.HasSuffix(c.Image, ":"+to) {
				t.Errorf("pod %s runs %s, want the %s image", p.Name, c.Image, to)
			}
		}
	}
	cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || cm.Data["value"] != "before the upgrade" {
		t.Errorf("ConfigMap after the upgrade: %v, %v", cm, err)
	}
	secret, err := e.client.CoreV1().Secrets(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || string(secret.Data["value"]) != secretValue {
		t.Errorf("Secret after the upgrade: %v", err)
	}
	// Encrypted at rest still: a snapshot of etcd holds the Secret only as ciphertext.
	snap := filepath.Join(t.TempDir(), "after.db")
	if msg, err := e.run("etcd", "snapshot", "save", snap); err != nil {
		t.Fatalf("kubeup etcd snapshot save: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secretValue)) || !bytes.Contains(data, []byte("k8s:enc:")) {
		t.Errorf("the snapshot holds the Secret's value in clear, or no encrypted value at all")
	}
	e.checkAll(t, ctx)
}

// TestConfigChange brings up a master and two nodes at the newer release and adds a Butane
// snippet to node-2's config: `kubeup upgrade` at the release the cluster runs plans node-2
// alone, for its config, replaces it and no other machine, then has nothing more to do, and
// every phase passes.
func TestConfigChange(t *testing.T) {
	to := versions.Supported[0]
	ctx := context.Background()
	e := upAt(t, 2, "configs/local.yaml", to, nil)
	toImage := testenv.ImageDirOf(t, to)
	if msg, err := e.run("upgrade", "--to", to, "--image", toImage, "--dry-run"); err != nil || !strings.Contains(msg, "nothing to do") {
		t.Fatalf("kubeup upgrade --dry-run at the release it runs, nothing changed: %v\n%s; want nothing to do", err, msg)
	}
	config, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	const node2 = "    mac: \"52:54:00:10:00:12\"\n"
	if !bytes.Contains(config, []byte(node2)) {
		t.Fatalf("%s: no node-2 line %q to add a Butane snippet under", e.config, node2)
	}
	changed := bytes.Replace(config, []byte(node2), []byte(node2+`    butane: |
      storage:
        files:
          - path: /etc/kubeup-config-change
            contents: {inline: rolled}
`), 1)
	e.config = filepath.Join(t.TempDir(), "changed.yaml")
	if err := os.WriteFile(e.config, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	boots := map[string]string{}
	for _, n := range []string{"master", "node-1", "node-2"} {
		boots[n] = e.bootID(t, ctx, n)
	}
	start := time.Now()
	msg, err := e.run("upgrade", "--to", to, "--image", toImage)
	t.Logf("kubeup upgrade with node-2's config changed (%v):\n%s", time.Since(start).Round(time.Second), msg)
	if err != nil || !strings.Contains(msg, "are replaced: node-2 (config))\n") {
		t.Fatalf("kubeup upgrade with node-2's config changed: %v; want a plan of node-2 only, for its config", err)
	}
	for n, boot := range boots {
		if now := e.bootID(t, ctx, n); (now != boot) != (n == "node-2") {
			t.Errorf("%s: boot %s, before %s; want only node-2 replaced", n, now, boot)
		}
	}
	if msg, err := e.run("upgrade", "--to", to, "--image", toImage, "--dry-run"); err != nil || !strings.Contains(msg, "nothing to do") {
		t.Errorf("kubeup upgrade --dry-run after the roll: %v\n%s; want nothing to do", err, msg)
	}
	e.checkAll(t, ctx)
}

// brokenImage is a copy of the image in dir with the file at path (from its root, as find
// gives it, see below) removed. debugfs edits the image's root filesystem (the whole raw disk)
// without mounting it, so no root is needed.
func brokenImage(t *testing.T, dir string, find func(t *testing.T, debugfs, disk string) string) string {
	t.Helper()
	debugfs, err := exec.LookPath("debugfs")
	if err != nil {
		t.Fatal("debugfs is not installed: apt-get install -y e2fsprogs (make e2e-rollback does it)")
	}
	broken := t.TempDir()
	for _, f := range []string{"disk.raw", "vmlinuz", "initrd.img", "kubernetes"} {
		if out, err := exec.Command("cp", "--sparse=always", filepath.Join(dir, f), broken).CombinedOutput(); err != nil {
			t.Fatalf("copy the image: %v\n%s", err, out)
		}
	}
	disk := filepath.Join(broken, "disk.raw")
	path := find(t, debugfs, disk)
	if out, err := exec.Command(debugfs, "-w", "-R", "rm "+path, disk).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rm %s: %v\n%s", path, err, out)
	}
	if out, _ := exec.Command(debugfs, "-R", "stat "+path, disk).CombinedOutput(); !strings.Contains(string(out), "File not found") {
		t.Fatalf("the broken image still has %s:\n%s", path, out)
	}
	return broken
}

// kubelet is the kubelet's binary: a machine booted without it applies its config and never
// registers, and the master's API server never starts.
func kubelet(*testing.T, string, string) string { return "/usr/local/bin/kubelet" }

// scheduler is kube-scheduler's binary in its image, unpacked in containerd's store: a master
// booted without it runs its API server and registers Ready, but its scheduler crash-loops,
// so phase 3 fails after the new release's API server has written to etcd.
func scheduler(t *testing.T, debugfs, disk string) string {
	t.Helper()
	const snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
	out, err := exec.Command(debugfs, "-R", "ls -p "+snapshots, disk).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs ls %s: %v\n%s", snapshots, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// -p: /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) < 6 || f[5] == "." || f[5] == ".." {
			continue
		}
		path := snapshots + "/" + f[5] + "/fs/usr/local/bin/kube-scheduler"
		if out, _ := exec.Command(debugfs, "-R", "stat "+path, disk).CombinedOutput(); !strings.Contains(string(out), "File not found") {
			return path
		}
	}
	t.Fatalf("no kube-scheduler in the image's containerd snapshots (%s)", snapshots)
	return ""
}

// workload makes what the upgrade must keep serving and keep: two replicas of the probe,
// spread over the nodes, with a PodDisruptionBudget of minAvailable 1 and a Service; a
// ConfigMap and a Secret.
func workload(t *testing.T, ctx context.Context, c kubernetes.Interface, ns, secretValue string) {
	t.Helper()
	labels := map[string]string{"app": "upgrade-probe"}
	objs := []func() error{
		func() error {
			_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"value": "before the upgrade"}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, StringData: map[string]string{"value": secretValue}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "probe"},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							Containers: []corev1.Container{{
								Name: "probe", Image: versions.ImagesFor(versions.Kubernetes).Probe, ImagePullPolicy: corev1.PullIfNotPresent,
								Command:        []string{"/kubeup-probe", "serve", "--port=8080"},
								Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
								ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 2},
							}},
							// One replica per machine, so a drain never takes both.
							TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
								MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							}},
						},
					},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "probe"},
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "probe"},
				Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, f := range objs {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "probe", metav1.GetOptions{})
		if err == nil && d.Status.AvailableReplicas == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workload is not available after 10 minutes: %v %v", d.Status, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// serviceClient asks the workload's Service through the API server's service proxy every
// interval until stop, which returns every answer.
func serviceClient(ctx context.Context, c kubernetes.Interface, ns string, every time.Duration) (stop func() []testenv.Answer) {
	return testenv.Steady(ctx, every, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.CoreV1().Services(ns).ProxyGet("http", "probe", "80", "/", nil).DoRaw(ctx)
		return err
	})
}

// apiDown says whether a request failed because the API server did not answer, or was not
// ready to, rather than because the workload failed: the proxy's answers about the workload
// are HTTP statuses that name the service (no endpoints, or the backend not reached).
func apiDown(err error) bool {
	msg := err.Error()
	return !isProxyStatus(err) || !(strings.Contains(msg, "no endpoints available") || strings.Contains(msg, "error trying to reach service"))
}

// isProxyStatus says whether err is an HTTP answer of the API server (a status error), not a
// failure to reach it.
func isProxyStatus(err error) bool {
	var status interface{ Status() metav1.Status }
	return errors.As(err, &status)
}
