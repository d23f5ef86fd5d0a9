package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/upgrade"
	"kubeup.dev/kubeup/internal/versions"
)

// upgradeOptions are the flags of kubeup upgrade.
type upgradeOptions struct {
	to, imageDir   string
	dryRun         bool
	maxUnavailable int
	machineTimeout time.Duration
	drainTimeout   time.Duration
}

func newUpgradeCmd() *cobra.Command {
	var w where
	var o cli.Output
	var opt upgradeOptions
	cmd := &cobra.Command{
		Use:   "upgrade --to VERSION [--image DIR] [--dry-run]",
		Short: "Move a running cluster to another Kubernetes release by replacing its machines",
		Long: `upgrade moves a running cluster to another Kubernetes release the immutable way: each
machine is replaced by a new one booted from the new release's image, its config rendered
again from the same secrets bundle. It reads the cluster's versions, checks the version-skew
policy and the image, prints the plan, and with --dry-run stops there. Otherwise:

  1. an etcd snapshot is saved to the host (as 'kubeup etcd snapshot save');
  2. the master is drained and gets a new root disk, keeping its etcd disk; the API server is
     down while it boots. If it is not Ready at the new release with phase 3 passing within
     --machine-timeout, it gets its old root back (and etcd's data from the snapshot, if the
     new release's API server answered: what was written since is lost) and the command fails
     naming the check;
  3. the nodes, --max-unavailable at a time: cordon, drain (PodDisruptionBudgets honoured),
     replace, wait until Ready at the new release with its DaemonSet pods, uncordon. A node
     that does not come back stops the upgrade: no further machine is taken down;
  4. the add-ons the new master applied run everywhere (kube-proxy moves with each machine).

Kept: etcd's data (Secrets still encrypted), the bundle, machine names and addresses.
Replaced: every root disk, with what pods wrote there (hostPath, emptyDir, logs). Workloads
stay available only with 2 or more replicas and a PodDisruptionBudget.

--to the release the cluster runs replaces only the machines whose config (rendered again from
the config file and the bundle) or image (--image) differs from what they booted, and names
them: how a config change or a new image of the same release reaches running machines, since
Ignition runs once. Nothing differs: nothing is done.

Progress is recorded in the bundle directory (upgrade.json): run the command again after an
interruption or a fix and it goes on from the first step not done. Set kubernetesVersion in
the config to VERSION first (later renders read it); --to must say the same. Machines are
replaced on QEMU only in this release. Refused, with the reason and the fix: a release kubeup
does not bring up, a downgrade, a skipped minor release, a kubelet newer than the API server or
more than 3 minors older than the target, an image of another release. See docs/upgrades.md.`,
		Example: `  kubeup upgrade --to v1.37.2 --dry-run
  kubeup upgrade --to v1.37.2
  kubeup upgrade --to v1.37.2 --image ~/.cache/kubeup/image/qemu-debian-v1.37.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			if opt.to == "" {
				return cli.Usagef("--to: name the release to move to (one of %v)", versions.Supported)
			}
			if opt.maxUnavailable < 1 {
				return cli.Usagef("--max-unavailable %d: at least 1 node is replaced at a time", opt.maxUnavailable)
			}
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			if !opt.dryRun {
				if cfg.KubernetesVersion != opt.to {
					return cli.Usagef("%s: kubernetesVersion is %s, and --to asks for %s (fix: set kubernetesVersion: %s in %s first; later renders read it)",
						w.config, cfg.KubernetesVersion, opt.to, opt.to, w.config)
				}
				if cfg.Target != cluster.TargetQEMU {
					return cli.Usagef("target %s: kubeup upgrade replaces machines on qemu only in this release (--dry-run prints the plan)", cfg.Target)
				}
			}
			cs, err := w.client()
			if err != nil {
				return err
			}
			c, err := readCluster(cmd.Context(), cs, cfg)
			if err != nil {
				return err
			}
			if cfg.Target == cluster.TargetQEMU {
				if opt.imageDir == "" {
					opt.imageDir = defaultImageDir(opt.to)
				}
				img, err := qemu.ImageIn(opt.imageDir)
				if err != nil {
					return err
				}
				c.Image, c.ImageRelease = opt.imageDir, img.Kubernetes
				if opt.to == c.APIServer {
					// The same release: a config change, or a new image of it.
					prog, err := upgrade.LoadProgress(filepath.Join(state, upgrade.ProgressFile), c.APIServer, opt.to)
					if err != nil {
						return cli.Usage(err)
					}
					if c.Changed, err = machineChanges(cfg, state, opt.imageDir, prog.Unfinished()); err != nil {
						return err
					}
				}
			}
			p, err := upgrade.MakePlan(c, opt.to)
			if err != nil {
				return err
			}
			if opt.dryRun {
				return o.Print(cmd.OutOrStdout(), p, func(out io.Writer) error {
					if err := p.Print(out); err != nil {
						return err
					}
					_, err := fmt.Fprintln(out, "dry run: nothing was changed")
					return err
				})
			}
			if o.Structured() {
				return cli.Usagef("-o: an upgrade prints its progress as text; -o json goes with --dry-run")
			}
			out := cmd.OutOrStdout()
			if err := p.Print(out); err != nil {
				return err
			}
			if len(p.Steps) == 0 {
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runUpgrade(ctx, out, &w, cfg, state, cs, p, opt)
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	cmd.Flags().StringVar(&opt.to, "to", "", "the Kubernetes release to move to")
	cmd.Flags().StringVar(&opt.imageDir, "image", "", "QEMU: the image directory the machines boot (default $KUBEUP_IMAGE, else the cache's image of --to)")
	cmd.Flags().BoolVar(&opt.dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().IntVar(&opt.maxUnavailable, "max-unavailable", 1, "how many nodes are drained and replaced at once")
	cmd.Flags().DurationVar(&opt.machineTimeout, "machine-timeout", 20*time.Minute, "how long a replaced machine has to be Ready and pass its checks (the master is then rolled back)")
	cmd.Flags().DurationVar(&opt.drainTimeout, "drain-timeout", 10*time.Minute, "how long a node's drain may take (PodDisruptionBudgets can hold it up)")
	return cmd
}

// readCluster reads the versions a plan is made from.
func readCluster(ctx context.Context, cs kubernetes.Interface, cfg *cluster.Config) (upgrade.Cluster, error) {
	c := upgrade.Cluster{Name: cfg.Name, Master: cfg.Master().Name, Kubelets: map[string]string{}}
	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		return c, cli.Unreachable(fmt.Errorf("the API server's version: %w", err))
	}
	c.APIServer = info.GitVersion
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return c, cli.Unreachable(fmt.Errorf("list the nodes: %w", err))
	}
	for _, n := range nodes.Items {
		c.Kubelets[n.Name] = n.Status.NodeInfo.KubeletVersion
	}
	return c, nil
}

// runUpgrade carries the plan out on QEMU, resuming from the progress record.
func runUpgrade(ctx context.Context, out io.Writer, w *where, cfg *cluster.Config, state string, cs kubernetes.Interface, p upgrade.Plan, opt upgradeOptions) error {
	progressPath := filepath.Join(state, upgrade.ProgressFile)
	prog, err := upgrade.LoadProgress(progressPath, p.From, p.To)
	if err != nil {
		return cli.Usage(err)
	}
	b, err := pki.Load(state, cfg)
	if err != nil {
		return err
	}
	master := cfg.Master().Name
	now := qemuProvider(cfg, state, out)
	if prog.FromImage == "" {
		// A new record: what the master boots now is what a rollback gives it back.
		img, err := now.ImageOf(master)
		if err != nil {
			return err
		}
		prog.FromImage = filepath.Dir(img.Disk)
		if prog.MasterConfig, err = now.DeliveredConfig(master); err != nil {
			return err
		}
	}
	if err := prog.Save(progressPath); err != nil {
		return err
	}
	// The old release's config renders what the master ran before (its rollback).
	old := *cfg
	old.KubernetesVersion = prog.From
	replacer := func(c *cluster.Config, imageDir string) func(context.Context, string) error {
		return func(ctx context.Context, name string) error {
			config, err := qemuConfig(c, b, name)
			if err != nil {
				return err
			}
			pr := qemuProvider(c, state, out)
			pr.ImageDir = imageDir
			return pr.Replace(ctx, name, config)
		}
	}
	restCfg, err := w.restConfig()
	if err != nil {
		return err
	}
	r := &upgrade.Runner{
		Client: cs,
		Snapshot: func(ctx context.Context) (string, error) {
			res, err := saveSnapshot(ctx, w, cfg, state, b, "", "", io.Discard)
			return res.Path, err
		},
		Replace: replacer(cfg, opt.imageDir),
		Restore: func(ctx context.Context, name, snapshot string) error {
			config := ignition.Config{Name: name, Raw: prog.MasterConfig}
			if prog.MasterConfig == nil { // a record of an older kubeup: render what it ran
				rendered, err := qemuConfig(&old, b, name)
				if err != nil {
					return err
				}
				config = rendered
			}
			pr := qemuProvider(&old, state, out)
			pr.ImageDir = prog.FromImage
			if snapshot == "" {
				return pr.Replace(ctx, name, config)
			}
			return restoreEtcdFrom(ctx, pr, old.Master(), state, snapshot, config)
		},
		NewEtcd: versions.ReleaseOrDefault(p.From).Etcd != versions.ReleaseOrDefault(p.To).Etcd,
		CheckMaster: func(ctx context.Context) error {
			return checkPhase3(ctx, restCfg, opt.machineTimeout)
		},
		ProgressPath:   progressPath,
		MachineTimeout: opt.machineTimeout,
		DrainTimeout:   opt.drainTimeout,
		MaxUnavailable: opt.maxUnavailable,
		Out:            out,
	}
	return r.Run(ctx, p, prog)
}

// machineChanges says, for each machine of a QEMU cluster, what differs between what it booted
// and what it would boot now: its config as rendered now from the config file and the bundle
// (rendering is byte-stable), and its image against imageDir. The machines named in unfinished
// (an interrupted upgrade's planned steps not done) count as changed: that run may have replaced
// one already, which then boots the new config, without finishing its step.
func machineChanges(cfg *cluster.Config, state, imageDir string, unfinished []string) (map[string]string, error) {
	b, err := pki.Load(state, cfg)
	if err != nil {
		return nil, err
	}
	configs, err := ignition.Configs(cfg, b, qemu.RenderOptions())
	if err != nil {
		return nil, err
	}
	newImage, err := os.Stat(imageDir)
	if err != nil {
		return nil, err
	}
	p := qemuProvider(cfg, state, io.Discard)
	changes := map[string]string{}
	for _, c := range configs {
		booted, err := p.DeliveredConfig(c.Name)
		if err != nil {
			return nil, err
		}
		img, err := p.ImageOf(c.Name)
		if err != nil {
			return nil, err
		}
		var why []string
		if !bytes.Equal(booted, c.Raw) {
			why = append(why, "config")
		}
		if st, err := os.Stat(filepath.Dir(img.Disk)); err != nil || !os.SameFile(st, newImage) {
			why = append(why, "image")
		}
		changes[c.Name] = strings.Join(why, " and ")
	}
	for _, m := range unfinished {
		if changes[m] == "" {
			changes[m] = "an interrupted run's step"
		}
	}
	return changes, nil
}
