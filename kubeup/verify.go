package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/verify"
)

func newVerifyCmd() *cobra.Command {
	var phase string
	var o cli.Output
	var nodes []string
	var timeout time.Duration
	var w where
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the exit criteria of the bring-up phases against a cluster",
		Long: `verify runs the exit criteria of kubeup's bring-up phases as client-go checks and prints
PASS or FAIL for each, with the evidence it saw and, on FAIL, a hint. It exits 1 if any check
fails, 3 if the API server does not answer. The phases:
  3    the master: API serves pods, controller-manager, scheduler, leader leases
  4.1  every expected node registered: --nodes, or else the machines of --config (for a QEMU
       cluster, the ones 'kubeup up' started); any one node if neither is there
  4.2  every node Ready; a pod on every node, addressed from its pod CIDR, reachable from a pod
       on every node and from every node
  5    a ClusterIP Service answers from every node (kube-proxy)
  6    Service names resolve in pods (CoreDNS); metrics.k8s.io has every node (metrics-server)
Each run works in a namespace of its own (kubeup-verify-...), deleted afterwards; the network
checks run kubeup-probe, an image of the offline bundle, in it.`,
		Example: `  kubeup verify --phase 3
  kubeup verify --config configs/aws.yaml -o json
  kubeup verify --kubeconfig admin.conf --nodes node-1,node-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			if phase != "all" && !slices.Contains(verify.Phases, phase) {
				return cli.Usagef("unknown phase %q: use %s or all", phase, strings.Join(verify.Phases, ", "))
			}
			restCfg, err := w.restConfig()
			if err != nil {
				return err
			}
			if err := reachable(restCfg); err != nil {
				return err
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
			return report(cmd, k.Run(ctx, phase), o)
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	cmd.Flags().StringVar(&phase, "phase", "all", "phase to check: "+strings.Join(verify.Phases, ", ")+" or all")
	cmd.RegisterFlagCompletionFunc("phase", cobra.FixedCompletions(append(slices.Clone(verify.Phases), "all"), cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().StringSliceVar(&nodes, "nodes", nil, "node names phase 4.1 expects (default: the machines of --config)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long a check waits for the cluster to act")
	return cmd
}

// expectedNodes are the nodes phase 4.1 waits for: the machines the config lists, or for a QEMU or AWS
// cluster the ones 'kubeup up' started (--num-nodes; AWS's group). Without a config
// file (and none named) phase 4.1 takes any node.
func expectedNodes(w where, named bool) ([]string, error) {
	if !named && w.noConfig() {
		return nil, nil
	}
	cfg, state, err := w.load()
	if err != nil {
		return nil, err
	}
	if p, err := targetProvider(cfg, state, nil, cloudOptions{}); err == nil {
		defer closeProvider(context.Background(), p)
		if ms, err := p.Machines(context.Background()); err == nil {
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

func report(cmd *cobra.Command, results []verify.Result, o cli.Output) error {
	failed := countFailed(results)
	if results == nil {
		results = []verify.Result{}
	}
	err := o.Print(cmd.OutOrStdout(), results, func(w io.Writer) error {
		for _, r := range results {
			fmt.Fprintln(w, r.String())
		}
		_, err := fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
		return err
	})
	if err != nil {
		return err
	}
	return failedChecks(results)
}

// failedChecks is the error of a run with failed checks (exit 1), or nil.
func failedChecks(results []verify.Result) error {
	if failed := countFailed(results); failed > 0 {
		return cli.Failed(fmt.Errorf("%d of %d checks failed", failed, len(results)))
	}
	return nil
}

func countFailed(results []verify.Result) int {
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	return failed
}
