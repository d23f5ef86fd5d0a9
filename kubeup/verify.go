package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/verify"
)

func newVerifyCmd() *cobra.Command {
	var kubeconfig, phase, output string
	var nodes []string
	var timeout time.Duration
	var w where
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the exit criteria of the bring-up phases against a cluster",
		Long: `verify runs the exit criteria of kubeup's bring-up phases as client-go checks and prints
PASS or FAIL for each, with the evidence it saw and, on FAIL, a hint. It exits 1 if any check
fails. The phases:
  3    the master: API serves pods, controller-manager, scheduler, leader leases
  4.1  every expected node registered: --nodes, or else the machines of --config (for a QEMU
       cluster, the ones 'kubeup up' started); any one node if neither is there
  4.2  every node Ready; a pod on every node, addressed from its pod CIDR, reachable from a pod
       on every node and from every node
  5    a ClusterIP Service answers from every node (kube-proxy)
  6    Service names resolve in pods (CoreDNS); metrics.k8s.io has every node (metrics-server)
Each run works in a namespace of its own (kubeup-verify-...), deleted afterwards; the network
checks run kubeup-probe, an image of the offline bundle, in it.`,
		Example: `  kubeup verify --kubeconfig .kubeup/local/admin.conf --phase 3
  kubeup verify --kubeconfig admin.conf --phase all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %s: use text or json", output)
			}
			restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("load kubeconfig: %w", err)
			}
			if phase != "all" && !slices.Contains(verify.Phases, phase) {
				return fmt.Errorf("unknown phase %q: use %s or all", phase, strings.Join(verify.Phases, ", "))
			}
			if !cmd.Flags().Changed("nodes") {
				if nodes, err = expectedNodes(w, cmd.Flags().Changed("config")); err != nil {
					return err
				}
			}
			k, err := verify.New(restCfg, verify.Options{Timeout: timeout, Nodes: nodes})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return report(cmd, k.Run(ctx, phase), output)
		},
	}
	w.register(cmd)
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "admin kubeconfig of the cluster")
	cmd.Flags().StringVar(&phase, "phase", "all", "phase to check: 3, 4.1, 4.2, 5, 6 or all")
	cmd.Flags().StringSliceVar(&nodes, "nodes", nil, "node names phase 4.1 expects (default: the machines of --config)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long a check waits for the cluster to act")
	return cmd
}

// expectedNodes are the nodes phase 4.1 waits for: the machines the config lists, or for a QEMU
// cluster the ones 'kubeup up' started (--num-nodes may have left some out). Without a config
// file (and none named) phase 4.1 takes any node.
func expectedNodes(w where, named bool) ([]string, error) {
	if _, err := os.Stat(w.config); !named && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	cfg, state, err := w.load()
	if err != nil {
		return nil, err
	}
	if cfg.Target == cluster.TargetQEMU {
		if ms, err := qemuProvider(cfg, state, nil).Machines(context.Background()); err == nil {
			var names []string
			for _, m := range ms {
				names = append(names, m.Name)
			}
			return names, nil
		}
	}
	var names []string
	for _, m := range cfg.Machines {
		names = append(names, m.Name)
	}
	return names, nil
}

func report(cmd *cobra.Command, results []verify.Result, output string) error {
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	w := cmd.OutOrStdout()
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			fmt.Fprintln(w, r.String())
		}
		fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(results))
	}
	return nil
}
