package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/upgrade"
	"kubeup.dev/kubeup/internal/versions"
)

// upgradeOptions are the flags of kubeup upgrade.
type upgradeOptions struct {
	to, image      string
	manifest       string
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
		Use:   "upgrade --to VERSION [--image IMAGE] [--dry-run]",
		Short: "Move a running cluster to another Kubernetes release by replacing its machines",
		Long: `upgrade moves a running cluster to another Kubernetes release the immutable way: each
machine is replaced by a new one booted from the new release's image, its config rendered
again from the same secrets bundle, through the target's provider. It reads the cluster's
versions, checks the version-skew policy and the image, prints the plan, and with --dry-run
stops there. Otherwise:

  1. an etcd snapshot is saved to the host (as 'kubeup etcd snapshot save');
  2. the master is drained and gets a new root, keeping its etcd disk (QEMU: a new overlay;
     AWS: a new instance, same EBS volume and Elastic IP; vSphere: a new clone, the etcd disk
     moved over; bare metal: its new config, and its agent reboots it). If it is not Ready at the
     new release with phase 3 passing within --machine-timeout, it gets its old root back (and
     etcd's data from the snapshot, in its config, if the new release's API server answered)
     and the command fails naming the check;
  3. the nodes, --max-unavailable at a time: cordon, drain (PodDisruptionBudgets honoured),
     replace (AWS: through the Auto Scaling group's instance refresh), wait until Ready at the
     new release, uncordon. A node that does not come back stops the upgrade;
  4. the add-ons the new master applied run everywhere.

Kept: etcd's data, the bundle, machine names and addresses. Replaced: every root disk, with
what pods wrote there. Workloads stay available only with 2 or more replicas and a
PodDisruptionBudget. --to the running release replaces the machines whose config or image
changed, and names them (on AWS a node config change names every node of the group).

Progress is recorded in the bundle directory (upgrade.json): a re-run goes on from the first
step not done. Set kubernetesVersion in the config to VERSION first; --to must say the same.
Refused, with the reason and the fix: a release kubeup does not bring up, a downgrade, a
skipped minor, a kubelet newer than the API server or more than 3 minors older than the
target, an image of another release. See docs/upgrades.md.`,
		Example: `  kubeup upgrade --to v1.37.2 --dry-run
  kubeup upgrade --to v1.37.2
  kubeup upgrade --to v1.37.2 --image ~/.cache/kubeup/image/qemu-debian-v1.37.2
  kubeup upgrade --to v1.37.2 --config configs/aws.yaml --packer-manifest aws-debian.manifest.json`,
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
			}
			row, err := targets.Lookup(cfg.Target)
			if err != nil {
				return err
			}
			cs, err := w.client()
			if err != nil {
				return err
			}
			c, err := readCluster(cmd.Context(), cs, cfg)
			if err != nil {
				return err
			}
			// The image the machines move to, and the release it says it holds.
			if opt.image == "" && row.DefaultImage != nil {
				opt.image = row.DefaultImage(opt.to)
			}
			c.Image = opt.image
			if row.ImageRelease != nil {
				if c.ImageRelease, err = row.ImageRelease(opt.image); err != nil {
					return err
				}
			}
			if opt.to == c.APIServer {
				// The same release: a config change, or a new image of it.
				prog, err := upgrade.LoadProgress(filepath.Join(state, upgrade.ProgressFile), c.APIServer, opt.to)
				if err != nil {
					return cli.Usage(err)
				}
				if c.Changed, err = machineChanges(cmd.Context(), cfg, state, opt, prog.Unfinished(), c.Nodes()); err != nil {
					return err
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
	cmd.Flags().StringVar(&opt.image, "image", "", "the image the new machines boot: QEMU's image directory (default $KUBEUP_IMAGE, else the cache's image of --to), an AMI id (aws), a template (vsphere); default on aws and vsphere: --packer-manifest's, else the config's")
	cmd.Flags().StringVar(&opt.manifest, "packer-manifest", "", "aws, vsphere: a Packer manifest naming the image (the AMI or template of its last build)")
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

// targetOptions are the provider options of an upgrade's machines: at image ("" as they
// are), with the node token pool's current token in a group's node config.
func (opt upgradeOptions) targetOptions(cfg *cluster.Config, state string, out io.Writer, image string) targets.Options {
	o := (&cloudOptions{manifest: opt.manifest}).targetOptions(cfg, state, out)
	o.Image = image
	return o
}

// openProvider is the provider of cfg's target with options o; the caller closes it.
func openProvider(cfg *cluster.Config, o targets.Options) (provider.Provider, error) {
	row, err := targets.Lookup(cfg.Target)
	if err != nil {
		return nil, err
	}
	return row.New(cfg, o)
}

// renderFor renders machine name's config (or, with role, that role's) for cfg's cluster as
// provider p renders it now (its render options: the master's etcd disk).
func renderFor(ctx context.Context, p provider.Provider, cfg *cluster.Config, b *pki.Bundle, name, role string) (ignition.Config, error) {
	ro, err := p.RenderOptions(ctx)
	if err != nil {
		return ignition.Config{}, err
	}
	ro.Role = role
	configs, err := ignition.Configs(cfg, b, ro)
	if err != nil {
		return ignition.Config{}, err
	}
	i := slices.IndexFunc(configs, func(c ignition.Config) bool { return c.Name == name })
	if i < 0 {
		return ignition.Config{}, fmt.Errorf("no config for machine %s", name)
	}
	return configs[i], nil
}

// runUpgrade carries the plan out, resuming from the progress record.
func runUpgrade(ctx context.Context, out io.Writer, w *where, cfg *cluster.Config, state string, cs kubernetes.Interface, p upgrade.Plan, opt upgradeOptions) error {
	r, prog, err := newUpgradeRunner(ctx, out, w, cfg, state, cs, p, opt)
	if err != nil {
		return err
	}
	return r.Run(ctx, p, prog)
}

// newUpgradeRunner is the runner of plan p on cfg's target, with the progress record it goes
// on from: each machine replaced through the target's provider (AWS's nodes through their
// group), the master's rollback from the image and config it booted before.
func newUpgradeRunner(ctx context.Context, out io.Writer, w *where, cfg *cluster.Config, state string, cs kubernetes.Interface, p upgrade.Plan,
	opt upgradeOptions) (*upgrade.Runner, *upgrade.Progress, error) {
	progressPath := filepath.Join(state, upgrade.ProgressFile)
	prog, err := upgrade.LoadProgress(progressPath, p.From, p.To)
	if err != nil {
		return nil, nil, cli.Usage(err)
	}
	b, err := pki.Load(state, cfg)
	if err != nil {
		return nil, nil, err
	}
	row, err := targets.Lookup(cfg.Target)
	if err != nil {
		return nil, nil, err
	}
	master := cfg.Master().Name
	if prog.FromImage == "" && prog.MasterConfig == nil {
		// A new record: what the master boots now is what a rollback gives it back (where the
		// provider can tell; else its default image, and the config rendered at the old
		// release, which is the same bytes).
		now, err := openProvider(cfg, opt.targetOptions(cfg, state, out, ""))
		if err != nil {
			return nil, nil, err
		}
		if booted, ok := now.(provider.Booted); ok {
			if prog.FromImage, err = booted.BootedImage(ctx, master); err == nil {
				prog.MasterConfig, err = booted.BootedConfig(ctx, master)
			}
		}
		closeProvider(ctx, now)
		if err != nil {
			return nil, nil, err
		}
	}
	if err := prog.Save(progressPath); err != nil {
		return nil, nil, err
	}
	// The old release's config renders what the master ran before (its rollback).
	old := *cfg
	old.KubernetesVersion = prog.From
	// replace gives machine name a new root from image with its config rendered for c.
	replace := func(ctx context.Context, c *cluster.Config, image, name string) error {
		pr, err := openProvider(c, opt.targetOptions(c, state, out, image))
		if err != nil {
			return err
		}
		defer closeProvider(ctx, pr)
		config, err := renderFor(ctx, pr, c, b, name, "")
		if err != nil {
			return err
		}
		return pr.Replace(ctx, name, config)
	}
	restCfg, err := w.restConfig()
	if err != nil {
		return nil, nil, err
	}
	r := &upgrade.Runner{
		Client: cs,
		Snapshot: func(ctx context.Context) (string, error) {
			res, err := saveSnapshot(ctx, w, cfg, state, b, "", "", io.Discard)
			return res.Path, err
		},
		Replace: func(ctx context.Context, name string) error { return replace(ctx, cfg, opt.image, name) },
		Restore: func(ctx context.Context, name, snapshot string) error {
			pr, err := openProvider(&old, opt.targetOptions(&old, state, out, prog.FromImage))
			if err != nil {
				return err
			}
			defer closeProvider(ctx, pr)
			config := ignition.Config{Name: name, Role: cluster.RoleMaster, Raw: prog.MasterConfig}
			if prog.MasterConfig == nil {
				if config, err = renderFor(ctx, pr, &old, b, name, ""); err != nil {
					return err
				}
			}
			if snapshot != "" {
				// The snapshot goes in the master's config, which every target delivers: the
				// master restores it onto the etcd disk it keeps, before etcd starts.
				if config.Raw, err = withSnapshot(config.Raw, &old, snapshot); err != nil {
					return err
				}
			}
			return pr.Replace(ctx, name, config)
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
	if row.NodeGroup {
		// The nodes are the group's: the node role's config and the new image go into the
		// group, which replaces its members.
		r.RefreshNodes = func(ctx context.Context, held func(ctx context.Context, node string) error) error {
			pr, err := openProvider(cfg, opt.targetOptions(cfg, state, out, opt.image))
			if err != nil {
				return err
			}
			defer closeProvider(ctx, pr)
			group, ok := pr.(provider.GroupRefresher)
			if !ok {
				return fmt.Errorf("target %s: its provider cannot refresh a group of nodes", cfg.Target)
			}
			node, err := renderFor(ctx, pr, cfg, b, cluster.RoleNode, cluster.RoleNode)
			if err != nil {
				return err
			}
			return group.RefreshNodes(ctx, node, held)
		}
	}
	return r, prog, nil
}

// machineChanges says, for each machine, what differs between what it booted and what it
// would boot now: its config as rendered now from the config file and the bundle (rendering is
// byte-stable), and its image against opt.image. The machines named in unfinished (an
// interrupted upgrade's planned steps not done) count as changed: that run may have replaced
// one already, which then boots the new config, without finishing its step. nil when the
// target's provider cannot read back what a machine booted: then every machine is replaced.
// A group's nodes (AWS's), named in nodes as they registered, are compared with the node role's
// config.
func machineChanges(ctx context.Context, cfg *cluster.Config, state string, opt upgradeOptions, unfinished, nodes []string) (map[string]string, error) {
	b, err := pki.Load(state, cfg)
	if err != nil {
		return nil, err
	}
	// Only read here: as a dry run, a provider that looks the cluster up (AWS's Prepare) finds
	// what exists and makes nothing, also when the upgrade is not a dry run.
	o := opt.targetOptions(cfg, state, io.Discard, opt.image)
	o.DryRun = true
	p, err := openProvider(cfg, o)
	if err != nil {
		return nil, err
	}
	defer closeProvider(ctx, p)
	booted, ok := p.(provider.Booted)
	if !ok {
		return nil, nil
	}
	// What a machine booted, as a SHA-256: of the config read back, or as the provider kept it.
	bootedSum := func(name string) (string, error) {
		was, err := booted.BootedConfig(ctx, name)
		if err != nil || was != nil {
			return sha256Hex(was), err
		}
		if sums, ok := p.(provider.ConfigSums); ok {
			return sums.BootedConfigSum(ctx, name)
		}
		return "", nil
	}
	// Asked first: a provider that cannot tell is not asked for more (its render options may
	// mean finding the cluster in an account, during a dry run too).
	if was, err := bootedSum(cfg.Master().Name); err != nil || was == "" {
		return nil, err
	}
	ro, err := p.RenderOptions(ctx)
	if err != nil {
		return nil, err
	}
	configs, err := ignition.Configs(cfg, b, ro)
	if err != nil {
		return nil, err
	}
	type machine struct {
		name string
		raw  []byte
	}
	_, group := p.(provider.GroupRefresher)
	var machines []machine
	for _, c := range configs {
		if !group || c.Role == cluster.RoleMaster {
			machines = append(machines, machine{c.Name, c.Raw})
		}
	}
	if group {
		node, err := renderFor(ctx, p, cfg, b, cluster.RoleNode, cluster.RoleNode)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			machines = append(machines, machine{n, node.Raw})
		}
	}
	changes := map[string]string{}
	for _, m := range machines {
		was, err := bootedSum(m.name)
		if err != nil {
			return nil, err
		}
		if was == "" {
			return nil, nil
		}
		img, err := booted.BootedImage(ctx, m.name)
		if err != nil {
			return nil, err
		}
		var why []string
		if was != sha256Hex(m.raw) {
			why = append(why, "config")
		}
		if opt.image != "" && !sameImage(img, opt.image) {
			why = append(why, "image")
		}
		changes[m.name] = strings.Join(why, " and ")
	}
	for _, m := range unfinished {
		if changes[m] == "" {
			changes[m] = "an interrupted run's step"
		}
	}
	return changes, nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// sameImage says whether two names of an image are the same image: the same file or directory
// where both are paths (QEMU's image directories), else the same name.
func sameImage(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return a == b
}

// withSnapshot is the master's config raw with the etcd snapshot at path in it, restored before
// etcd starts (ignition.WithEtcdRestore). The snapshot is checked first: a damaged one would
// leave the master without etcd.
func withSnapshot(raw []byte, cfg *cluster.Config, path string) ([]byte, error) {
	if err := etcdsnapshot.Check(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ignition.WithEtcdRestore(raw, cfg, data)
}
