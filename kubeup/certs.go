package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/agent"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "The cluster's certificates, as every machine's agent reports them",
	}
	cmd.AddCommand(newCertsStatusCmd())
	return cmd
}

func newCertsStatusCmd() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List every certificate of every machine with its expiry, from the host (no SSH)",
		Long: `status reads what each machine's kubeup-agent publishes on its Node (annotation
` + agent.CertificatesAnnotation + `): on the master every leaf certificate and kubeconfig, which the agent
renews when a third of its lifetime is left; on every machine the kubelet's client and serving
certificates, which the kubelet rotates. A machine whose agent has not reported is listed as such.
Certificates with less than 30 days left are marked; the agents also raise Warning Events then.`,
		Example: `  kubeup certs status --kubeconfig .kubeup/local/qemu/admin.conf`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := kubeconfigClient(kubeconfig)
			if err != nil {
				return err
			}
			nodes, err := c.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list the nodes: %w", err)
			}
			reports := map[string]string{}
			for _, n := range nodes.Items {
				reports[n.Name] = n.Annotations[agent.CertificatesAnnotation]
			}
			return printCerts(cmd.OutOrStdout(), reports, time.Now())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "admin kubeconfig of the cluster (kubeup up prints it)")
	cmd.MarkFlagRequired("kubeconfig")
	return cmd
}

// printCerts prints one line per certificate, machines in name order, certificates by expiry.
func printCerts(out io.Writer, reports map[string]string, now time.Time) error {
	machines := make([]string, 0, len(reports))
	for m := range reports {
		machines = append(machines, m)
	}
	slices.Sort(machines)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tCERTIFICATE\tEXPIRES (UTC)\tLEFT\tNOTE")
	var problems []string
	for _, m := range machines {
		if reports[m] == "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno report: its kubeup-agent has not published yet, or is not running\n", m)
			continue
		}
		var list []agent.Expiry
		if err := json.Unmarshal([]byte(reports[m]), &list); err != nil {
			problems = append(problems, fmt.Sprintf("%s: annotation %s: %v", m, agent.CertificatesAnnotation, err))
			continue
		}
		slices.SortFunc(list, func(a, b agent.Expiry) int { return a.NotAfter.Compare(b.NotAfter) })
		for _, e := range list {
			left := e.NotAfter.Sub(now)
			mark := ""
			switch {
			case left <= 0:
				mark = "EXPIRED"
			case left < 7*24*time.Hour:
				mark = "under 7 days"
			case left < 30*24*time.Hour:
				mark = "under 30 days"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m, e.Name, e.NotAfter.UTC().Format("2006-01-02 15:04"), leftString(left), mark)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("unreadable reports:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func leftString(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
