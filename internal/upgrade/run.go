package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/kubectl/pkg/util/podutils"

	"kubeup.dev/kubeup/internal/verify"
)

// errRestored ends the error of a master that failed at the new release and was given its old
// root back.
var errRestored = errors.New("it is back on its old root and the cluster serves at the old release (the upgrade stopped: fix the cause and run it again)")

// Runner carries a plan out against a running cluster. What depends on the target (how a
// machine is replaced, how a snapshot is taken) comes in as functions, so the order, the
// waiting and the rollback are the same on every target.
type Runner struct {
	Client kubernetes.Interface
	// Snapshot saves an etcd snapshot and returns its path.
	Snapshot func(ctx context.Context) (string, error)
	// Replace gives machine name a new root at the plan's release (its config rendered for
	// it, the new image); the master keeps its etcd disk.
	Replace func(ctx context.Context, name string) error
	// Restore puts the master back on its old root (the old release's config and image)
	// after it failed its checks at the new one. snapshot is "" when etcd's data is as the old
	// release left it, and else the upgrade's snapshot, which the master's etcd gets back too
	// (the new release wrote to it, and a release's API server may store objects in a form
	// the release before it does not read).
	Restore func(ctx context.Context, name, snapshot string) error
	// NewEtcd says that the new release runs another etcd release than the old: one that
	// starts on the data may move it to a format the older does not read, so a failed
	// master always gets the snapshot back.
	NewEtcd bool
	// CheckMaster runs the checks the replaced master must pass (phase 3), within ctx.
	CheckMaster func(ctx context.Context) error
	// ProgressPath is the progress file (ProgressFile in the state directory).
	ProgressPath string
	// MachineTimeout bounds the wait for a replaced machine; DrainTimeout bounds a drain.
	MachineTimeout, DrainTimeout time.Duration
	// MaxUnavailable is how many nodes are replaced at once (at least 1).
	MaxUnavailable int
	Out            io.Writer
	// RefreshNodes, for a target whose nodes are anonymous members of a group (AWS's Auto
	// Scaling group), replaces every node through the group rather than one by one with
	// Replace: new nodes start from the new image, and each old one is held until held (its
	// drain) returns, then goes. nil: nodes are replaced by name.
	RefreshNodes func(ctx context.Context, held func(ctx context.Context, node string) error) error
	// KubeletServes says whether node's kubelet answers the API server (logs, exec and
	// port-forwards go that way, with the kubelet's serving certificate, which a new machine
	// must have approved first). nil asks the kubelet's /healthz through the API server's node
	// proxy.
	KubeletServes func(ctx context.Context, node string) error
	// Interval is how often a wait asks the API (default 5 s).
	Interval time.Duration
	start    time.Time
	took     []string   // each step of this run that finished, and how long it took
	mu       sync.Mutex // Out, took and the progress record, written by parallel nodes
}

// Run does the plan's steps that progress p does not record as done, in order, and records
// each as it finishes. A master that fails its checks is restored; a node that does not come
// back stops the upgrade (no further machine is taken down). Either way the error says which
// machine and which check.
func (r *Runner) Run(ctx context.Context, plan Plan, p *Progress) error {
	r.start = time.Now()
	if r.Interval == 0 {
		r.Interval = 5 * time.Second
	}
	if r.MaxUnavailable < 1 {
		r.MaxUnavailable = 1
	}
	if p.Planned == nil {
		for _, s := range plan.Steps {
			p.Planned = append(p.Planned, s.Key())
		}
		if err := p.Save(r.ProgressPath); err != nil {
			return err
		}
	}
	steps := p.Remaining(plan)
	if done := len(plan.Steps) - len(steps); done > 0 {
		r.say("", "resuming: %d of %d steps were done by an earlier run (%s)", done, len(plan.Steps), r.ProgressPath)
	}
	for len(steps) > 0 {
		s := steps[0]
		var batch []Step
		stepStart := time.Now()
		switch s.Kind {
		case Snapshot:
			path, err := r.Snapshot(ctx)
			if err != nil {
				return fmt.Errorf("etcd snapshot (nothing was replaced): %w", err)
			}
			p.Snapshot = path
			r.say("", "etcd snapshot saved: %s", path)
		case ReplaceMaster:
			if err := r.master(ctx, s.Machine, plan.To, p.Snapshot); err != nil {
				if errors.Is(err, errRestored) {
					// The cluster served again at the old release, and took writes: the next
					// attempt saves a snapshot of its own.
					p.Done = slices.DeleteFunc(p.Done, func(k string) bool { return k == string(Snapshot) })
					if serr := p.Save(r.ProgressPath); serr != nil {
						return errors.Join(err, serr)
					}
				}
				return err
			}
		case ReplaceNode:
			for (r.RefreshNodes != nil || len(batch) < r.MaxUnavailable) && len(steps) > len(batch) && steps[len(batch)].Kind == ReplaceNode {
				batch = append(batch, steps[len(batch)])
			}
			replace := r.nodes
			if r.RefreshNodes != nil {
				replace = r.refreshNodes
			}
			if err := replace(ctx, batch, plan.To, p); err != nil {
				return err
			}
			if r.RefreshNodes != nil { // one refresh for them all: timed as one
				r.timed(fmt.Sprintf("%d nodes through their group", len(batch)), stepStart)
			}
		case Addons:
			if err := r.addons(ctx); err != nil {
				return err
			}
		}
		if batch == nil {
			if err := r.record(p, s); err != nil {
				return err
			}
			label := map[StepKind]string{Snapshot: "snapshot", Addons: "add-ons"}[s.Kind]
			if label == "" {
				label = s.Machine
			}
			r.timed(label, stepStart)
			steps = steps[1:]
		} else {
			steps = steps[len(batch):]
		}
	}
	now := time.Now().UTC()
	p.Finished = &now
	if err := p.Save(r.ProgressPath); err != nil {
		return err
	}
	r.say("", "upgrade to %s done in %v (%s)", plan.To, time.Since(r.start).Round(time.Second), strings.Join(r.took, ", "))
	return nil
}

// timed records that step (a machine's name, or what it did) finished, for the run's last line.
func (r *Runner) timed(step string, since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.took = append(r.took, fmt.Sprintf("%s %v", step, time.Since(since).Round(time.Second)))
}

func (r *Runner) record(p *Progress, s Step) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.Done = append(p.Done, s.Key())
	return p.Save(r.ProgressPath)
}

// say prints one progress line, with the time since the run started and the machine.
func (r *Runner) say(machine, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prefix := ""
	if machine != "" {
		prefix = machine + ": "
	}
	fmt.Fprintf(r.Out, "[%6s] %s%s\n", time.Since(r.start).Round(time.Second), prefix, fmt.Sprintf(format, a...))
}

// master replaces the master and waits for the API server at the new release, the master's
// node Ready on its new boot, and its checks; on failure it restores the old root (and etcd's
// data from snapshot, if the new release touched it) and waits for the cluster to serve again.
func (r *Runner) master(ctx context.Context, name, to, snapshot string) error {
	bootID, err := r.bootID(ctx, name)
	if err != nil {
		return fmt.Errorf("the master %s: %w", name, err)
	}
	// The master's own workloads move to the nodes first; the control plane's static pods
	// and the DaemonSets' pods stay and go down with it.
	if err := r.drain(ctx, name); err != nil {
		return err
	}
	r.say(name, "replacing the root (the etcd disk is kept); the API server is down until it is back")
	if err := r.Replace(ctx, name); err != nil {
		return fmt.Errorf("replace the master %s: %w", name, err)
	}
	var answered bool // the API server answered at the new release: it wrote to etcd
	failed := r.comeBack(ctx, name, []string{bootID}, to, &answered)
	if failed == nil {
		r.say(name, "checking phase 3")
		cctx, cancel := context.WithTimeout(ctx, r.MachineTimeout)
		failed = r.CheckMaster(cctx)
		cancel()
	}
	if failed == nil {
		if err := r.uncordon(ctx, name); err != nil {
			return err
		}
		r.say(name, "at %s, checks passed, uncordoned", to)
		return nil
	}
	// Its boot at the new release, if the API server answered; the restored data from the
	// snapshot names the boot before the upgrade: the old root's is neither.
	newBoot, _ := r.bootID(ctx, name)
	restore := ""
	switch {
	case snapshot == "":
		r.say(name, "failed: %v; restoring the old root (the progress record names no snapshot: etcd's data stays as it is)", failed)
	case answered || r.NewEtcd:
		restore = snapshot
		why := "the API server at " + to + " wrote to etcd"
		if !answered {
			why = "etcd of " + to + " ran on the data"
		}
		r.say(name, "failed: %v; restoring the old root, and etcd's data from %s (%s; what the cluster wrote since the snapshot is lost)", failed, snapshot, why)
	default:
		r.say(name, "failed: %v; restoring the old root (etcd's data is untouched: the API server at %s never answered)", failed, to)
	}
	if err := r.Restore(ctx, name, restore); err != nil {
		return fmt.Errorf("the master %s failed at %s (%w), and restoring its old root failed too: %v", name, to, failed, err)
	}
	if err := r.comeBack(ctx, name, []string{bootID, newBoot}, "", nil); err != nil {
		return fmt.Errorf("the master %s failed at %s (%w), and after restoring its old root: %v", name, to, failed, err)
	}
	if err := r.uncordon(ctx, name); err != nil {
		return err
	}
	return fmt.Errorf("the master %s failed at %s: %w; %w", name, to, failed, errRestored)
}

// nodes replaces a batch of nodes at once: each is cordoned and drained, replaced, waited
// for, and uncordoned. Every node of the batch is finished or failed before an error returns.
func (r *Runner) nodes(ctx context.Context, batch []Step, to string, p *Progress) error {
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i, s := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if errs[i] = r.node(ctx, s.Machine, to); errs[i] == nil {
				errs[i] = r.record(p, s)
				r.timed(s.Machine, start)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nthe upgrade stopped: no further machine was taken down (fix the cause, then run kubeup upgrade again to go on)", err)
	}
	return nil
}

// refreshNodes replaces the batch's nodes through RefreshNodes: every one is cordoned first
// (so that what a drain evicts lands on the new nodes, not on an old one), drained when the
// group holds it, and its Node deleted once the refresh is done (its machine is gone); then it
// waits until as many new nodes are Ready at the new release, their kubelets answering the
// API server and their DaemonSet pods Ready.
func (r *Runner) refreshNodes(ctx context.Context, batch []Step, to string, p *Progress) error {
	old := map[string]bool{}
	var daemons map[daemonSet]bool // the DaemonSets every old node runs a pod of: what a new one must run
	for _, s := range batch {
		old[s.Machine] = true
		n, err := r.Client.CoreV1().Nodes().Get(ctx, s.Machine, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // gone with an interrupted refresh
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Machine, err)
		}
		if err := drain.RunCordonOrUncordon(r.drainHelper(ctx, s.Machine), n, true); err != nil {
			return fmt.Errorf("node %s: cordon: %w", s.Machine, err)
		}
		pods, err := r.daemonPods(ctx, s.Machine)
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Machine, err)
		}
		if ran := daemonSetsOf(pods); daemons == nil {
			daemons = ran
		} else {
			maps.DeleteFunc(daemons, func(ds daemonSet, _ bool) bool { return !ran[ds] })
		}
	}
	if p.NodesBefore == nil {
		before, err := r.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range before.Items {
			p.NodesBefore = append(p.NodesBefore, n.Name)
		}
		r.mu.Lock()
		err = p.Save(r.ProgressPath)
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
	known := map[string]bool{}
	for _, n := range p.NodesBefore {
		known[n] = true
	}
	r.say("", "replacing %d nodes through their group: each new one starts before an old one is drained and goes", len(batch))
	held := map[string]bool{}
	err := r.RefreshNodes(ctx, func(ctx context.Context, node string) error {
		if !old[node] {
			return fmt.Errorf("the group holds %s, which the plan does not replace", node)
		}
		r.mu.Lock()
		held[node] = true
		r.mu.Unlock()
		return r.drain(ctx, node)
	})
	if err != nil {
		return fmt.Errorf("%w\nthe upgrade stopped (fix the cause, then run kubeup upgrade again to go on; the old nodes stay cordoned until then)", err)
	}
	gone := 0 // the old nodes whose machines the refresh took: as many new ones are due
	for _, s := range batch {
		n, err := r.Client.CoreV1().Nodes().Get(ctx, s.Machine, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			gone++
		case err != nil:
			return fmt.Errorf("node %s: %w", s.Machine, err)
		case held[s.Machine] || !verify.NodeReady(n):
			// Held and let go this run; or not Ready after the refresh: an earlier,
			// interrupted run's refresh took its machine.
			if err := r.Client.CoreV1().Nodes().Delete(ctx, s.Machine, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("node %s: its machine is gone; delete its Node: %w", s.Machine, err)
			}
			r.say(s.Machine, "its machine is gone: Node deleted")
			gone++
		default:
			// Not held, and Ready: the group found its machine current already. It stays; it
			// was only cordoned.
			if err := r.uncordon(ctx, s.Machine); err != nil {
				return err
			}
			r.say(s.Machine, "not replaced by the group this run: uncordoned")
		}
	}
	fresh, err := r.newNodes(ctx, known, gone, to)
	if err != nil {
		return err
	}
	for _, name := range fresh {
		if err := r.comeBack(ctx, name, nil, to, nil); err != nil {
			return fmt.Errorf("new node %s: %w", name, err)
		}
		if err := r.podsReady(ctx, name, daemons); err != nil {
			return fmt.Errorf("new node %s: %w", name, err)
		}
	}
	for _, s := range batch {
		if err := r.record(p, s); err != nil {
			return err
		}
	}
	return nil
}

// newNodes waits until want Nodes not in known have registered with kubelets at release, and
// names them.
func (r *Runner) newNodes(ctx context.Context, known map[string]bool, want int, release string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.MachineTimeout)
	defer cancel()
	var fresh []string
	err := wait.PollUntilContextCancel(ctx, r.Interval, true, func(ctx context.Context) (bool, error) {
		list, err := r.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		fresh = nil
		for _, n := range list.Items {
			if !known[n.Name] && n.Status.NodeInfo.KubeletVersion == release {
				fresh = append(fresh, n.Name)
			}
		}
		return len(fresh) >= want, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%d new nodes at %s registered within %v, want %d: %v", len(fresh), release, r.MachineTimeout, want, fresh)
	}
	slices.Sort(fresh)
	return fresh, nil
}

func (r *Runner) node(ctx context.Context, name, to string) error {
	bootID, err := r.bootID(ctx, name)
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	daemons, err := r.daemonPods(ctx, name)
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if err := r.drain(ctx, name); err != nil {
		return err
	}
	r.say(name, "replacing")
	if err := r.Replace(ctx, name); err != nil {
		return fmt.Errorf("node %s: replace: %w", name, err)
	}
	if err := r.comeBack(ctx, name, []string{bootID}, to, nil); err != nil {
		return fmt.Errorf("node %s did not come back: %w", name, err)
	}
	if err := r.podsReady(ctx, name, daemonSetsOf(daemons)); err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if err := r.uncordon(ctx, name); err != nil {
		return err
	}
	r.say(name, "at %s, Ready, uncordoned", to)
	return nil
}

func (r *Runner) drainHelper(ctx context.Context, name string) *drain.Helper {
	return &drain.Helper{
		Ctx: ctx, Client: r.Client,
		// DaemonSet pods stay: their controller would put them back at once, and the
		// replacement removes them with the disk.
		IgnoreAllDaemonSets: true,
		// emptyDir data is lost with the machine anyway.
		DeleteEmptyDirData: true,
		GracePeriodSeconds: -1,
		Timeout:            r.DrainTimeout,
		Out:                io.Discard, ErrOut: io.Discard,
		OnPodDeletionOrEvictionFinished: func(pod *corev1.Pod, usingEviction bool, err error) {
			if err == nil {
				r.say(name, "evicted %s/%s", pod.Namespace, pod.Name)
			}
		},
	}
}

// drain cordons node name and evicts its pods (but DaemonSets' and static ones), honouring
// PodDisruptionBudgets, within DrainTimeout.
func (r *Runner) drain(ctx context.Context, name string) error {
	n, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	h := r.drainHelper(ctx, name)
	r.say(name, "cordon and drain (PodDisruptionBudgets honoured, at most %v)", r.DrainTimeout)
	if err := drain.RunCordonOrUncordon(h, n, true); err != nil {
		return fmt.Errorf("node %s: cordon: %w", name, err)
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		return fmt.Errorf("node %s: drain: %w (the node is cordoned and keeps running; `kubectl get pdb -A` shows what blocks an eviction)", name, err)
	}
	return nil
}

func (r *Runner) uncordon(ctx context.Context, name string) error {
	n, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if err := drain.RunCordonOrUncordon(r.drainHelper(ctx, name), n, false); err != nil {
		return fmt.Errorf("node %s: uncordon: %w", name, err)
	}
	return nil
}

// bootID is the node's boot ID as its kubelet reports it.
func (r *Runner) bootID(ctx context.Context, name string) (string, error) {
	n, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return n.Status.NodeInfo.BootID, nil
}

// comeBack waits until node name reports a boot other than those in old, Ready, with its kubelet
// at release (any, if ""), and then replaces the pods its DaemonSets had on the old machine:
// those are of the DaemonSets' older templates (kube-proxy of the old release, whose image the
// new machine does not hold). answered, if not nil, is set once the API server answers.
func (r *Runner) comeBack(ctx context.Context, name string, old []string, release string, answered *bool) error {
	ctx, cancel := context.WithTimeout(ctx, r.MachineTimeout)
	defer cancel()
	var seen string
	err := wait.PollUntilContextCancel(ctx, r.Interval, false, func(ctx context.Context) (bool, error) {
		n, err := r.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			seen = "the API server does not answer: " + err.Error()
			return false, nil
		}
		if answered != nil {
			*answered = true
		}
		info := n.Status.NodeInfo
		switch {
		case slices.Contains(old, info.BootID):
			seen = "still on its old boot"
		case release != "" && info.KubeletVersion != release:
			seen = "kubelet " + info.KubeletVersion
		case !verify.NodeReady(n):
			seen = "not Ready"
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("not Ready at %s within %v (last seen: %s)", orAny(release), r.MachineTimeout, seen)
	}
	serves := r.KubeletServes
	if serves == nil {
		serves = func(ctx context.Context, node string) error {
			_, err := r.Client.CoreV1().RESTClient().Get().Resource("nodes").Name(node).SubResource("proxy").Suffix("healthz").DoRaw(ctx)
			return err
		}
	}
	// Ready is not enough: a new machine's kubelet serves the API server only once its serving
	// certificate is approved, and until then logs, exec and port-forwards (the next upgrade's
	// snapshot) fail with "tls: internal error".
	err = wait.PollUntilContextCancel(ctx, r.Interval, true, func(ctx context.Context) (bool, error) {
		if err := serves(ctx, name); err != nil {
			seen = err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("it is Ready, but its kubelet does not answer the API server within %v (last seen: %s)", r.MachineTimeout, seen)
	}
	r.say(name, "Ready on its new machine")
	return r.renewDaemonPods(ctx, name)
}

func orAny(release string) string {
	if release == "" {
		return "its release"
	}
	return release
}

// daemonPods are the pods node name runs for DaemonSets, but those being deleted.
func (r *Runner) daemonPods(ctx context.Context, name string) ([]corev1.Pod, error) {
	pods, err := r.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, pod := range pods.Items {
		if ref := metav1.GetControllerOf(&pod); ref != nil && ref.Kind == "DaemonSet" && pod.DeletionTimestamp == nil {
			out = append(out, pod)
		}
	}
	return out, nil
}

// daemonSet is a DaemonSet a node ran a pod of; uid tells it from a later one of the same name.
type daemonSet struct {
	namespace, name string
	uid             types.UID
}

// daemonSetOf is the DaemonSet of one of daemonPods' pods (each has one as its controller).
func daemonSetOf(pod *corev1.Pod) (daemonSet, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return daemonSet{}, false
	}
	return daemonSet{pod.Namespace, ref.Name, ref.UID}, true
}

// daemonSetsOf are the DaemonSets of pods.
func daemonSetsOf(pods []corev1.Pod) map[daemonSet]bool {
	out := map[daemonSet]bool{}
	for i := range pods {
		if ds, ok := daemonSetOf(&pods[i]); ok {
			out[ds] = true
		}
	}
	return out
}

// podsReady waits until node name runs a Ready pod of each DaemonSet of want (those a node ran
// before it was replaced: kube-proxy, flannel, the node's part of the network) that still
// exists. One deleted meanwhile is not waited for: kubeup verify's probe DaemonSets go with
// their namespace a moment after `kubeup up` or `verify` ends, and a count of the pods from
// before would wait for theirs until the timeout.
func (r *Runner) podsReady(ctx context.Context, name string, want map[daemonSet]bool) error {
	ctx, cancel := context.WithTimeout(ctx, r.MachineTimeout)
	defer cancel()
	var seen string
	err := wait.PollUntilContextCancel(ctx, r.Interval, true, func(ctx context.Context) (bool, error) {
		failed := func(err error) (bool, error) {
			if ctx.Err() == nil { // the deadline's own error would hide what was seen before
				seen = err.Error()
			}
			return false, nil
		}
		pods, err := r.daemonPods(ctx, name)
		if err != nil {
			return failed(err)
		}
		ready := map[daemonSet]bool{}
		for _, pod := range pods {
			if ds, ok := daemonSetOf(&pod); ok && podutils.IsPodReady(&pod) {
				ready[ds] = true
			}
		}
		var waiting []string
		for ds := range want {
			if ready[ds] {
				continue
			}
			got, err := r.Client.AppsV1().DaemonSets(ds.namespace).Get(ctx, ds.name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err), err == nil && (got.UID != ds.uid || got.DeletionTimestamp != nil):
				continue // gone or going: nothing to wait for
			case err != nil:
				return failed(err)
			}
			waiting = append(waiting, ds.namespace+"/"+ds.name)
		}
		slices.Sort(waiting)
		seen = "no Ready pod yet of DaemonSet " + strings.Join(waiting, ", ")
		return len(waiting) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("its DaemonSet pods are not all back and Ready within %v (last seen: %s)", r.MachineTimeout, seen)
	}
	return nil
}

// renewDaemonPods deletes node name's DaemonSet pods made from an older template than their
// DaemonSet's (its pod-template-generation label, which the DaemonSet controller sets), so
// that the controller makes them again from the current one.
func (r *Runner) renewDaemonPods(ctx context.Context, name string) error {
	pods, err := r.daemonPods(ctx, name)
	if err != nil {
		return err
	}
	for _, pod := range pods {
		ref := metav1.GetControllerOf(&pod)
		ds, err := r.Client.AppsV1().DaemonSets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // deleted since the list: its pods go with it
		}
		if err != nil {
			return err
		}
		if pod.Labels["pod-template-generation"] == strconv.FormatInt(ds.Generation, 10) {
			continue
		}
		err = r.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		r.say(name, "replaced %s/%s (made from an older template of %s)", pod.Namespace, pod.Name, ds.Name)
	}
	return nil
}

// addons waits until every DaemonSet and Deployment of kube-system runs its current template
// everywhere: the master's agent applied the new release's add-ons when it booted. Every
// machine holds the new release's images by now, so DaemonSet pods still of an older template
// (the master's, if the agent applied the add-ons after the master's step) are replaced first.
func (r *Runner) addons(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.MachineTimeout)
	defer cancel()
	nodes, err := r.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		if err := r.renewDaemonPods(ctx, n.Name); err != nil {
			return err
		}
	}
	var seen string
	err = wait.PollUntilContextCancel(ctx, r.Interval, true, func(ctx context.Context) (bool, error) {
		dss, err := r.Client.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			seen = err.Error()
			return false, nil
		}
		for _, ds := range dss.Items {
			st := ds.Status
			if st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberAvailable != st.DesiredNumberScheduled {
				seen = fmt.Sprintf("DaemonSet %s: %d of %d pods updated, %d available", ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable)
				return false, nil
			}
		}
		ds, err := r.Client.AppsV1().Deployments(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			seen = err.Error()
			return false, nil
		}
		for _, d := range ds.Items {
			st := d.Status
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want {
				seen = fmt.Sprintf("Deployment %s: %d of %d replicas updated, %d available", d.Name, st.UpdatedReplicas, want, st.AvailableReplicas)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the add-ons did not all run at the new release within %v (last seen: %s)", r.MachineTimeout, seen)
	}
	r.say("", "add-ons run at the new release")
	return nil
}
