package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/upgrade"
	"kubeup.dev/kubeup/internal/versions"
)

func newUpgradeCmd() *cobra.Command {
	var w where
	var o cli.Output
	var to, imageDir string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "upgrade --to VERSION --dry-run",
		Short: "Plan moving a running cluster to another Kubernetes release (planning only, for now)",
		Long: `upgrade reads the running cluster (the API server's version and every kubelet's), checks the
Kubernetes version-skew policy and the image, and prints the plan: an etcd snapshot, the master
replaced with its etcd disk kept, then the nodes one at a time (cordon, drain, replace, Ready,
uncordon), then the add-ons.

Only the plan is built: --dry-run is required, and nothing is changed. Carrying the plan out is
not built yet (docs/upgrades.md says what exists).

Refused, with the reason and the fix: a release this kubeup does not bring up, a downgrade,
skipping a minor release, a kubelet newer than the API server or more than 3 minor releases
older than the target, and (QEMU) an image built for another release.`,
		Example: `  kubeup upgrade --to v1.37.2 --dry-run
  kubeup upgrade --to v1.37.2 --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			if to == "" {
				return cli.Usagef("--to: name the release to move to (one of %v)", versions.Supported)
			}
			if !dryRun {
				return cli.Usagef("kubeup upgrade only plans in this release: add --dry-run (replacing the machines is not built yet; docs/upgrades.md)")
			}
			cfg, _, err := w.load()
			if err != nil {
				return err
			}
			cs, err := w.client()
			if err != nil {
				return err
			}
			c := upgrade.Cluster{Name: cfg.Name, Master: cfg.Master().Name, Kubelets: map[string]string{}}
			info, err := cs.Discovery().ServerVersion()
			if err != nil {
				return cli.Unreachable(fmt.Errorf("the API server's version: %w", err))
			}
			c.APIServer = info.GitVersion
			nodes, err := cs.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return cli.Unreachable(fmt.Errorf("list the nodes: %w", err))
			}
			for _, n := range nodes.Items {
				c.Kubelets[n.Name] = n.Status.NodeInfo.KubeletVersion
			}
			if cfg.Target == cluster.TargetQEMU {
				if imageDir == "" {
					imageDir = defaultImageDir(to)
				}
				img, err := qemu.ImageIn(imageDir)
				if err != nil {
					return err
				}
				c.Image, c.ImageRelease = imageDir, img.Kubernetes
			}
			p, err := upgrade.MakePlan(c, to)
			if err != nil {
				return err
			}
			return o.Print(cmd.OutOrStdout(), p, func(out io.Writer) error {
				if err := p.Print(out); err != nil {
					return err
				}
				_, err := fmt.Fprintln(out, "dry run: nothing was changed")
				return err
			})
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "the Kubernetes release to move to")
	cmd.Flags().StringVar(&imageDir, "image", "", "QEMU: the image directory the machines would boot (default $KUBEUP_IMAGE, else the cache's image of --to)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing (required: only planning is built)")
	return cmd
}
