package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Phases are the phases with exit criteria checked from outside, in bring-up order. Phase 1
// is reported by the machines themselves and phase 2 is the bundle's own check.
var Phases = []string{"3", "4.1", "4.2", "5", "6"}

// Options tune the checks.
type Options struct {
	// Timeout bounds each check that waits for the cluster to act (default 2 minutes: under TCG
	// emulation the controllers are slow).
	Timeout time.Duration
	// Nodes are the node names phase 4.1 expects; empty means "at least one, whichever".
	Nodes []string
	// Progress, if set, hears each phase's results as soon as the phase is checked.
	Progress func(phase string, results []Result)
}

// Checker runs the phases' checks against one cluster.
type Checker struct {
	Client kubernetes.Interface
	// REST is needed by the network phases, which exec kubeup-probe in pods.
	REST *rest.Config
	Options
	probes *probes
	ns     string // this run's namespace
}

// New makes a Checker for the cluster cfg points at.
func New(cfg *rest.Config, o Options) (*Checker, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Checker{Client: c, REST: cfg, Options: o}, nil
}

func (k *Checker) timeout() time.Duration {
	if k.Timeout == 0 {
		return 2 * time.Minute
	}
	return k.Timeout
}

// waiting is check with the Timeout applied.
func (k *Checker) waiting(ctx context.Context, phase, name, hint string, fn func(ctx context.Context) (string, error)) Result {
	ctx, cancel := context.WithTimeout(ctx, k.timeout())
	defer cancel()
	return check(ctx, phase, name, hint, fn)
}

// Run checks the given phases in bring-up order ("all" means every phase) in a namespace of
// its own (kubeup-verify-...), which it deletes when done.
func (k *Checker) Run(ctx context.Context, phases ...string) []Result {
	if slices.Contains(phases, "all") {
		phases = Phases
	}
	for _, p := range phases {
		if !slices.Contains(Phases, p) {
			return []Result{{Phase: p, Check: "phase", Evidence: "no such phase", Hint: "use one of " + strings.Join(Phases, ", ") + " or all"}}
		}
	}
	nsCtx, cancel := context.WithTimeout(ctx, k.timeout())
	ns, err := createNamespace(nsCtx, k.Client)
	cancel()
	if err != nil {
		rs := []Result{{Phase: phases[0], Check: "namespace", Evidence: err.Error(), Hint: "the API server or admin credentials do not work"}}
		if k.Progress != nil {
			k.Progress(phases[0], rs)
		}
		return rs
	}
	k.ns, k.probes = ns, nil
	defer k.Client.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
	var out []Result
	for _, p := range Phases {
		if !slices.Contains(phases, p) {
			continue
		}
		var rs []Result
		switch p {
		case "3":
			rs = k.phase3(ctx)
		case "4.1":
			rs = k.phase41(ctx)
		case "4.2":
			rs = k.phase42(ctx)
		case "5":
			rs = k.phase5(ctx)
		case "6":
			rs = k.phase6(ctx)
		}
		if k.Progress != nil {
			k.Progress(p, rs)
		}
		out = append(out, rs...)
	}
	return out
}

// Phase3 checks the master alone (the control-plane test's cluster has no CNI).
func Phase3(ctx context.Context, c kubernetes.Interface, o Options) []Result {
	return (&Checker{Client: c, Options: o}).Run(ctx, "3")
}

// withProbes runs fn once the probes run on every node; without them, the check fails with
// what was seen while waiting for them.
func (k *Checker) withProbes(ctx context.Context, fn func(p *probes) (string, error)) (string, error) {
	if k.probes == nil {
		if k.REST == nil {
			return "", fmt.Errorf("the network checks need a REST config to exec in pods")
		}
		p, seen, err := startProbes(ctx, k.Client, k.ns)
		if err != nil {
			return "", fmt.Errorf("kubeup-probe pods: %w (%s)", err, seen)
		}
		k.probes = p
	}
	return fn(k.probes)
}
