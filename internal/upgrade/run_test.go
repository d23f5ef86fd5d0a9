package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// machines is a fake cluster whose Replace boots a node again at a release, as a machine
// replaced from a new image would, unless the node is in broken.
type machines struct {
	t        *testing.T
	c        *fake.Clientset
	mu       sync.Mutex
	release  string
	replaced []string
	broken   map[string]bool
	// silent makes the API server not answer while the master runs the new release (its
	// API server never starts); restored are the snapshots Restore was given.
	silent   bool
	down     atomic.Bool // read by the fake API's reactor, which runs under mu too
	restored []string
}

func newMachines(t *testing.T, names ...string) *machines {
	m := &machines{t: t, c: fake.NewClientset(), release: "v1.37.2", broken: map[string]bool{}}
	for _, n := range names {
		m.set(n, "boot-0", "v1.36.3", true)
	}
	m.c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		if m.down.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	return m
}

// restore is Restore: the master at the old release again, and the snapshot it was given.
func (m *machines) restore(ctx context.Context, name, snapshot string) error {
	m.mu.Lock()
	m.restored = append(m.restored, snapshot)
	m.mu.Unlock()
	m.down.Store(false)
	return m.replace("v1.36.3")(ctx, name)
}

func (m *machines) set(name, boot, kubelet string, ready bool) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		NodeInfo:   corev1.NodeSystemInfo{BootID: boot, KubeletVersion: kubelet},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
	}}
	ctx := context.Background()
	if old, err := m.c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		n.Spec = old.Spec
		if _, err := m.c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			m.t.Fatal(err)
		}
		return
	}
	if _, err := m.c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machines) replace(release string) func(context.Context, string) error {
	return func(_ context.Context, name string) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.replaced = append(m.replaced, name+"@"+release)
		m.set(name, fmt.Sprintf("boot-%d", len(m.replaced)), release, !m.broken[name] || release != m.release)
		m.down.Store(m.silent && name == "master" && release == m.release)
		return nil
	}
}

func (m *machines) runner(t *testing.T, dir string) *Runner {
	var out strings.Builder
	t.Cleanup(func() { t.Log(out.String()) })
	return &Runner{
		Client:         m.c,
		Snapshot:       func(context.Context) (string, error) { return "/snapshots/one.db", nil },
		Replace:        m.replace(m.release),
		Restore:        m.restore,
		CheckMaster:    func(context.Context) error { return nil },
		KubeletServes:  func(context.Context, string) error { return nil },
		ProgressPath:   filepath.Join(dir, ProgressFile),
		MachineTimeout: 2 * time.Second,
		DrainTimeout:   2 * time.Second,
		Interval:       10 * time.Millisecond,
		Out:            &out,
	}
}

func testPlan(t *testing.T) Plan {
	p, err := MakePlan(Cluster{Name: "local", APIServer: "v1.36.3", Master: "master",
		Kubelets: map[string]string{"master": "v1.36.3", "node-1": "v1.36.3", "node-2": "v1.36.3"}}, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunReplacesEveryMachineInOrderAndRecordsIt(t *testing.T) {
	m := newMachines(t, "master", "node-1", "node-2")
	dir := t.TempDir()
	r := m.runner(t, dir)
	prog, err := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), testPlan(t), prog); err != nil {
		t.Fatal(err)
	}
	if want := []string{"master@v1.37.2", "node-1@v1.37.2", "node-2@v1.37.2"}; !slices.Equal(m.replaced, want) {
		t.Errorf("replaced %v, want %v", m.replaced, want)
	}
	// The last line times each step, for the user and for make bench.
	last := regexp.MustCompile(`upgrade to v1\.37\.2 done in \S+ \(snapshot \S+, master \S+, node-1 \S+, node-2 \S+, add-ons \S+\)\n$`)
	if out := r.Out.(*strings.Builder).String(); !last.MatchString(out) {
		t.Errorf("the last line does not time each step:\n%s", out)
	}
	for _, name := range []string{"master", "node-1", "node-2"} {
		n, _ := m.c.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if n.Spec.Unschedulable {
			t.Errorf("%s is still cordoned", name)
		}
	}
	saved, err := LoadProgress(r.ProgressPath, "v1.37.2", "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Done) != 0 {
		t.Errorf("a finished upgrade's record is not resumed, but got %+v", saved)
	}
	st, err := os.Stat(r.ProgressPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("progress file: %v, %v", st, err)
	}
}

func TestRunResumesWhereItStopped(t *testing.T) {
	m := newMachines(t, "master", "node-1", "node-2")
	m.broken["node-1"] = true
	dir := t.TempDir()
	r := m.runner(t, dir)
	plan := testPlan(t)
	prog, _ := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	err := r.Run(context.Background(), plan, prog)
	if err == nil || !strings.Contains(err.Error(), "node node-1 did not come back") || !strings.Contains(err.Error(), "no further machine") {
		t.Fatalf("a node that does not come back: %v", err)
	}
	if want := []string{"master@v1.37.2", "node-1@v1.37.2"}; !slices.Equal(m.replaced, want) {
		t.Fatalf("replaced %v, want %v (nothing after the node that failed)", m.replaced, want)
	}
	// The fix: node-1 boots. The next run starts from node-1, not from the snapshot.
	m.broken["node-1"] = false
	m.replaced = nil
	snapshots := 0
	r = m.runner(t, dir)
	r.Snapshot = func(context.Context) (string, error) { snapshots++; return "again.db", nil }
	prog, err = LoadProgress(r.ProgressPath, "v1.37.2", "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if prog.From != "v1.36.3" || prog.Snapshot != "/snapshots/one.db" || !slices.Equal(prog.Done, []string{"snapshot", "replace-master/master"}) {
		t.Fatalf("the record after the failure: %+v", prog)
	}
	if got := strings.Join(prog.Unfinished(), " "); got != "node-1 node-2" {
		t.Errorf("the machines the record says are still to do: %s, want node-1 node-2", got)
	}
	if err := r.Run(context.Background(), plan, prog); err != nil {
		t.Fatal(err)
	}
	if want := []string{"node-1@v1.37.2", "node-2@v1.37.2"}; !slices.Equal(m.replaced, want) || snapshots != 0 {
		t.Errorf("resumed: replaced %v, %d snapshots; want %v and none", m.replaced, snapshots, want)
	}
}

func TestRunRestoresAMasterThatFailsItsChecks(t *testing.T) {
	m := newMachines(t, "master", "node-1", "node-2")
	r := m.runner(t, t.TempDir())
	r.CheckMaster = func(context.Context) error { return errors.New("phase 3: the API server is not ready") }
	prog, _ := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	err := r.Run(context.Background(), testPlan(t), prog)
	if err == nil || !strings.Contains(err.Error(), "phase 3: the API server is not ready") || !strings.Contains(err.Error(), "old root") {
		t.Fatalf("a master that fails its checks: %v", err)
	}
	if want := []string{"master@v1.37.2", "master@v1.36.3"}; !slices.Equal(m.replaced, want) {
		t.Errorf("replaced %v, want %v (the master restored, no node touched)", m.replaced, want)
	}
	// Its API server answered at the new release (and so wrote to etcd): the data goes back
	// to the snapshot too.
	if want := []string{"/snapshots/one.db"}; !slices.Equal(m.restored, want) {
		t.Errorf("restored with snapshots %q, want %q", m.restored, want)
	}
	// The cluster served at the old release again: the next attempt takes a new snapshot.
	saved, err := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err != nil || len(saved.Done) != 0 {
		t.Errorf("the record after a restored master: %+v, %v; want no step done", saved, err)
	}
}

// A master whose API server never answers at the new release (its kubelet cannot start) left
// etcd's data as it was: the old root gets it as it is, unless the new release runs another
// etcd.
func TestRunRestoresTheSnapshotOnlyWhenTheDataWasTouched(t *testing.T) {
	for _, newEtcd := range []bool{false, true} {
		m := newMachines(t, "master", "node-1", "node-2")
		m.silent = true
		r := m.runner(t, t.TempDir())
		r.MachineTimeout = 200 * time.Millisecond
		r.NewEtcd = newEtcd
		prog, _ := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
		err := r.Run(context.Background(), testPlan(t), prog)
		if err == nil || !strings.Contains(err.Error(), "not Ready at v1.37.2") {
			t.Fatalf("a master that never answers at the new release: %v", err)
		}
		want := []string{""}
		if newEtcd {
			want = []string{"/snapshots/one.db"}
		}
		if !slices.Equal(m.restored, want) {
			t.Errorf("another etcd %v: restored with snapshots %q, want %q", newEtcd, m.restored, want)
		}
	}
}

func TestRunBatchesNodes(t *testing.T) {
	m := newMachines(t, "master", "node-1", "node-2")
	r := m.runner(t, t.TempDir())
	r.MaxUnavailable = 2
	prog, _ := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err := r.Run(context.Background(), testPlan(t), prog); err != nil {
		t.Fatal(err)
	}
	if len(m.replaced) != 3 || m.replaced[0] != "master@v1.37.2" {
		t.Errorf("replaced %v", m.replaced)
	}
}

func TestLoadProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), ProgressFile)
	p, err := LoadProgress(path, "v1.36.3", "v1.37.2")
	if err != nil || p.From != "v1.36.3" || p.To != "v1.37.2" || len(p.Done) != 0 {
		t.Fatalf("no record: %+v, %v", p, err)
	}
	p.Done = []string{"snapshot"}
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	p.Planned = []string{"snapshot", "replace-master/master", "replace-node/node-1", "replace-node/node-2", "addons"}
	p.Done = append(p.Done, "replace-master/master")
	if got := strings.Join(p.Unfinished(), " "); got != "node-1 node-2" {
		t.Errorf("unfinished machines: %s, want node-1 node-2", got)
	}
	if _, err := LoadProgress(path, "v1.36.3", "v1.36.3"); err == nil || !strings.Contains(err.Error(), "kubeup upgrade --to v1.37.2") {
		t.Errorf("an unfinished upgrade to another release: %v", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProgress(path, "v1.36.3", "v1.37.2"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a damaged record: %v", err)
	}
}

// On a target whose nodes are members of a group, the nodes go through RefreshNodes: every
// old one cordoned before the refresh starts, drained when the group holds it, its Node
// deleted afterwards; the new nodes count once Ready at the new release.
func TestRunRefreshesTheNodesOfAGroup(t *testing.T) {
	m := newMachines(t, "master", "node-1", "node-2")
	r := m.runner(t, t.TempDir())
	var held []string
	r.RefreshNodes = func(ctx context.Context, hold func(context.Context, string) error) error {
		for i, name := range []string{"node-1", "node-2"} {
			m.set(fmt.Sprintf("ip-10-30-0-%d", 20+i), "boot-1", m.release, true) // launched first
			n, err := m.c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !n.Spec.Unschedulable {
				t.Errorf("%s is not cordoned when the group holds it: %v", name, err)
			}
			if err := hold(ctx, name); err != nil {
				return err
			}
			held = append(held, name)
		}
		return nil
	}
	prog, _ := LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err := r.Run(context.Background(), testPlan(t), prog); err != nil {
		t.Fatal(err)
	}
	if want := []string{"master@v1.37.2"}; !slices.Equal(m.replaced, want) || !slices.Equal(held, []string{"node-1", "node-2"}) {
		t.Errorf("replaced by name %v, held %v; want only the master by name, both nodes held", m.replaced, held)
	}
	for _, name := range []string{"node-1", "node-2"} {
		if _, err := m.c.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{}); err == nil {
			t.Errorf("the Node of %s, whose machine is gone, is still there", name)
		}
	}
	if !slices.Contains(prog.Done, "replace-node/node-1") || !slices.Contains(prog.Done, "replace-node/node-2") || prog.Finished == nil {
		t.Errorf("the record after the refresh: %+v", prog)
	}

	// A node the group does not hold (its machine current already) is kept, uncordoned.
	m = newMachines(t, "master", "node-1", "node-2")
	r = m.runner(t, t.TempDir())
	r.RefreshNodes = func(ctx context.Context, hold func(context.Context, string) error) error {
		m.set("ip-10-30-0-20", "boot-1", m.release, true)
		return hold(ctx, "node-1")
	}
	prog, _ = LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err := r.Run(context.Background(), testPlan(t), prog); err != nil {
		t.Fatal(err)
	}
	if n, err := m.c.CoreV1().Nodes().Get(context.Background(), "node-2", metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Errorf("node-2, which the group did not hold: %v; want it kept, uncordoned", err)
	}
	if _, err := m.c.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{}); err == nil {
		t.Errorf("node-1's Node is still there after the group let it go")
	}

	// A drain that fails stops the upgrade, naming the node.
	m = newMachines(t, "master", "node-1", "node-2")
	r = m.runner(t, t.TempDir())
	r.RefreshNodes = func(ctx context.Context, hold func(context.Context, string) error) error {
		return hold(ctx, "node-3")
	}
	prog, _ = LoadProgress(r.ProgressPath, "v1.36.3", "v1.37.2")
	if err := r.Run(context.Background(), testPlan(t), prog); err == nil || !strings.Contains(err.Error(), "node-3") || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("a group holding a node the plan does not replace: %v", err)
	}
}

// A node is done once it runs a Ready pod of every DaemonSet it ran before that still exists:
// a DaemonSet deleted while the node is replaced (kubeup verify's probes, whose namespace goes
// a moment after `kubeup up` ends) is not waited for, and one that is still there but has no
// Ready pod on the new machine fails the node, naming it. (Measured: TestConfigChange's node
// waited its whole 20-minute timeout for the pod of a verify probe deleted with its namespace.)
func TestRunWaitsForTheDaemonSetsThatStillExist(t *testing.T) {
	ctx := context.Background()
	for _, flannelReady := range []bool{true, false} {
		m := newMachines(t, "master", "node-1", "node-2")
		for _, n := range []string{"master", "node-1", "node-2"} {
			m.set(n, "boot-0", "v1.37.2", true)
		}
		// The fake API ignores field selectors: node-2 is the only node with pods.
		pod := func(ns, ds string, uid types.UID, ready bool) {
			status := corev1.ConditionFalse
			if ready {
				status = corev1.ConditionTrue
			}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ds + "-node-2", Labels: map[string]string{"pod-template-generation": "0"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds, UID: uid, Controller: ptr.To(true)}}},
				Spec:   corev1.PodSpec{NodeName: "node-2"},
				Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}}
			m.c.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
			if _, err := m.c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, ds := range []struct {
			ns, name string
			uid      types.UID
		}{{"kube-flannel", "kube-flannel-ds", "uid-flannel"}, {"kubeup-verify-x", "probe", "uid-probe"}} {
			if _, err := m.c.AppsV1().DaemonSets(ds.ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ds.ns, Name: ds.name, UID: ds.uid}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pod(ds.ns, ds.name, ds.uid, true)
		}
		r := m.runner(t, t.TempDir())
		replace := r.Replace
		r.Replace = func(ctx context.Context, name string) error {
			// The probe's namespace goes meanwhile; flannel's pod restarts on the new machine.
			m.c.AppsV1().DaemonSets("kubeup-verify-x").Delete(ctx, "probe", metav1.DeleteOptions{})
			m.c.CoreV1().Pods("kubeup-verify-x").Delete(ctx, "probe-node-2", metav1.DeleteOptions{})
			pod("kube-flannel", "kube-flannel-ds", "uid-flannel", flannelReady)
			return replace(ctx, name)
		}
		plan, err := MakePlan(Cluster{Name: "local", APIServer: "v1.37.2", Master: "master",
			Kubelets: map[string]string{"master": "v1.37.2", "node-1": "v1.37.2", "node-2": "v1.37.2"},
			Changed:  map[string]string{"master": "", "node-1": "", "node-2": "config"}}, "v1.37.2")
		if err != nil {
			t.Fatal(err)
		}
		prog, _ := LoadProgress(r.ProgressPath, "v1.37.2", "v1.37.2")
		err = r.Run(ctx, plan, prog)
		switch {
		case flannelReady && err != nil:
			t.Errorf("flannel's pod Ready on the new machine, the probe's DaemonSet gone: %v", err)
		case !flannelReady && (err == nil || !strings.Contains(err.Error(), "no Ready pod yet of DaemonSet kube-flannel/kube-flannel-ds")):
			t.Errorf("flannel's pod not Ready on the new machine: %v; want the node failed, naming flannel's DaemonSet", err)
		}
	}
}
