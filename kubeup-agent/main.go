// Command kubeup-agent runs on every machine after Ignition. Everywhere it checks phase 1 (node
// spec, runtime, preloaded images, a test container, peers) and prints one JSON report line. On
// the master it then waits for the API server, applies the bootstrap objects and add-ons by
// server-side apply, and approves kubelet-serving CSRs for as long as it runs (and keeps the
// EndpointSlice of kube-system/kubeup-agent, every machine's metrics). Then, on every
// machine for as long as it runs, it watches its certificates (metrics on --metrics-listen, the
// Node's kubeup.dev/certificates annotation, Warning Events 30 and 7 days before expiry) and on
// the master renews them when due; during a CA rotation it moves the master (carotation.Master)
// and every machine's trust and kubelet certificates (carotation.Kubelet) onto the new CA. On
// the master with pki.bootstrapTokenPool, it also keeps the node pool's bootstrap token valid
// (internal/tokenpool). Every step is reported on the console, and on a VMware VM also in
// guestinfo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/metricsserver"
	"kubeup.dev/kubeup/internal/renewal"
	"kubeup.dev/kubeup/internal/tokenpool"
)

func main() {
	cli.Execute(newRootCmd())
}

func newRootCmd() *cobra.Command {
	var configPath, root, containerd string
	var apiTimeout, peerTimeout time.Duration
	var once, imageCheck bool
	var certs certOptions
	cmd := &cobra.Command{
		Use:   "kubeup-agent",
		Short: "kubeup's agent on every machine: phase-1 checks, the master's bootstrap and add-ons, CSR approval, certificates",
		Long: `kubeup-agent runs on every machine after Ignition, started by its systemd unit with the
config Ignition wrote. It reports every step on the console (one line each), on a VMware VM also
in guestinfo (where the vSphere provider reads it), and on bare metal to the PXE server.
docs/machine-contract.md lists what it expects of the machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if imageCheck {
				ctr := []string{"ctr"}
				if containerd != "" {
					ctr = append(ctr, "--address", containerd)
				}
				r := (&agent.Node{Root: root, Ctr: ctr}).ImageCheck(context.Background(), "image")
				fmt.Fprintln(cmd.OutOrStdout(), r.Line())
				if !r.Pass {
					return cli.Failed(errors.New("the image does not meet the node spec"))
				}
				return nil
			}
			return run(configPath, root, apiTimeout, peerTimeout, once, certs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", machine.AgentConfig, "agent config written by Ignition")
	f.StringVar(&root, "root", "/", "prefix for every path in the config (for tests)")
	f.DurationVar(&apiTimeout, "api-timeout", 20*time.Minute, "how long to wait for the API server")
	f.BoolVar(&once, "once", false, "master only: skip phase 1, bootstrap and approve pending CSRs once, then exit")
	f.DurationVar(&peerTimeout, "peer-timeout", 5*time.Minute, "how long phase 1 waits for each peer to answer")
	f.BoolVar(&imageCheck, "image-check", false, "at image build time: check the image against the node spec, print the report line, exit 1 if it fails")
	f.StringVar(&containerd, "containerd-address", "", "containerd socket for --image-check (default: ctr's)")
	f.DurationVar(&certs.interval, "cert-check-interval", 10*time.Minute, "how often the certificates are checked (and, on the master, renewed when due and a CA rotation taken forward)")
	f.DurationVar(&certs.caInterval, "ca-check-interval", time.Minute, "how often to look for a CA rotation (the master: the secret kube-system/kubeup-ca-rotation; nodes: a change of kube-system/kube-root-ca.crt); during one, every 30s")
	f.Float64Var(&certs.share, "renew-share", renewal.DefaultShare, "master: renew a certificate when less than this share of its lifetime is left")
	f.StringVar(&certs.metrics, "metrics-listen", fmt.Sprintf(":%d", machine.AgentMetricsPort), "where to serve Prometheus metrics ("+renewal.ExpiryMetric+") over HTTPS, with the kubelet's serving certificate, to clients the API server allows to get /metrics; empty: none")
	cmd.CompletionOptions.DisableDefaultCmd = true // nobody types at a machine's agent
	cli.AddVersion(cmd)
	cmd.AddCommand(newRestoreEtcdCmd())
	return cmd
}

// newRestoreEtcdCmd is the master's one-shot step before its kubelet starts, when its config
// carries an etcd snapshot (an upgrade's rollback to the snapshot): etcd's member is replaced
// by the snapshot's, and the snapshot file is removed, so a later boot restores nothing.
func newRestoreEtcdCmd() *cobra.Command {
	var snapshot, dataDir string
	var member etcdsnapshot.Member
	cmd := &cobra.Command{
		Use:   "restore-etcd",
		Short: "Replace etcd's data with a snapshot's before the kubelet starts etcd (run by " + machine.EtcdRestoreUnit + ")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := agent.Console()
			kept, err := etcdsnapshot.RestoreInPlace(snapshot, dataDir, member)
			if err != nil {
				fmt.Fprintf(out, "kubeup: %s: etcd restore from %s failed: %v\n", member.Name, snapshot, err)
				return err
			}
			if err := os.Remove(snapshot); err != nil {
				return err
			}
			note := ""
			if kept {
				note = fmt.Sprintf("; the data it replaced is kept in %s", filepath.Join(dataDir, etcdsnapshot.KeptMember))
			}
			fmt.Fprintf(out, "kubeup: %s: etcd's data restored from the snapshot in this machine's config%s\n", member.Name, note)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&snapshot, "snapshot", machine.EtcdRestoreSnapshot, "the snapshot the machine's config wrote")
	f.StringVar(&dataDir, "data-dir", manifests.EtcdDataDir, "etcd's data directory")
	f.StringVar(&member.Name, "name", "", "etcd's member name (the master's name)")
	f.StringVar(&member.PeerURL, "peer-url", "", "etcd's peer URL")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("peer-url")
	return cmd
}

// certOptions tune the certificate loop every agent runs after its phase-1 work.
type certOptions struct {
	interval   time.Duration
	caInterval time.Duration
	share      float64
	metrics    string
}

func run(configPath, root string, apiTimeout, peerTimeout time.Duration, once bool, certs certOptions) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg agent.Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	// Every line the agent prints goes to the console and, on vSphere, to guestinfo too.
	console = agent.Console()
	name := cfg.Machine
	if name == "" {
		name, _ = os.Hostname()
	}
	rep := &agent.Reporter{Machine: name, Console: console}
	timeline, err := agent.NewRecorder(name, root)
	if err != nil {
		return err
	}
	if cfg.ReportURL != "" {
		// Reports also go to the PXE server, over HTTPS trusting the cluster CA only.
		c, err := agent.NewHTTPClient(filepath.Join(root, manifests.PKIDir, "ca.crt"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubeup-agent: reports to", cfg.ReportURL, "disabled:", err)
		} else {
			rep.URL, rep.HTTP = cfg.ReportURL, c
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Phase 1, on every machine: the node spec, the runtime and the peers. One JSON line on the
	// console says it all, for hosts that read the serial log. (--once is the master's bootstrap
	// alone, for running it by hand or in the control-plane test.)
	runPhase1 := func(rep *agent.Reporter) *machine.Phase1Report {
		node := &agent.Node{Root: root, Ctr: []string{"ctr"}, Peers: cfg.Peers, PeerTimeout: peerTimeout}
		r := node.Phase1(ctx, name)
		timeline.Now(machine.StepPhase1)
		fmt.Fprintln(console, r.Line())
		var failed []string
		for _, c := range r.Checks {
			if !c.Pass {
				failed = append(failed, c.Name+" ("+c.Evidence+")")
			}
		}
		rep.Report(ctx, "1", "NodeSpec", r.Pass, fmt.Sprintf("%d checks, failed: %v", len(r.Checks), failed))
		return &r
	}
	var phase1 *machine.Phase1Report
	// The master's phase 1 runs beside its bootstrap, not before it: it pings every peer until
	// each answers or --peer-timeout passes, and every node waits for the bootstrap (its RBAC
	// and token) to join, so one node that never boots would hold back all the others.
	masterPhase1 := make(chan *machine.Phase1Report, 1)
	switch {
	case once:
	case cfg.Role == cluster.RoleMaster:
		own := *rep // its own copy: the bootstrap gives rep an API client while this runs
		go func() { masterPhase1 <- runPhase1(&own) }()
	default:
		phase1 = runPhase1(rep)
	}
	if cfg.Role != cluster.RoleMaster {
		if phase1 == nil {
			return nil
		}
		// Once the kubelet has its own credentials (TLS bootstrap done), the report goes on
		// the Node too, where the host reads it through the API.
		wctx, cancel := context.WithTimeout(ctx, apiTimeout)
		defer cancel()
		kubelet, err := agent.WaitForKubeconfig(wctx, root, manifests.KubeletKubeconf)
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(kubelet)
		if err != nil {
			return err
		}
		// The registry mirrors' credentials, which no node config holds, as soon as the
		// kubelet's credentials may read them (a pull before then fails, and the kubelet retries).
		if agent.HasRegistries(root) {
			go (&agent.RegistryHosts{Client: client, Root: root, Log: logf(name)}).Run(ctx)
		}
		events := agent.NewEvents(ctx, client)
		if err := agent.Publish(wctx, client, events, *phase1); err != nil {
			return err
		}
		fmt.Fprintf(console, "kubeup: %s: phase-1 report published on Node %s\n", name, name)
		go finishTimeline(ctx, timeline, client, apiTimeout)
		go rebootOnRequest(ctx, client, name)
		// Then, for as long as the machine runs: the kubelet's certificates, watched, and the
		// machine's trust following the cluster's CAs (a CA rotation). The client follows the
		// kubelet's certificate files and kubelet.conf's CA data.
		w := &agent.CertWatch{Machine: name, Root: root, Watch: renewal.KubeletItems,
			Reporter: &agent.Reporter{Machine: name, Console: console, Client: client, Events: events}}
		k := &carotation.Kubelet{Root: root, Node: name, Config: kubelet, Client: client, FollowTrust: true,
			RestartKubelet: restartKubelet, Event: w.Say, Log: logf(name)}
		w.CARotation = append(w.CARotation, k.Step)
		return watchCerts(ctx, w, certs, client, root)
	}
	m := &agent.Master{Config: cfg, Root: root, Reporter: rep, Timeline: timeline}
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		return err
	}
	// The agent renews admin.conf itself: its client follows the file.
	admin, err := agent.ReloadingConfig(filepath.Join(root, cfg.Kubeconfig))
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	events := agent.NewEvents(ctx, client)
	ap := &agent.Approver{Client: client, Log: func(csr string, d agent.Decision, reason string) {
		fmt.Fprintf(console, "kubeup: %s: CSR %s: %s: %s\n", name, csr, d, reason)
	}}
	if once {
		return ap.Once(ctx)
	}
	go func() {
		var phase1 *machine.Phase1Report
		select {
		case phase1 = <-masterPhase1:
		case <-ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(ctx, apiTimeout)
		defer cancel()
		if err := agent.Publish(ctx, client, events, *phase1); err != nil {
			fmt.Fprintln(os.Stderr, "kubeup-agent:", err)
			return
		}
		fmt.Fprintf(console, "kubeup: %s: phase-1 report published on Node %s\n", name, name)
	}()
	go finishTimeline(ctx, timeline, client, apiTimeout)
	go rebootOnRequest(ctx, client, name)
	health := renewal.LocalHealth(root, admin.Host)
	restarter := &renewal.StaticPods{Root: root, Proc: "/proc"}
	log := logf(name)
	renewer := &renewal.Renewer{Root: root, Items: renewal.MasterItems, Share: certs.share,
		StateDir: filepath.Join(root, "/var/lib/kubeup/renewal"),
		Restart:  restarter.Restart, Healthy: health.Check, Log: log}
	w := &agent.CertWatch{Machine: name, Root: root, Watch: renewal.KubeletItems, Renewer: renewer,
		Reporter: &agent.Reporter{Machine: name, Console: console, Client: client, Events: events}}
	// A CA rotation handed over by `kubeup certs rotate-ca start` is taken forward at the
	// start of every pass, with the same restarts and health checks as a renewal; then the
	// master's kubelet gets certificates from the new CA as soon as it signs (as the kubelet,
	// with the certificate it rotated to; its kubelet.conf embeds the bundle's first one).
	w.CARotation = append(w.CARotation, (&carotation.Master{Root: root, Client: client, Renewer: renewer, Node: name, Log: log,
		RestartKubelet: restartKubelet, Event: w.Say}).Step)
	kubeletCfg, err := agent.ReloadingCertConfig(filepath.Join(root, manifests.KubeletKubeconf),
		filepath.Join(root, renewal.KubeletClientFile))
	if err != nil {
		return err
	}
	kubeletClient, err := kubernetes.NewForConfig(kubeletCfg)
	if err != nil {
		return err
	}
	w.CARotation = append(w.CARotation, (&carotation.Kubelet{Root: root, Node: name, Config: kubeletCfg, Client: kubeletClient,
		RestartKubelet: restartKubelet, Event: w.Say, Log: log}).Step)
	go watchCerts(ctx, w, certs, kubeletClient, root)
	// The Service kube-system/kubeup-agent lists every machine's agent metrics, for scrapers.
	go (&agent.MetricsEndpoints{Client: client}).Run(ctx, func(err error) { fmt.Fprintln(os.Stderr, "kubeup-agent: metrics endpoints:", err) })
	if cfg.NodeTokenTTL != "" {
		ttl, err := time.ParseDuration(cfg.NodeTokenTTL)
		if err != nil {
			return fmt.Errorf("%s: nodeTokenTTL: %w", configPath, err)
		}
		pool := &tokenpool.Pool{Client: client, TTL: ttl, Share: tokenpool.DefaultShare,
			Log: log}
		// Often enough that a successor is never late by more than a small part of the overlap.
		interval := min(certs.interval, time.Duration(tokenpool.DefaultShare*float64(ttl)/4))
		go pool.Run(ctx, interval, func(err error) { fmt.Fprintln(os.Stderr, "kubeup-agent: node token pool:", err) })
	}
	ap.Run(ctx, func(err error) { fmt.Fprintln(os.Stderr, "kubeup-agent: approver:", err) })
	return nil
}

// console is where the agent prints its lines: stdout (the serial console), and on a VMware VM
// guestinfo as well (agent.Console).
var console io.Writer = os.Stdout

// finishTimeline prints the machine's bring-up timeline once its Node is Ready, and puts it on
// the Node; a machine that is not Ready within timeout has no timeline, only its reports.
func finishTimeline(ctx context.Context, r *agent.Recorder, c kubernetes.Interface, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.Finish(ctx, c, func(line string) { fmt.Fprintln(console, line) }); err != nil {
		fmt.Fprintln(os.Stderr, "kubeup-agent:", err)
	}
}

// logf prints a line on the console for machine name.
func logf(name string) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(console, "kubeup: "+name+": "+format+"\n", args...) }
}

// rebootOnRequest reboots the machine when its Node asks this boot to end
// (machine.RebootAnnotation): how an upgrade replaces a network-booted machine, which comes
// back with what the PXE server serves it now.
func rebootOnRequest(ctx context.Context, c kubernetes.Interface, name string) {
	boot, err := agent.ReadBootID(agent.BootIDFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeup-agent: reboot requests are not watched:", err)
		return
	}
	r := &agent.Rebooter{Client: c, Node: name, BootID: boot, Log: logf(name), Reboot: func(ctx context.Context) error {
		if out, err := exec.CommandContext(ctx, "systemctl", "reboot").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl reboot: %w: %s", err, out)
		}
		return nil
	}}
	r.Run(ctx)
}

// restartKubelet restarts the machine's kubelet, which reads its kubeconfig's CA data and its
// client certificate only when it starts; the static pods keep running meanwhile.
func restartKubelet(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, "systemctl", "restart", "kubelet").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl restart kubelet: %w: %s", err, out)
	}
	return nil
}

// watchCerts serves the certificate metrics and runs the certificate loop until ctx ends. The
// metrics go over TLS with the kubelet's serving certificate, to clients the API server
// authenticates and allows to get /metrics (reviews made with client, the kubelet's
// credentials).
func watchCerts(ctx context.Context, w *agent.CertWatch, opt certOptions, client kubernetes.Interface, root string) error {
	// A CA rotation is looked for more often than certificates change: the master waits on
	// the nodes (carotation.NodesTrust), and an operator on the master.
	opt.interval = min(opt.interval, opt.caInterval)
	w.Metrics = renewal.NewMetrics()
	if opt.metrics != "" {
		serving := filepath.Join(root, renewal.KubeletServingFile)
		go func() {
			// Without metrics the certificates are still watched, renewed and annotated.
			ln, err := net.Listen("tcp", opt.metrics)
			if err == nil {
				err = metricsserver.Serve(ctx, ln, metricsserver.Options{CertFile: serving, KeyFile: serving,
					ClientCA: filepath.Join(root, manifests.PKIDir, "ca.crt"), Client: client, Handler: w.Metrics.Handler()})
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "kubeup-agent: metrics:", err)
			}
		}()
	}
	w.Run(ctx, opt.interval)
	return nil
}
