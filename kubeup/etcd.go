package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/pki"
)

func newEtcdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "The cluster's etcd: snapshots saved to the host, and restored",
	}
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "Save consistent snapshots of etcd, and bring the master back from one",
	}
	snap.AddCommand(newEtcdSnapshotSaveCmd(), newEtcdSnapshotRestoreCmd())
	cmd.AddCommand(snap)
	return cmd
}

// snapshotsDir is where snapshots go by default: beside the secrets bundle, which a restore
// needs as well.
func snapshotsDir(state string) string { return filepath.Join(state, "snapshots") }

func newEtcdSnapshotSaveCmd() *cobra.Command {
	var w where
	var o cli.Output
	var endpoint string
	cmd := &cobra.Command{
		Use:   "save [FILE]",
		Short: "Write a consistent snapshot of the cluster's etcd to a file on this host",
		Long: `save streams a point-in-time snapshot of etcd into FILE (default: the bundle directory's
snapshots/<cluster>-<UTC time>.db) and prints its revision, size and SHA-256.

No SSH: the host reaches etcd through the API server, with a port-forward to the etcd static
pod on the master (as 'kubectl port-forward' does, with the admin kubeconfig), and talks to it
with the bundle's etcd healthcheck-client certificate. --endpoint reaches an etcd directly
instead (host:port), with the same certificate.

The file is written like a secret, because it holds every Secret of the cluster: mode 0600,
never over an existing file, and only once it is whole; its integrity (the SHA-256 etcd appends)
is checked before save says it is done. Keep it with the secrets bundle: 'kubeup etcd snapshot
restore' needs both.`,
		Example: `  kubeup etcd snapshot save
  kubeup etcd snapshot save /backup/before-upgrade.db -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			b, err := pki.Load(state, cfg)
			if err != nil {
				return err
			}
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			errOut := cmd.ErrOrStderr()
			if o.Structured() {
				errOut = io.Discard
			}
			res, err := saveSnapshot(ctx, &w, cfg, state, b, path, endpoint, errOut)
			if err != nil {
				return err
			}
			return o.Print(cmd.OutOrStdout(), res, func(out io.Writer) error {
				_, err := fmt.Fprintf(out, "saved %s: revision %d, %d bytes, sha256 %s (etcd %s)\n", res.Path, res.Revision, res.Size, res.SHA256, res.EtcdVersion)
				return err
			})
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "reach etcd directly at host:port instead of through the API server")
	return cmd
}

// saveSnapshot saves a snapshot of the cluster's etcd into path (default: a new file in the
// bundle directory's snapshots), through the API server unless endpoint names etcd itself;
// what it does on the way goes to progress.
func saveSnapshot(ctx context.Context, w *where, cfg *cluster.Config, state string, b *pki.Bundle, path, endpoint string, progress io.Writer) (etcdsnapshot.Result, error) {
	tlsCfg, err := etcdsnapshot.ClientTLS(b)
	if err != nil {
		return etcdsnapshot.Result{}, err
	}
	if path == "" {
		dir := snapshotsDir(state)
		if err := fsutil.MkdirAll(dir, 0o700); err != nil {
			return etcdsnapshot.Result{}, err
		}
		path = filepath.Join(dir, cfg.Name+"-"+timeNow().UTC().Format("20060102T150405Z")+".db")
	}
	if err := etcdsnapshot.Unused(path); err != nil {
		return etcdsnapshot.Result{}, cli.Usage(err)
	}
	if endpoint == "" {
		restCfg, err := w.restConfig()
		if err != nil {
			return etcdsnapshot.Result{}, err
		}
		var pod string
		if endpoint, pod, err = etcdsnapshot.Forward(ctx, restCfg, progress); err != nil {
			return etcdsnapshot.Result{}, cli.Unreachable(err)
		}
		fmt.Fprintf(progress, "forwarding %s to kube-system/%s port %d\n", endpoint, pod, etcdsnapshot.EtcdPort)
	}
	return etcdsnapshot.Save(ctx, endpoint, tlsCfg, path)
}
