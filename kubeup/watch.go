package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/verify"
)

// machineState is one machine's bring-up as the host sees it: from the serial console until
// the API answers, from its Node after.
type machineState struct {
	Name, Role string
	Running    bool
	Console    machine.Console
	Registered bool
	Ready      bool
	NodeWhy    string // the Ready condition's message when not Ready
}

// machineStatus is one machine in `kubeup status -o json`: field names a script can rely on.
type machineStatus struct {
	Name       string            `json:"name"`
	Role       string            `json:"role"`
	Stage      string            `json:"stage"`
	Boots      int               `json:"boots"`
	Phase1Pass *bool             `json:"phase1Pass,omitempty"`
	LastReport string            `json:"lastReport,omitempty"`
	Timeline   *machine.Timeline `json:"timeline,omitempty"`
}

func (m machineState) status() machineStatus {
	st := machineStatus{Name: m.Name, Role: m.Role, Stage: m.Stage(), Boots: m.Console.Boots, LastReport: m.Console.Last, Timeline: m.Console.Timeline}
	if m.Console.Phase1 != nil {
		st.Phase1Pass = &m.Console.Phase1.Pass
	}
	return st
}

// Stage is the furthest step reached, in bring-up order.
func (m machineState) Stage() string {
	switch {
	case !m.Running:
		return "stopped"
	case m.Ready:
		return "Ready"
	case m.Registered:
		return "registered"
	}
	return m.Console.Stage()
}

// checker checks the phases of the cluster, expecting every one of machines as a node.
func checker(kubeconfig string, machines []machineState) (*verify.Checker, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	var nodes []string
	for _, m := range machines {
		nodes = append(nodes, m.Name)
	}
	return verify.New(cfg, verify.Options{Nodes: nodes, Timeout: 5 * time.Minute})
}

func clientFor(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// observe reads every machine's progress from its provider and, if the API answers, its Node.
// apiOK says whether it did: a busy API server that misses one poll does not unregister
// anything.
func observe(ctx context.Context, p provider.Provider, kubeconfig string) (states []machineState, apiOK bool, err error) {
	machines, err := p.Machines(ctx)
	if err != nil {
		return nil, false, err
	}
	nodes := map[string]corev1.Node{}
	if c, err := clientFor(kubeconfig); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			apiOK = true
			for _, n := range list.Items {
				nodes[n.Name] = n
			}
		}
		cancel()
	}
	for _, m := range machines {
		st := machineState{Name: m.Name, Role: m.Role, Running: m.Running, Console: m.Console}
		if n, ok := nodes[m.Name]; ok {
			st.Registered = true
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					st.Ready = c.Status == corev1.ConditionTrue
					st.NodeWhy = c.Message
				}
			}
		}
		states = append(states, st)
	}
	return states, apiOK, nil
}

func printMachines(w io.Writer, states []machineState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tROLE\tSTAGE\tBOOTS\tLAST REPORT")
	for _, s := range states {
		last := s.Console.Last
		if s.Registered && !s.Ready && s.NodeWhy != "" {
			last = "NotReady: " + s.NodeWhy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.Role, s.Stage(), s.Console.Boots, truncate(last, 100))
	}
	tw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// milestones are the times from power-on at which the cluster first reached each step of its
// bring-up: the API answering, every machine's phase 1, and each phase of verify passing.
type milestones struct {
	start time.Time
	at    map[string]time.Duration
	order []string
}

func newMilestones(start time.Time) *milestones {
	return &milestones{start: start, at: map[string]time.Duration{}}
}

// reached records step the first time it is reached.
func (m *milestones) reached(step string) {
	if _, ok := m.at[step]; !ok {
		m.at[step] = time.Since(m.start)
		m.order = append(m.order, step)
	}
}

// stamp is the time since power-on as the progress lines show it.
func (m *milestones) stamp() string { return fmt.Sprintf("[%4.0fs]", time.Since(m.start).Seconds()) }

func (m *milestones) String() string {
	var parts []string
	for _, step := range m.order {
		parts = append(parts, fmt.Sprintf("%s %.0fs", step, m.at[step].Seconds()))
	}
	return strings.Join(parts, ", ")
}

// waitForCluster prints each machine's progress as it changes until every machine is Ready,
// then checks every phase. Failed phase checks end the wait with an error. Either way it ends
// with the time each step was first reached.
func waitForCluster(ctx context.Context, w io.Writer, p provider.Provider, kubeconfig string, start time.Time) error {
	times := newMilestones(start)
	states, err := waitForMachines(ctx, w, p, kubeconfig, times)
	if err == nil {
		err = waitForPhases(ctx, w, states, kubeconfig, times)
	}
	if len(times.order) > 0 {
		fmt.Fprintf(w, "time from power-on: %s\n", times)
	}
	printTimelines(ctx, w, p)
	if err == nil {
		printControlPlaneRestarts(ctx, w, kubeconfig)
	}
	return err
}

// printTimelines prints each machine's own account of its bring-up (its agent's timeline, in
// seconds since its kernel started), for the machines that have printed one.
func printTimelines(ctx context.Context, w io.Writer, p provider.Provider) {
	machines, _ := p.Machines(ctx)
	for _, m := range machines {
		if m.Console.Timeline != nil {
			fmt.Fprintf(w, "  %s: %s\n", m.Name, m.Console.Timeline)
		}
	}
}

// waitForMachines follows every machine until all are Ready, and returns them.
func waitForMachines(ctx context.Context, w io.Writer, p provider.Provider, kubeconfig string, times *milestones) ([]machineState, error) {
	last := map[string]string{}
	var states []machineState
	var failed error // observe's error, or a machine that stopped
	// Polled every 3 s, counted from the end of an observe (which may wait 10 s for the API).
	err := wait.Backoff{Duration: 3 * time.Second}.DelayFunc().Until(ctx, true, true, func(context.Context) (bool, error) {
		prev := states
		var apiOK bool
		states, apiOK, failed = observe(ctx, p, kubeconfig)
		if failed != nil && ctx.Err() != nil {
			failed = nil // the wait ended during the read: the deadline, not the read, is the cause
			states = prev
			return false, ctx.Err()
		}
		if failed != nil {
			return false, failed
		}
		if apiOK {
			times.reached("API")
		} else if len(prev) == len(states) {
			for i := range states {
				states[i].Registered, states[i].Ready, states[i].NodeWhy = prev[i].Registered, prev[i].Ready, prev[i].NodeWhy
			}
		}
		ready, phase1 := 0, 0
		for _, s := range states {
			if stage := s.Stage(); stage != last[s.Name] {
				last[s.Name] = stage
				detail := ""
				if s.Console.Phase1 != nil && !s.Console.Phase1.Pass && stage == "phase 1 FAILED" {
					var failed []string
					for _, c := range s.Console.Phase1.Checks {
						if !c.Pass {
							failed = append(failed, c.Name+": "+c.Evidence)
						}
					}
					detail = " (" + strings.Join(failed, "; ") + ")"
				}
				fmt.Fprintf(w, "%s %s: %s%s\n", times.stamp(), s.Name, stage, detail)
			}
			if !s.Running {
				failed = fmt.Errorf("machine %s stopped", s.Name)
				return false, failed
			}
			if s.Console.Phase1 != nil && s.Console.Phase1.Pass {
				phase1++
			}
			if s.Ready {
				ready++
			}
		}
		if phase1 == len(states) {
			times.reached("phase 1")
		}
		if ready == len(states) {
			times.reached("all Ready")
			return true, nil
		}
		return false, nil
	})
	switch {
	case failed != nil:
		return nil, failed
	case err != nil: // ctx ended
		if len(states) > 0 {
			printMachines(w, states)
		}
		return nil, fmt.Errorf("waiting for every machine to be Ready: %w", err)
	}
	return states, nil
}

func waitForPhases(ctx context.Context, w io.Writer, machines []machineState, kubeconfig string, times *milestones) error {
	k, err := checker(kubeconfig, machines)
	if err != nil {
		return err
	}
	// Every phase must pass before up returns. A machine on an emulated CPU can take longer
	// than a check waits (flannel on a busy node, say), so failed phases are checked again,
	// from the first that failed, until the deadline.
	phases := []string{"all"}
	var failedPhases []string // in the last run
	k.Progress = func(phase string, rs []verify.Result) {
		pass := true
		for _, r := range rs {
			fmt.Fprintf(w, "%s %s\n", times.stamp(), r)
			if !r.Pass {
				pass = false
				if !slices.Contains(failedPhases, r.Phase) {
					failedPhases = append(failedPhases, r.Phase)
				}
			}
		}
		if pass && len(failedPhases) == 0 {
			times.reached("phase " + phase)
		}
	}
	// 10 s from the end of one run to the next: a check that fails at once is not retried in a
	// tight loop.
	err = wait.Backoff{Duration: 10 * time.Second}.DelayFunc().Until(ctx, true, true, func(context.Context) (bool, error) {
		failedPhases = nil
		k.Run(ctx, phases...)
		if len(failedPhases) == 0 {
			times.reached("every phase")
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		phases = []string{"all"}
		if first := slices.Index(verify.Phases, failedPhases[0]); first >= 0 {
			phases = verify.Phases[first:]
		}
		fmt.Fprintf(w, "%s phase %s did not pass yet: checking again from it (until --timeout)\n", times.stamp(), failedPhases[0])
		return false, nil
	})
	if err != nil { // ctx ended
		return fmt.Errorf("phases %s did not pass before the deadline", strings.Join(failedPhases, ", "))
	}
	return nil
}

// controlPlane are the master's static pods, by their component label.
var controlPlane = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// printControlPlaneRestarts says how often each control-plane container restarted during
// bring-up: a restart means the master was short of CPU or memory, even if every phase passed.
func printControlPlaneRestarts(ctx context.Context, w io.Writer, kubeconfig string) {
	restarts, err := controlPlaneRestarts(ctx, kubeconfig)
	if err != nil {
		fmt.Fprintf(w, "control-plane restarts: not read (%v)\n", err)
		return
	}
	var parts []string
	for _, c := range controlPlane {
		parts = append(parts, fmt.Sprintf("%s %d", c, restarts[c]))
	}
	fmt.Fprintf(w, "control-plane restarts: %s\n", strings.Join(parts, ", "))
}

// controlPlaneRestarts reads the restart count of each control-plane container from its mirror
// pod (the kubelet reports a static pod's status there).
func controlPlaneRestarts(ctx context.Context, kubeconfig string) (map[string]int32, error) {
	c, err := clientFor(kubeconfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pods, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: "component in (" + strings.Join(controlPlane, ",") + ")"})
	if err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for _, p := range pods.Items {
		for _, st := range p.Status.ContainerStatuses {
			out[p.Labels["component"]] += st.RestartCount
		}
	}
	return out, nil
}
