package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
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

// benchBringUp brings the same cluster up twice on the same image and VM sizes, one after the
// other so each has the whole host: by kubeup, then by kubeadm. Each is timed from power-on
// to every phase passing, with the same checks.
func benchBringUp(imageDir string, nodes int, peers []string, keep bool) error {
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
	dir, err := os.MkdirTemp("", "kubeup-bench-bringup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := pki.Ensure(filepath.Join(dir, "state"), cfg, pki.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("bring-up, 1 master + %d nodes, %s of memory and %d vCPUs each, image %s\n", nodes, cfg.QEMU.Memory, cfg.QEMU.CPUs, imageDir)

	// kubeup: the configs ignition-gen renders; the machines do the rest.
	outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: filepath.Join(dir, "kubeup-ign")})
	if err != nil {
		return err
	}
	files := map[string]string{}
	for _, o := range outs {
		files[o.Name] = o.File
	}
	var ku, ka timeline
	if slices.Contains(peers, "kubeup") {
		if ku, err = bringUp("kubeup", dir, cfg, img, files, b.File("admin.conf"), nil, keep); err != nil {
			return err
		}
	}
	if !slices.Contains(peers, "kubeadm") {
		return ku.err()
	}

	// kubeadm: init and join by first-boot units; the host applies flannel and metrics-server
	// once the API answers, as kubeadm's documentation has the operator do, and approves the
	// kubelets' serving certificates (kubeadm's docs for metrics-server with TLS).
	token := randomToken()
	configs, err := kubeadm.Configs(cfg, b.File("pki/ca.crt"), b.File("pki/ca.key"), token)
	if err != nil {
		return err
	}
	files = map[string]string{}
	for name, raw := range configs {
		f := filepath.Join(dir, "kubeadm-ign", name+".ign")
		os.MkdirAll(filepath.Dir(f), 0o700)
		if err := os.WriteFile(f, raw, 0o600); err != nil {
			return err
		}
		files[name] = f
	}
	// The bundle's super-admin.conf (system:masters, signed by the CA kubeadm was given) is the
	// host's way in.
	if ka, err = bringUp("kubeadm", dir, cfg, img, files, b.File("super-admin.conf"), kubeadmAddons(cfg), keep); err != nil {
		return err
	}
	if !slices.Contains(peers, "kubeup") {
		return ka.err()
	}

	fmt.Printf("\n  %-36s %10s %10s %8s\n", "from power-on to", "kubeup", "kubeadm", "ratio")
	for _, m := range milestones {
		k, ok1 := ku.at[m]
		a, ok2 := ka.at[m]
		cell := func(d time.Duration, ok bool) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.0f s", d.Seconds())
		}
		ratio := "-"
		if ok1 && ok2 {
			ratio = fmt.Sprintf("%.2fx", k.Seconds()/a.Seconds())
		}
		fmt.Printf("  %-36s %10s %10s %8s\n", milestoneNames[m], cell(k, ok1), cell(a, ok2), ratio)
	}
	for _, t := range []timeline{ku, ka} {
		if err := t.err(); err != nil {
			return err
		}
	}
	fmt.Printf("kubeup brings the cluster to all-pass in %.2fx kubeadm's time (goal: 0.5x or less)\n", ku.at["6"].Seconds()/ka.at["6"].Seconds())
	return nil
}

func (t timeline) err() error {
	if len(t.failed) > 0 {
		return fmt.Errorf("%s: checks failed: %s", t.name, strings.Join(t.failed, "; "))
	}
	return nil
}

// bringUp powers the machines on with the given configs and records the milestones; after is
// run by the host once the API answers (kubeadm's manual steps), concurrently with the checks.
func bringUp(name, dir string, cfg *cluster.Config, img qemu.Image, configs map[string]string, kubeconfig []byte,
	after func(ctx context.Context, rc *rest.Config) error, keep bool) (timeline, error) {
	tl := timeline{name: name, at: map[string]time.Duration{}}
	spec := &qemu.Spec{Dir: filepath.Join(dir, name), Image: img, Memory: cfg.QEMU.Memory, CPUs: cfg.QEMU.CPUs}
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
			fmt.Printf("  %s: %s after %.0f s\n", name, milestoneNames[m], tl.at[m].Seconds())
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
				fmt.Printf("  %s: host steps: %v\n", name, err)
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
				fmt.Printf("  %s: %s\n", name, r)
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
		fmt.Printf("  %s: checks failed; machines left running in %s (kubeconfig %s); ^C to stop them\n", name, spec.Dir, kc)
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
// apply flannel's manifest (upstream's shape: flanneld reaches the API through the kubernetes
// Service and resyncs its rules every 5 s, as kube-flannel.yml has it) and metrics-server, and approve the kubelets' serving
// certificates.
func kubeadmAddons(cfg *cluster.Config) func(ctx context.Context, rc *rest.Config) error {
	return func(ctx context.Context, rc *rest.Config) error {
		p := ignition.Params(cfg)
		flannel, err := manifests.Flannel(p)
		if err != nil {
			return err
		}
		for _, o := range flannel {
			if ds, ok := o.Obj.(*appsv1.DaemonSet); ok {
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
