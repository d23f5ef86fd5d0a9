package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/machine"
)

// Recorder collects a machine's timeline while its agent runs.
type Recorder struct {
	Machine string
	Root    string
	// Systemd reads a property of a unit ("" for the manager itself): systemctl show, unless a
	// test sets it.
	Systemd func(ctx context.Context, unit, property string) (string, error)
	boot    time.Time
	mu      sync.Mutex // the master's phase 1 and bootstrap record steps side by side
	steps   []machine.Step
}

// NewRecorder starts a machine's timeline: the kernel's start is read from /proc/uptime (the
// running kernel's, whatever root the agent's files are under).
func NewRecorder(name, root string) (*Recorder, error) {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return nil, fmt.Errorf("/proc/uptime: empty")
	}
	up, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return nil, fmt.Errorf("/proc/uptime: %w", err)
	}
	boot := time.Now().Add(-time.Duration(up * float64(time.Second)))
	return &Recorder{Machine: name, Root: root, Systemd: systemctlShow, boot: boot, steps: []machine.Step{{Name: machine.StepKernel}}}, nil
}

// Now records step as reached now. A nil Recorder records nothing.
func (r *Recorder) Now(step string) { r.At(step, time.Now()) }

// At records step as reached at t (a wall-clock time, from the API or a file).
func (r *Recorder) At(step string, t time.Time) {
	if r == nil || t.IsZero() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.steps {
		if s.Name == step {
			return // the first time counts
		}
	}
	r.steps = append(r.steps, machine.Step{Name: step, Seconds: t.Sub(r.boot).Round(100 * time.Millisecond).Seconds()})
}

// Timeline is what was recorded, in the order the steps were reached.
func (r *Recorder) Timeline() machine.Timeline {
	r.mu.Lock()
	steps := slices.Clone(r.steps)
	r.mu.Unlock()
	slices.SortStableFunc(steps, func(a, b machine.Step) int {
		switch {
		case a.Seconds < b.Seconds:
			return -1
		case a.Seconds > b.Seconds:
			return 1
		}
		return 0
	})
	return machine.Timeline{Machine: r.Machine, Boot: r.boot, Steps: steps}
}

// FromSystemd records the steps systemd knows: when it took over from the initramfs, and when
// containerd and the kubelet became active. Its monotonic clock counts from the kernel's start,
// as the timeline does.
func (r *Recorder) FromSystemd(ctx context.Context) {
	for _, q := range []struct{ step, unit, prop string }{
		{machine.StepUserspace, "", "UserspaceTimestampMonotonic"},
		{machine.StepContainerd, "containerd.service", "ActiveEnterTimestampMonotonic"},
		{machine.StepKubelet, "kubelet.service", "ActiveEnterTimestampMonotonic"},
	} {
		v, err := r.Systemd(ctx, q.unit, q.prop)
		if err != nil {
			continue
		}
		if us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && us > 0 {
			r.At(q.step, r.boot.Add(time.Duration(us)*time.Microsecond))
		}
	}
}

func systemctlShow(ctx context.Context, unit, property string) (string, error) {
	args := []string{"show", "--value", "--property=" + property}
	if unit != "" {
		args = append(args, unit)
	}
	out, err := exec.CommandContext(ctx, "systemctl", args...).Output()
	return string(out), err
}

// FromNode records what the API knows of the machine: when its Node was created and became
// Ready, and on the master when each control-plane container first started.
func (r *Recorder) FromNode(n *corev1.Node, staticPods []corev1.Pod) {
	r.At(machine.StepRegistered, n.CreationTimestamp.Time)
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			r.At(machine.StepReady, c.LastTransitionTime.Time)
		}
	}
	for _, p := range staticPods {
		var first time.Time
		for _, st := range p.Status.ContainerStatuses {
			for _, started := range []*metav1.Time{startedAt(st.State), startedAt(st.LastTerminationState)} {
				if started != nil && (first.IsZero() || started.Time.Before(first)) {
					first = started.Time
				}
			}
		}
		if c := p.Labels["component"]; c != "" {
			r.At(machine.StaticPodStep(c), first)
		}
	}
	if fi, err := os.Stat(filepath.Join(r.Root, "/run/flannel/subnet.env")); err == nil {
		r.At(machine.StepCNI, fi.ModTime())
	}
}

func startedAt(s corev1.ContainerState) *metav1.Time {
	switch {
	case s.Running != nil:
		return &s.Running.StartedAt
	case s.Terminated != nil:
		return &s.Terminated.StartedAt
	}
	return nil
}

// Finish waits until the machine's Node is Ready, completes the timeline from the API and the
// machine, prints it on the console and puts it on the Node. On the master, c lists the
// control-plane pods too; a node's kubelet credentials may not, and its timeline has none.
func (r *Recorder) Finish(ctx context.Context, c kubernetes.Interface, print func(string)) error {
	var node *corev1.Node
	err := wait.PollUntilContextCancel(ctx, 3*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, r.Machine, metav1.GetOptions{})
		if err != nil {
			return false, nil // not registered yet, or the API is busy: ask again
		}
		node = n
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("timeline: node %s never Ready: %w", r.Machine, err)
	}
	var pods []corev1.Pod
	if list, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: "component", FieldSelector: "spec.nodeName=" + r.Machine}); err == nil {
		pods = list.Items
	}
	r.FromSystemd(ctx)
	r.FromNode(node, pods)
	t := r.Timeline()
	print(t.Line())
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := annotateNode(ctx, c, r.Machine, map[string]string{machine.TimelineAnnotation: string(data)}); err != nil {
		return fmt.Errorf("timeline: annotate node %s: %w", r.Machine, err)
	}
	return nil
}
