package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/verify"
)

func newEtcdSnapshotRestoreCmd() *cobra.Command {
	var w where
	var imageDir string
	var overwrite bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Bring the master back from the secrets bundle and a snapshot, when its disks are lost",
		Long: `restore brings the cluster's master back from the secrets bundle and FILE, a snapshot saved
by 'kubeup etcd snapshot save', for when the master's disks (its root and its etcd disk) are
lost:

  1. FILE's integrity is checked, and an etcd data directory is made from it on this host for
     the master's etcd member. Its revision is moved 1,000,000,000 past the snapshot's, the
     older ones marked compacted, so that the cluster's clients list again rather than wait on
     revisions that were lost;
  2. the master's power is cut; it gets a new etcd disk holding that data, and a new root from
     its image (or --image) with its config rendered again from the bundle;
  3. restore waits until the master's kubelet reports again, Ready, with phase 3 passing, and
     then until every node's kubelet reports again. The nodes are not re-made: they keep
     running and reconnect with the certificates they have.

Everything written to the cluster after the snapshot is lost. If the master's etcd disk still
exists, restore refuses, unless --overwrite says to replace the cluster's current data with the
snapshot's. A lost etcd disk is made again only where the provider makes one from this host
(qemu, in this release); elsewhere --overwrite puts a running master's data back: FILE goes in
its config, and it restores FILE onto the etcd disk it keeps before etcd starts. See
docs/recovery.md.`,
		Example: `  kubeup etcd snapshot restore .kubeup/local/snapshots/local-20261206T101500Z.db
  kubeup etcd snapshot restore before-upgrade.db --overwrite`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			// --image, or else the image the master booted (restoreMaster checks its release).
			p, err := openProvider(cfg, targets.Options{State: state, Out: cmd.OutOrStdout(), Image: imageDir})
			if err != nil {
				return err
			}
			defer closeProvider(ctx, p)
			// A provider that cannot make an etcd disk from the host (er nil) keeps the one the
			// master has, and the snapshot goes in the master's config: --overwrite only.
			er, _ := p.(provider.EtcdRestorer)
			if er == nil && !overwrite {
				return cli.Usagef("target %s: kubeup cannot make a master's etcd disk there (qemu can, in this release), so a master whose disks are lost cannot be brought back yet; to put a running master's etcd data back to the snapshot's, pass --overwrite (docs/recovery.md)", cfg.Target)
			}
			if err := etcdsnapshot.Check(args[0]); err != nil {
				return cli.Usage(err)
			}
			return restoreMaster(ctx, cmd.OutOrStdout(), &w, cfg, state, p, er, args[0], restoreOptions{imageDir: imageDir, overwrite: overwrite, timeout: timeout})
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	cmd.Flags().StringVar(&imageDir, "image", "", "the image the master boots (QEMU: an image directory; default: the one it booted before)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace the master's etcd data even though its etcd disk still exists (what was written after the snapshot is lost)")
	cmd.Flags().DurationVar(&timeout, "timeout", 20*time.Minute, "how long the master, and then the nodes, have to report again")
	return cmd
}

// restoreOptions are the flags of kubeup etcd snapshot restore.
type restoreOptions struct {
	imageDir  string
	overwrite bool
	timeout   time.Duration
}

// restoreMaster carries out kubeup etcd snapshot restore through the target's provider p, which
// makes the master's etcd disk as er (p itself), or, where er is nil, keeps the master's etcd
// disk while the master restores the snapshot from its config onto it.
func restoreMaster(ctx context.Context, out io.Writer, w *where, cfg *cluster.Config, state string, p provider.Provider, er provider.EtcdRestorer,
	snapshot string, opt restoreOptions) error {
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(out, "[%6s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, a...))
	}
	master := cfg.Master()
	row, err := targets.Lookup(cfg.Target)
	if err != nil {
		return err
	}
	has := true // where er is nil the master keeps its etcd disk, and only --overwrite gets here
	if er != nil {
		if has, err = er.HasEtcdData(master.Name); err != nil {
			return err
		}
	}
	if has && !opt.overwrite {
		return cli.Usagef("%s still has its etcd disk: restoring %s would replace the cluster's current data, and everything written after the snapshot would be lost (fix: pass --overwrite if that is what you want)", master.Name, snapshot)
	}
	if booted, ok := p.(provider.Booted); ok && opt.imageDir == "" && row.ImageRelease != nil {
		image, err := booted.BootedImage(ctx, master.Name)
		if err != nil {
			return err
		}
		holds, err := row.ImageRelease(image)
		if err != nil {
			return err
		}
		if holds != "" && holds != cfg.KubernetesVersion {
			return cli.Usagef("%s booted an image of %s and %s says kubernetesVersion %s (fix: pass --image with an image of %s, or set the config back to %s)",
				master.Name, holds, w.config, cfg.KubernetesVersion, cfg.KubernetesVersion, holds)
		}
	}
	b, err := pki.Load(state, cfg)
	if err != nil {
		return err
	}
	config, err := renderFor(ctx, p, cfg, b, master.Name, "")
	if err != nil {
		return err
	}

	if er != nil {
		if err := restoreEtcdFrom(ctx, er, master, state, snapshot, config); err != nil {
			return err
		}
		say("%s booting with a new root and an etcd disk made from %s", master.Name, snapshot)
	} else {
		if config.Raw, err = withSnapshot(config.Raw, cfg, snapshot); err != nil {
			return err
		}
		if err := p.Replace(ctx, master.Name, config); err != nil {
			return err
		}
		say("%s booting with a new root and %s in its config, restored onto its etcd disk before etcd starts", master.Name, snapshot)
	}

	restCfg, err := w.restConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := reportsAgain(ctx, cs, master.Name, opt.timeout); err != nil {
		hint := ""
		if l, ok := p.(interface{ Logs() string }); ok {
			hint = " (" + l.Logs() + ")"
		}
		return cli.Failed(fmt.Errorf("%s: %w%s", master.Name, err, hint))
	}
	say("%s Ready, its kubelet reporting again", master.Name)
	// Right after a restore every client lists again (the revision moved past theirs), and under
	// emulation the API server can take longer than one request's timeout: phase 3 is asked
	// until it passes or the timeout ends.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 10*time.Second, opt.timeout, true, func(ctx context.Context) (bool, error) {
		last = checkPhase3(ctx, restCfg, 2*time.Minute)
		return last == nil, nil
	})
	if err != nil {
		return cli.Failed(fmt.Errorf("%s: within %v: %w", master.Name, opt.timeout, last))
	}
	say("phase 3 passes")
	for _, m := range cfg.Machines {
		if m.Role == cluster.RoleMaster {
			continue
		}
		if err := reportsAgain(ctx, cs, m.Name, opt.timeout); err != nil {
			return cli.Failed(fmt.Errorf("node %s: %w", m.Name, err))
		}
		say("%s Ready, its kubelet reporting again", m.Name)
	}
	say("restored: the cluster holds what it held at the snapshot")
	return nil
}

// reportsAgain waits until node name is Ready and its kubelet has renewed its Lease since the
// first time it is seen here: the Node and Lease read first may be the snapshot's copies, whose
// status says nothing about the machine now. Renewals, not clocks: the guests' and this host's
// clocks need not agree.
func reportsAgain(ctx context.Context, cs kubernetes.Interface, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var first *metav1.MicroTime
	seen := "the API server does not answer"
	err := wait.PollUntilContextCancel(ctx, 3*time.Second, true, func(ctx context.Context) (bool, error) {
		lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			seen = err.Error()
			return false, nil
		}
		renewed := renewTime(lease)
		if first == nil {
			first = &renewed
		}
		if renewed.Equal(first) {
			seen = "its Lease not renewed since " + first.UTC().Format(time.RFC3339)
			return false, nil
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			seen = err.Error()
			return false, nil
		}
		if !verify.NodeReady(n) {
			seen = "not Ready"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("does not report again within %v (last seen: %s)", timeout, seen)
	}
	return nil
}

func renewTime(l *coordinationv1.Lease) metav1.MicroTime {
	if l.Spec.RenewTime == nil {
		return metav1.MicroTime{}
	}
	return *l.Spec.RenewTime
}

// checkPhase3 runs verify's phase 3 (the control plane) once, with timeout for each check.
func checkPhase3(ctx context.Context, restCfg *rest.Config, timeout time.Duration) error {
	k, err := verify.New(restCfg, verify.Options{Timeout: timeout})
	if err != nil {
		return err
	}
	var failed []string
	for _, res := range k.Run(ctx, "3") {
		if !res.Pass {
			failed = append(failed, res.String())
		}
	}
	if len(failed) > 0 {
		return errors.New("phase 3 failed: " + strings.Join(failed, "; "))
	}
	return nil
}

// restoreEtcdFrom gives master a new etcd disk made from snapshot (etcd's own restore, for its
// member and peer URL) and a new root booting config.
func restoreEtcdFrom(ctx context.Context, p provider.EtcdRestorer, master *cluster.Machine, state, snapshot string, config ignition.Config) error {
	// The data directory holds the cluster's objects (Secrets encrypted): it lives beside the
	// bundle, 0700, only until it is on the disk.
	tmp, err := os.MkdirTemp(state, "restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dataDir := filepath.Join(tmp, "etcd")
	member := etcdsnapshot.Member{Name: master.Name, PeerURL: manifests.EtcdPeerURL(master.IP().String())}
	if err := etcdsnapshot.Restore(snapshot, dataDir, member); err != nil {
		return err
	}
	return p.RestoreEtcd(ctx, master.Name, dataDir, config)
}
