package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/verify"
)

func newUpCmd() *cobra.Command {
	var w where
	var image string
	var numNodes, apiPort int
	var timeout time.Duration
	var kvm bool
	var cloud cloudOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up a cluster (local QEMU VMs, AWS, vSphere or bare metal) and wait until every phase passes",
		Long: `up brings the cluster of --config up on its target and waits until it works: it creates the
secrets bundle if there is none (as ignition-gen does), renders every machine's Ignition config,
delivers the configs, starts the machines, shows each one's progress (booted, config applied,
phase 1, registered, Ready), checks every phase's exit criteria (kubeup verify), and prints the
admin kubeconfig to use. Nobody logs in to a machine. A re-run makes only what is missing.

  qemu     the master and --num-nodes nodes as local VMs from overlays of the baked image (make
           image), the API port forwarded to 127.0.0.1; they keep running after up returns
  aws      a VPC, the master with an Elastic IP and an etcd volume, an Auto Scaling group of
           --num-nodes nodes (docs/aws.md)
  vsphere  one VM per machine cloned from the template, configs in guestinfo, progress from the
           guestinfo variables each machine's agent sets (docs/vsphere.md)
  metal    the configs written to .kubeup/<cluster>/metal/ignition for 'kubeup pxe serve
           --ignition' to serve; you power the machines on and they network-boot; up follows
           them through the reports their agents post to the PXE server (docs/pxe.md)

'kubeup status' shows the machines, 'kubeup down' removes what up made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			if w.noConfig() && cloud.providerFlag != "" {
				if err := writeStarter(ctx, out, cloud.providerFlag); err != nil {
					return err
				}
			}
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			if _, err := cloud.provider(w.config, cfg); err != nil {
				return err
			}
			cloud.numNodes, cloud.numNodesSet, cloud.timeout = numNodes, cmd.Flags().Changed("num-nodes"), timeout
			cloud.image, cloud.apiPort, cloud.kvm = image, apiPort, kvm
			if row, err := targets.Lookup(cfg.Target); err == nil && cloud.image == "" && row.DefaultImage != nil {
				cloud.image = row.DefaultImage(cfg.KubernetesVersion)
			}
			return snippetUsage(w.config, up(ctx, out, cfg, state, cloud))
		},
	}
	w.register(cmd)
	cmd.Flags().StringVar(&image, "image", "", "the image the machines boot: QEMU's image directory (make image prints it; default $KUBEUP_IMAGE, else the cache's image of the config's kubernetesVersion), an AMI id (aws), a template (vsphere); it overrides the config's and --packer-manifest's")
	cmd.Flags().IntVar(&numNodes, "num-nodes", 2, "nodes to start besides the master: the first N nodes of the config")
	cmd.Flags().IntVar(&apiPort, "api-port", 0, "host port forwarded to the API server (default: a free port)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for every machine to be Ready and every phase to pass; 0 returns once the machines are started")
	cmd.Flags().BoolVar(&kvm, "kvm", defaultKVM(), "use KVM instead of emulation (TCG); default: KVM where /dev/kvm opens and the CPU has vmx or svm (KUBEUP_KVM=1 or 0 decides instead)")
	cloud.register(cmd)
	return cmd
}

// up brings cfg's cluster up through its target's provider (the table in
// internal/provider/targets): bringUp's one flow, the same on every target.
func up(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	row, err := targets.Lookup(cfg.Target)
	if err != nil {
		return err
	}
	if opt.dryRun && !row.Plans {
		return cli.Usagef("--dry-run: target %s has no plan to print: up makes only files and processes under %s", cfg.Target, targets.Dir(state, cfg.Target))
	}
	if !row.NodeGroup {
		if have := cfg.TrimNodes(opt.numNodes); have < opt.numNodes && opt.numNodesSet {
			return cli.Usagef("--num-nodes %d: %s lists only %d nodes (fix: add machines with role: node, each with its own name and mac, and an address where the target needs one)",
				opt.numNodes, opt.configPath, have)
		}
	}
	p, err := row.New(cfg, opt.targetOptions(cfg, state, out))
	if err != nil {
		return err
	}
	defer closeProvider(ctx, p)
	return bringUp(ctx, out, p, cfg, state, opt)
}

// defaultKVM is KUBEUP_KVM if set, or else whether KVM works on this host.
func defaultKVM() bool {
	switch os.Getenv("KUBEUP_KVM") {
	case "1":
		return true
	case "0":
		return false
	}
	return qemu.KVMUsable()
}

// writeKubeconfig writes the bundle's admin.conf (never super-admin.conf) pointed at server:
// where the API server is reached from outside the machines' network.
func writeKubeconfig(b *pki.Bundle, server, path string) error {
	kc, err := clientcmd.Load(b.File("admin.conf"))
	if err != nil {
		return fmt.Errorf("admin.conf of the bundle: %w", err)
	}
	for _, c := range kc.Clusters {
		c.Server = server
	}
	if err := fsutil.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	// It holds admin's client key: 0600, written atomically like the bundle's own files.
	return fsutil.ReplaceFile(path, data, 0o600)
}

func newDownCmd() *cobra.Command {
	var w where
	var cloud cloudOptions
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster's machines and remove what 'kubeup up' made",
		Long: `down removes what 'kubeup up' made for the cluster and nothing else. QEMU: it stops every
machine and removes its directory (.kubeup/<cluster>/qemu: overlays, serial logs, rendered configs,
the host kubeconfig). AWS and vSphere: it deletes what up created (found by the cluster's tags or
the VMs' guestinfo mark), in dependency order, and reports what it could not delete, then removes
.kubeup/<cluster>/<target>. The secrets bundle stays: the
next 'kubeup up' reuses it. Remove .kubeup/<cluster> yourself to forget the cluster's keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			target, err := cloud.provider(w.config, cfg)
			if err != nil {
				return err
			}
			row, err := targets.Lookup(target)
			if err != nil {
				return err
			}
			if cloud.dryRun && !row.Plans {
				return cli.Usagef("--dry-run: target %s has no plan to print: down removes %s", target, targets.Dir(state, target))
			}
			p, err := row.New(cfg, cloud.targetOptions(cfg, state, cmd.OutOrStdout()))
			if err != nil {
				return err
			}
			defer closeProvider(cmd.Context(), p)
			return p.Down(cmd.Context())
		},
	}
	w.register(cmd)
	cloud.register(cmd)
	return cmd
}

func newStatusCmd() *cobra.Command {
	var w where
	var phases bool
	var o cli.Output
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's machines and, with --verify, every phase's exit criteria",
		Long: `kubeup status shows every machine's stage. For a cluster 'kubeup up' made it reads each
machine's reports without logging in (QEMU: the serial logs; AWS: EC2's console output;
vSphere: the guestinfo variables its agent sets, and its VMware Tools heartbeat; bare metal:
the reports its agent posted to the PXE server at metal.pxeServer, over HTTPS trusting the
cluster CA) and the API.

With -o json or yaml each machine also carries its agent's bring-up timeline once it is
Ready: every step (userspace, containerd, kubelet, phase-1, each control-plane pod, api,
bootstrap, registered, cni, ready) in seconds since the machine's kernel started. An API server
that does not answer (yet) is part of the status, not an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			// The provider's notes (a login) go to stderr: stdout is the status, maybe JSON.
			p, err := targetProvider(cfg, state, cmd.ErrOrStderr(), cloudOptions{})
			if err != nil {
				return err
			}
			defer closeProvider(cmd.Context(), p)
			kubeconfig := targets.HostKubeconfig(state, p.Target())
			st, apiOK, err := observe(cmd.Context(), p, kubeconfig)
			if errors.Is(err, fs.ErrNotExist) {
				return cli.Unreachable(err) // nothing brought up to look at
			} else if err != nil {
				return err
			}
			endpoint, _ := p.Endpoint(cmd.Context())
			doc := clusterStatus{Cluster: cfg.Name, Target: cfg.Target, Endpoint: endpoint, APIOK: apiOK, Machines: []machineStatus{}}
			for _, m := range st {
				doc.Machines = append(doc.Machines, m.status())
			}
			if !phases {
				return o.Print(cmd.OutOrStdout(), doc, func(out io.Writer) error {
					printMachines(out, st)
					if !apiOK {
						fmt.Fprintf(out, "the API at %s does not answer (yet): stages come from the machines' consoles alone\n", endpoint)
					}
					return nil
				})
			}
			k, err := checker(kubeconfig, st)
			if err != nil {
				return err
			}
			results := k.Run(cmd.Context(), "all")
			if o.Structured() {
				doc.Checks = results
				if err := o.Print(cmd.OutOrStdout(), doc, nil); err != nil {
					return err
				}
				return failedChecks(results)
			}
			printMachines(cmd.OutOrStdout(), st)
			return report(cmd, results, o)
		},
	}
	w.register(cmd)
	cmd.Flags().BoolVar(&phases, "verify", false, "also run every phase's checks (kubeup verify --phase all)")
	o.Register(cmd)
	return cmd
}

// clusterStatus is `kubeup status -o json|yaml`: field names scripts rely on.
type clusterStatus struct {
	Cluster  string          `json:"cluster"`
	Target   string          `json:"target"`
	Endpoint string          `json:"endpoint"`
	APIOK    bool            `json:"apiAnswers"`
	Machines []machineStatus `json:"machines"`
	// Checks are every phase's checks, with --verify.
	Checks []verify.Result `json:"checks,omitempty"`
}
