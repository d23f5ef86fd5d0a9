package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/pki"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "The cluster's certificates: their expiry on every machine, renewal in the bundle, CA rotation",
	}
	cmd.AddCommand(newCertsStatusCmd(), newCertsRenewCmd(), newRotateCACmd())
	return cmd
}

// timeNow is the clock; a variable so a test can move it.
var timeNow = time.Now

func newCertsRenewCmd() *cobra.Command {
	var w where
	cmd := &cobra.Command{
		Use:   "renew NAME",
		Short: "Re-issue one certificate or kubeconfig of the secrets bundle from the current config, keeping its key",
		Long: `renew re-issues the named leaf certificate (apiserver, etcd/server, ...) or kubeconfig
(admin.conf, ...) of the bundle from the current cluster config, with the same private key, or
mints a new bootstrap token (bootstrap-token). The old file is kept beside the new one as
<file>.<time>.old. Render the configs again afterwards (ignition-gen) and deliver the master's.
The master's agent renews the master's own copies by itself; this is for the bundle, and for a
config change such as a new API server name.`,
		Example: `  kubeup certs renew apiserver --config configs/aws.yaml`,
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			cfg, _, err := w.load()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return pki.RenewableNames(cfg), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			if !slices.Contains(pki.RenewableNames(cfg), args[0]) {
				return cli.Usagef("no certificate %q: one of %s", args[0], strings.Join(pki.RenewableNames(cfg), ", "))
			}
			backup, err := pki.Renew(state, cfg, args[0], timeNow())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renewed %s in %s (previous version kept as %s)\n", args[0], state, backup)
			return nil
		},
	}
	w.register(cmd)
	return cmd
}

func newCertsStatusCmd() *cobra.Command {
	var w where
	var o cli.Output
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List every certificate of every machine with its expiry, from the host (no SSH)",
		Long: `status reads what each machine's kubeup-agent publishes on its Node (annotation
` + agent.CertificatesAnnotation + `): on the master every leaf certificate and kubeconfig, which the agent
renews when a third of its lifetime is left; on every machine the kubelet's client and serving
certificates, which the kubelet rotates. A machine whose agent has not reported is listed as such.
Certificates with less than 30 days left are marked; the agents also raise Warning Events then.
It exits 1 if a certificate has expired.`,
		Example: `  kubeup certs status
  kubeup certs status --config configs/aws.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			c, err := w.client()
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
			doc, err := certsReport(reports, time.Now())
			if err != nil {
				return err
			}
			if err := o.Print(cmd.OutOrStdout(), doc, doc.print); err != nil {
				return err
			}
			if doc.Expired > 0 {
				return cli.Failed(fmt.Errorf("%d certificates have expired", doc.Expired))
			}
			return nil
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	return cmd
}

// certsStatus is `kubeup certs status -o json|yaml`: field names scripts rely on.
type certsStatus struct {
	Machines []machineCerts `json:"machines"`
	// Expired counts the expired certificates of every machine.
	Expired int `json:"expired"`
}

type machineCerts struct {
	Machine string `json:"machine"`
	// Reported is false while the machine's agent has not published its certificates.
	Reported     bool         `json:"reported"`
	Certificates []certStatus `json:"certificates"`
}

type certStatus struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"notAfter"`
	// SecondsLeft is 0 once it has expired.
	SecondsLeft int64  `json:"secondsLeft"`
	Issuer      string `json:"issuer,omitempty"`
	// Note is "expired", "under 7 days" or "under 30 days", or empty.
	Note string `json:"note,omitempty"`
}

// certsReport reads every machine's report: machines in name order, certificates by expiry. A
// damaged report is an error naming the machine.
func certsReport(reports map[string]string, now time.Time) (certsStatus, error) {
	doc := certsStatus{Machines: []machineCerts{}}
	var problems []string
	for _, m := range slices.Sorted(maps.Keys(reports)) {
		mc := machineCerts{Machine: m, Certificates: []certStatus{}}
		if reports[m] != "" {
			var list []agent.Expiry
			if err := json.Unmarshal([]byte(reports[m]), &list); err != nil {
				problems = append(problems, fmt.Sprintf("%s: annotation %s: %v", m, agent.CertificatesAnnotation, err))
				continue
			}
			mc.Reported = true
			slices.SortFunc(list, func(a, b agent.Expiry) int { return a.NotAfter.Compare(b.NotAfter) })
			for _, e := range list {
				left := max(e.NotAfter.Sub(now), 0)
				c := certStatus{Name: e.Name, NotAfter: e.NotAfter.UTC(), SecondsLeft: int64(left.Seconds()), Issuer: e.Issuer}
				switch {
				case left <= 0:
					c.Note = "expired"
					doc.Expired++
				case left < 7*24*time.Hour:
					c.Note = "under 7 days"
				case left < 30*24*time.Hour:
					c.Note = "under 30 days"
				}
				mc.Certificates = append(mc.Certificates, c)
			}
		}
		doc.Machines = append(doc.Machines, mc)
	}
	if len(problems) > 0 {
		return doc, fmt.Errorf("unreadable reports:\n  %s", strings.Join(problems, "\n  "))
	}
	return doc, nil
}

// print is the table: one line per certificate.
func (doc certsStatus) print(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tCERTIFICATE\tEXPIRES (UTC)\tLEFT\tNOTE")
	for _, m := range doc.Machines {
		if !m.Reported {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno report: its kubeup-agent has not published yet, or is not running\n", m.Machine)
			continue
		}
		for _, c := range m.Certificates {
			note := c.Note
			if note == "expired" {
				note = "EXPIRED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Machine, c.Name, c.NotAfter.Format("2006-01-02 15:04"), leftString(time.Duration(c.SecondsLeft)*time.Second), note)
		}
	}
	return tw.Flush()
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
