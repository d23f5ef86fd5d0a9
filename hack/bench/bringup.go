package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/kubeadm"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/verify"
)

// timeline is when each milestone was reached, from power-on.
type timeline struct {
	name   string
	at     map[string]time.Duration
	failed []string
}

// milestones in order; "1" and "api" are seen from outside, the rest are verify's phases.
var milestones = []string{"1", "api", "3", "4.1", "4.2", "5", "6"}

var milestoneNames = map[string]string{
	"1": "phase 1 (every machine reports)", "api": "API answers", "3": "phase 3 (master)",
	"4.1": "phase 4.1 (nodes registered)", "4.2": "phase 4.2 (pod network)", "5": "phase 5 (Services)",
	"6": "phase 6 (DNS, metrics): all pass",
}

// side is one way of bringing the cluster up: its machines' configs, the kubeconfig the host
// reaches the API with, and the steps the host runs once the API answers.
type side struct {
	name       string
	configs    map[string]string
	kubeconfig []byte
	after      func(ctx context.Context, rc *rest.Config) error
}

// benchBringUp brings the same cluster up on the same image and VM sizes, with the same checks,
// by kubeup and by kubeadm given the same tuning (kubeadm.Tuned), runs times each, one cluster
// at a time so each has the whole host, alternating which side goes first in each round; then
// untuned times by kubeadm with its defaults. It prints each run as it goes, then the median and
// the spread per milestone and side, and the ratio of the medians. With raw set, every run's
// output and the summary also go into that directory.
func benchBringUp(imageDir string, nodes int, peers []string, runs, untuned int, raw string, keep bool) error {
	img, err := qemu.ImageIn(imageDir)
	if err != nil {
		return err
	}
	cfg, err := cluster.Load("configs/local.yaml")
	if err != nil {
		return err
	}
	if have := cfg.TrimNodes(nodes); have < nodes {
		return fmt.Errorf("configs/local.yaml lists only %d nodes", have)
	}
	if runs < 1 {
		return fmt.Errorf("-bringup-runs %d: at least one run per side", runs)
	}
	dir, err := os.MkdirTemp("", "kubeup-bench-bringup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := pki.Ensure(filepath.Join(dir, "state"), cfg, pki.Options{})
	if err != nil {
		return err
	}
	var summary bytes.Buffer
	say := func(format string, a ...any) {
		fmt.Printf(format, a...)
		fmt.Fprintf(&summary, format, a...)
	}
	say("bring-up, 1 master + %d nodes, %s of memory and %d vCPUs each, image %s (Kubernetes %s)\n", nodes, cfg.QEMU.Memory, cfg.QEMU.CPUs, imageDir, img.Kubernetes)
	say("kubeup at %s; %d run(s) per side, alternating which goes first; kubeadm tuned as kubeup is for this host, and %d run(s) of kubeadm with its defaults\n",
		commit(), runs, untuned)

	// kubeup: the configs ignition-gen renders; the machines do the rest.
	outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: filepath.Join(dir, "kubeup-ign")})
	if err != nil {
		return err
	}
	ku := side{name: "kubeup", configs: map[string]string{}, kubeconfig: b.File("admin.conf")}
	for _, o := range outs {
		ku.configs[o.Name] = o.File
	}
	// kubeadm: init and join by first-boot units; the host applies flannel and metrics-server
	// once the API answers, as kubeadm's documentation has the operator do, and approves the
	// kubelets' serving certificates (kubeadm's docs for metrics-server with TLS). The bundle's
	// super-admin.conf (system:masters, signed by the CA kubeadm was given) is the host's way in.
	peer := func(tuning kubeadm.Tuning, name string) (side, error) {
		configs, err := kubeadm.Configs(cfg, b.File("pki/ca.crt"), b.File("pki/ca.key"), randomToken(), tuning)
		if err != nil {
			return side{}, err
		}
		s := side{name: name, configs: map[string]string{}, kubeconfig: b.File("super-admin.conf"), after: kubeadmAddons(cfg, tuning)}
		for m, raw := range configs {
			f := filepath.Join(dir, name+"-ign", m+".ign")
			os.MkdirAll(filepath.Dir(f), 0o700)
			if err := os.WriteFile(f, raw, 0o600); err != nil {
				return side{}, err
			}
			s.configs[m] = f
		}
		return s, nil
	}
	ka, err := peer(kubeadm.Tuned, "kubeadm")
	if err != nil {
		return err
	}
	kd, err := peer(kubeadm.Defaults, "kubeadm-defaults")
	if err != nil {
		return err
	}
	var order []side
	for r := range runs {
		round := []side{ku, ka}
		if r%2 == 1 {
			round = []side{ka, ku}
		}
		for _, s := range round {
			if slices.Contains(peers, s.name) {
				order = append(order, s)
			}
		}
	}
	if slices.Contains(peers, "kubeadm") {
		for range untuned {
			order = append(order, kd)
		}
	}
	if raw != "" {
		if err := os.MkdirAll(raw, 0o755); err != nil {
			return err
		}
	}
	results := map[string][]timeline{}
	for i, s := range order {
		name := fmt.Sprintf("run%d-%s", i+1, s.name)
		out := io.Writer(os.Stdout)
		if raw != "" {
			f, err := os.Create(filepath.Join(raw, name+".log"))
			if err != nil {
				return err
			}
			defer f.Close()
			out = io.MultiWriter(os.Stdout, f)
		}
		fmt.Fprintf(out, "\n%s (%d of %d), started %s\n", name, i+1, len(order), time.Now().UTC().Format(time.RFC3339))
		tl, err := bringUp(out, s.name, filepath.Join(dir, name), cfg, img, s.configs, s.kubeconfig, s.after, keep)
		if err != nil {
			tl.failed = append(tl.failed, err.Error())
		}
		results[s.name] = append(results[s.name], tl)
		say("%s: %s\n", name, tl.line())
	}

	say("\n  %-36s %-22s %-22s %8s %-18s\n", "from power-on to (median, spread)", "kubeup", "kubeadm (tuned)", "ratio", "kubeadm (defaults)")
	for _, m := range milestones {
		k, a, d := stats(results["kubeup"], m), stats(results["kubeadm"], m), stats(results["kubeadm-defaults"], m)
		ratio := "-"
		if k.n > 0 && a.n > 0 {
			ratio = fmt.Sprintf("%.2fx", k.median.Seconds()/a.median.Seconds())
		}
		say("  %-36s %-22s %-22s %8s %-18s\n", milestoneNames[m], k, a, ratio, d)
	}
	var failed []string
	for _, name := range []string{"kubeup", "kubeadm", "kubeadm-defaults"} {
		for i, t := range results[name] {
			if err := t.err(); err != nil {
				failed = append(failed, fmt.Sprintf("%s run %d: %v", name, i+1, err))
			}
		}
	}
	k, a := stats(results["kubeup"], "6"), stats(results["kubeadm"], "6")
	if k.n > 0 && a.n > 0 {
		say("kubeup brings the cluster to all-pass in %.2fx kubeadm's time, medians of %d and %d runs (goal: 0.5x or less)\n",
			k.median.Seconds()/a.median.Seconds(), k.n, a.n)
	}
	if raw != "" {
		if err := os.WriteFile(filepath.Join(raw, "summary.txt"), summary.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("raw output in %s\n", raw)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// spread is one milestone's times over a side's runs that reached it.
type spread struct {
	n             int
	median        time.Duration
	lowest, worst time.Duration
	missed        int
}

func stats(runs []timeline, milestone string) spread {
	var ds []time.Duration
	for _, t := range runs {
		if d, ok := t.at[milestone]; ok {
			ds = append(ds, d)
		}
	}
	s := spread{n: len(ds), missed: len(runs) - len(ds)}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	s.median = ds[len(ds)/2]
	if len(ds)%2 == 0 {
		s.median = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	s.lowest, s.worst = ds[0], ds[len(ds)-1]
	return s
}

func (s spread) String() string {
	if s.n == 0 {
		return "-"
	}
	out := fmt.Sprintf("%.0f s", s.median.Seconds())
	if s.n > 1 {
		out += fmt.Sprintf(" (%.0f-%.0f)", s.lowest.Seconds(), s.worst.Seconds())
	}
	if s.missed > 0 {
		out += fmt.Sprintf(" %d missed", s.missed)
	}
	return out
}

// line is one run's milestones in a line.
func (t timeline) line() string {
	var parts []string
	for _, m := range milestones {
		if d, ok := t.at[m]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f s", m, d.Seconds()))
		}
	}
	if len(t.failed) > 0 {
		parts = append(parts, "FAILED: "+strings.Join(t.failed, "; "))
	}
	return strings.Join(parts, ", ")
}

// commit is the commit the bench runs on, marked when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "an unknown commit"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func (t timeline) err() error {
	if len(t.failed) > 0 {
		return fmt.Errorf("%s: checks failed: %s", t.name, strings.Join(t.failed, "; "))
	}
	return nil
}

// bringUp powers the machines on with the given configs and records the milestones; after is
// run by the host once the API answers (kubeadm's manual steps), concurrently with the checks.
func bringUp(out io.Writer, name, dir string, cfg *cluster.Config, img qemu.Image, configs map[string]string, kubeconfig []byte,
	after func(ctx context.Context, rc *rest.Config) error, keep bool) (timeline, error) {
	tl := timeline{name: name, at: map[string]time.Duration{}}
	spec := &qemu.Spec{Dir: dir, Image: img, Memory: cfg.QEMU.Memory, CPUs: cfg.QEMU.CPUs}
	var nodes []string
	for _, m := range cfg.Machines {
		spec.Machines = append(spec.Machines, qemu.Machine{Name: m.Name, Role: m.Role, MAC: m.MAC, Ignition: configs[m.Name]})
		nodes = append(nodes, m.Name)
	}
	// Long enough for the slower cluster to finish: the bench wants both times, not a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	start := time.Now()
	if err := qemu.Up(spec); err != nil {
		return tl, err
	}
	defer qemu.Down(spec.Dir)
	var mu sync.Mutex // mark is called from the console watch and the checks
	mark := func(m string) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := tl.at[m]; !ok {
			tl.at[m] = time.Since(start)
			fmt.Fprintf(out, "  %s: %s after %.0f s\n", name, milestoneNames[m], tl.at[m].Seconds())
		}
	}
	rc, err := hostConfig(kubeconfig, spec.APIPort)
	if err != nil {
		return tl, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return tl, err
	}
	// Phase 1 from the consoles (kubeup's machines report it; kubeadm's do not), watched until
	// every machine has reported or the checks end, and the API.
	allReported := func() bool {
		for _, m := range spec.Machines {
			if c, _ := spec.ReadConsole(m.Name); c.Phase1 == nil || !c.Phase1.Pass {
				return false
			}
		}
		mark("1")
		return true
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		_ = wait.PollUntilContextCancel(watchCtx, time.Second, true, func(context.Context) (bool, error) {
			return allReported(), nil
		})
	}()
	// Every second, counted from the end of a request (which may wait 20 s).
	err = wait.Backoff{Duration: time.Second}.DelayFunc().Until(ctx, true, true, func(context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err != nil {
		return tl, fmt.Errorf("%s: the API never answered", name)
	}
	mark("api")
	if after != nil {
		go func() {
			if err := after(ctx, rc); err != nil {
				fmt.Fprintf(out, "  %s: host steps: %v\n", name, err)
			}
		}()
	}
	// A phase may take long: on this 2-core TCG host kubeadm's nodes got pod networking 13
	// minutes after they registered (their flannel and kube-proxy pods starved of CPU by the
	// master), just inside a 15-minute check. A check gives up only after 30.
	k, err := verify.New(rc, verify.Options{Nodes: nodes, Timeout: 30 * time.Minute, Progress: func(phase string, rs []verify.Result) {
		pass := true
		for _, r := range rs {
			if !r.Pass {
				pass = false
				tl.failed = append(tl.failed, r.String())
				fmt.Fprintf(out, "  %s: %s\n", name, r)
			}
		}
		if pass {
			mark(phase)
		}
	}})
	if err != nil {
		return tl, err
	}
	k.Run(ctx, "all")
	stopWatch()
	mu.Lock()
	defer mu.Unlock()
	for _, m := range milestones[2:] {
		if _, ok := tl.at[m]; !ok {
			tl.failed = append(tl.failed, milestoneNames[m]+": never reached")
		}
	}
	if keep && len(tl.failed) > 0 {
		// Left running to be looked at: the host reaches the API on the forwarded port with
		// the kubeconfig written here, and every console is a file in the directory.
		kc := filepath.Join(spec.Dir, "kubeconfig")
		if raw, err := qemu.HostKubeconfig(kubeconfig, spec.APIPort); err == nil {
			clientcmd.WriteToFile(*raw, kc)
		}
		fmt.Fprintf(out, "  %s: checks failed; machines left running in %s (kubeconfig %s); ^C to stop them\n", name, spec.Dir, kc)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return tl, nil
}

// hostConfig points a kubeconfig at the forwarded API port.
func hostConfig(kubeconfig []byte, port int) (*rest.Config, error) {
	kc, err := qemu.HostKubeconfig(kubeconfig, port)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.Timeout = 20 * time.Second
	return rc, nil
}

// kubeadmAddons is what kubeadm's documentation has the operator do after `kubeadm init`:
// apply flannel's manifest and metrics-server, and approve the kubelets' serving certificates.
// Flannel is kubeup's manifest, tuned as kubeup runs it (flanneld reaches the API server
// directly and resyncs its rules every 60 s); with kubeadm's defaults it takes upstream's shape
// (through the kubernetes Service, a resync every 5 s, as kube-flannel.yml has it).
func kubeadmAddons(cfg *cluster.Config, tuning kubeadm.Tuning) func(ctx context.Context, rc *rest.Config) error {
	return func(ctx context.Context, rc *rest.Config) error {
		p := ignition.Params(cfg)
		flannel, err := manifests.Flannel(p)
		if err != nil {
			return err
		}
		for _, o := range flannel {
			if ds, ok := o.Obj.(*appsv1.DaemonSet); ok && tuning == kubeadm.Defaults {
				for i := range ds.Spec.Template.Spec.Containers {
					c := &ds.Spec.Template.Spec.Containers[i]
					var env = c.Env[:0]
					for _, e := range c.Env {
						if !strings.HasPrefix(e.Name, "KUBERNETES_SERVICE_") {
							env = append(env, e)
						}
					}
					c.Env = env
					// Upstream's flanneld also resyncs its iptables rules every 5 s.
					c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--iptables-resync") })
				}
			}
		}
		ms, err := manifests.MetricsServer(p)
		if err != nil {
			return err
		}
		data, err := manifests.YAML(append(flannel, ms...)...)
		if err != nil {
			return err
		}
		a, err := agent.NewApplier(rc)
		if err != nil {
			return err
		}
		if _, err := a.Apply(ctx, data); err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		ap := &agent.Approver{Client: client}
		ap.Run(ctx, func(error) {})
		return nil
	}
}

func randomToken() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:6]) + "." + string(b[6:])
}
