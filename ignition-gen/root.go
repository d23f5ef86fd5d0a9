package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/renewal"
)

// flags shared by the commands.
type common struct {
	config string
	state  string
}

func (c *common) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.config, "config", "c", "configs/local.yaml", "cluster config file")
	cmd.Flags().StringVar(&c.state, "state", "", "secrets bundle directory (default .kubeup/<cluster name>)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("state")
}

func (c *common) load() (*cluster.Config, string, error) {
	cfg, err := cluster.Load(c.config)
	if err != nil {
		return nil, "", cli.Usage(err)
	}
	state := c.state
	if state == "" {
		state = cfg.StateDir()
	}
	return cfg, state, nil
}

func newRootCmd() *cobra.Command {
	var c common
	var out, role, keyAlg string
	cmd := &cobra.Command{
		Use:   "ignition-gen",
		Short: "Render Ignition configs for a kubeup cluster",
		Long: `ignition-gen reads a cluster config, creates its secrets bundle on the first run
(CAs, kubeadm-compatible certificates and kubeconfigs, service-account keys, bootstrap token,
encryption key, audit policy; files 0600, never overwritten), and writes one Ignition spec 3.4.0
config per machine to --out, or with --role one config for a role's anonymous machines.

A re-run reuses the bundle, checks it against the config, and rewrites no unchanged file. A
config that no longer matches a certificate is an error naming the certificate and the
'kubeup certs renew' command that re-issues it.`,
		Example: `  ignition-gen --config configs/local.yaml --out out
  ignition-gen --config configs/aws.yaml --role node --out out
  ignition-gen validate --config configs/metal.yaml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var alg pki.KeyAlgorithm
			if keyAlg != "" {
				var err error
				if alg, err = pki.ParseKeyAlgorithm(keyAlg); err != nil {
					return err
				}
			}
			cfg, state, err := c.load()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			created := 0
			b, err := pki.Ensure(state, cfg, pki.Options{KeyAlgorithm: alg, ConfigPath: c.config, Progress: func(rel string) {
				if created == 0 {
					fmt.Fprintf(w, "creating secrets bundle in %s\n", state)
				}
				created++
				fmt.Fprintf(w, "  created %s\n", rel)
			}})
			if err != nil {
				return err
			}
			if created == 0 {
				fmt.Fprintf(w, "using secrets bundle %s (%s keys)\n", state, b.Meta.KeyAlgorithm)
				staleNotes(w, state, c.config)
			}
			cs, err := ignition.Configs(cfg, b, ignition.Options{Role: role})
			if se := (*ignition.SnippetError)(nil); errors.As(err, &se) {
				return cli.Usage(fmt.Errorf("%s: %w", c.config, err))
			} else if err != nil {
				return err
			}
			// How each config reaches its machine is the target's rule; a config that cannot
			// reach it at all is an error before anything is written.
			chans, err := channels(cfg, cs)
			if err != nil {
				return cli.Usage(fmt.Errorf("%s: %w", c.config, err))
			}
			outs, err := ignition.Write(out, cs)
			if err != nil {
				return err
			}
			pointers, err := writePointers(out, outs, chans)
			if err != nil {
				return err
			}
			printTable(w, cfg, outs, chans, pointers)
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "out", "directory for the Ignition configs")
	// -o is --output in kubeup; here it stays an alias of --out for old scripts, with a notice.
	cmd.Flags().MarkShorthandDeprecated("out", "use --out (in kubeup, -o is the output format)")
	cmd.Flags().StringVar(&role, "role", "", "render one config for the role's anonymous machines instead: master or node")
	cmd.Flags().StringVar(&keyAlg, "key-algorithm", "", "key algorithm for a new bundle: rsa-2048, rsa-3072, rsa-4096 or ecdsa-p256 (default ecdsa-p256; an existing bundle keeps its own)")
	cmd.AddCommand(newValidateCmd(), newCertsCmd())
	return cmd
}

// channels is how each config reaches its machine on cfg's target.
func channels(cfg *cluster.Config, cs []ignition.Config) ([]provider.Channel, error) {
	row, err := targets.Lookup(cfg.Target)
	if err != nil {
		return nil, err
	}
	chans := make([]provider.Channel, len(cs))
	for i, c := range cs {
		if chans[i], err = row.Channel(cfg, c); err != nil {
			return nil, err
		}
	}
	return chans, nil
}

// writePointers writes, for each config that goes behind a pointer, the hash-pinned pointer
// config its channel carries instead: <name>.pointer.ign in dir ("" for the others).
func writePointers(dir string, outs []ignition.Output, chans []provider.Channel) ([]string, error) {
	files := make([]string, len(outs))
	for i, o := range outs {
		if chans[i].PointerURL == "" {
			continue
		}
		ptr, err := ignition.Pointer(chans[i].PointerURL, o.Raw)
		if err != nil {
			return nil, fmt.Errorf("%s: pointer config: %w", o.Name, err)
		}
		files[i] = filepath.Join(dir, o.Name+".pointer.ign")
		if err := fsutil.WriteFile(files[i], ptr, 0o600); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func printTable(w io.Writer, cfg *cluster.Config, outs []ignition.Output, chans []provider.Channel, pointers []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MACHINE\tROLE\tBYTES RAW\tBYTES GZIP+B64\tFILE\n")
	for _, o := range outs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", o.Name, o.Role, o.Sizes.Raw, o.Sizes.GzipBase64, o.File)
	}
	tw.Flush()
	fmt.Fprintf(w, "delivery on target %s:\n", cfg.Target)
	for i, o := range outs {
		ch := chans[i]
		if ch.PointerURL == "" {
			fmt.Fprintf(w, "  %s: %s\n", o.Name, ch.How)
			continue
		}
		fmt.Fprintf(w, "  %s: %s gets %s, a hash-pinned pointer to %s (%s); serve %s there\n",
			o.Name, ch.How, pointers[i], ch.PointerURL, ch.Why, o.File)
	}
	fmt.Fprintln(w, "(never the kernel command line: it is readable by every process on the machine; "+strconv.Itoa(len(outs))+" config(s) written)")
}

func newValidateCmd() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a cluster config and list every problem (exit 2 if any)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := c.load(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", c.config)
			return nil
		},
	}
	c.register(cmd)
	return cmd
}

// newCertsCmd is what is left of `ignition-gen certs`: it says where the commands moved.
func newCertsCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "certs",
		Short:              "Moved: certificate and CA operations are 'kubeup certs' (status, renew, rotate-ca)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return cli.Usagef("'ignition-gen certs' moved to kubeup: run 'kubeup certs %s' (same flags)", strings.Join(args, " "))
		},
	}
}

// staleNotes says which of the bundle's master certificates are past the point where the
// master's agent renews its own copies: the bundle then no longer holds what the master uses.
// A master made again from this bundle starts with them and renews them on its first pass.
func staleNotes(w io.Writer, state, config string) {
	now := timeNow()
	for _, it := range renewal.MasterItems {
		c, err := it.ReadBundle(state)
		if err != nil || !c.Due(now, renewal.DefaultShare) {
			continue
		}
		fmt.Fprintf(w, "note: the bundle's %s expires %s: the master's agent has renewed its own copy (kubeup certs status shows it); to refresh the bundle: kubeup certs renew %s --config %s\n",
			it.Name, c.Cert.NotAfter.Format("2006-01-02"), it.Name, config)
	}
}
