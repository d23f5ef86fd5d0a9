package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Credentials of the registry mirrors, kept in the secrets bundle",
		Long: `The mirrors of the cluster config's registries are pulled from anonymously unless the
secrets bundle holds their credentials (HTTP basic authentication). The master's config carries
them, and its agent hands them to the nodes' agents; no node config holds them.`,
	}
	cmd.AddCommand(newRegistryLoginCmd(), newRegistryLogoutCmd())
	return cmd
}

// setRegistryAuth keeps (c) or drops (nil) host's credentials in the bundle in state, and says
// what changed and how the change reaches the machines.
func setRegistryAuth(out io.Writer, cfg *cluster.Config, state, host string, c *pki.RegistryCredential) error {
	changed, err := pki.SetRegistryAuth(state, host, c)
	if err != nil {
		return err
	}
	file := filepath.Join(state, pki.RegistryAuthFile)
	switch {
	case !changed && c != nil:
		fmt.Fprintf(out, "%s: the bundle already holds these credentials\n", host)
		return nil
	case !changed:
		fmt.Fprintf(out, "%s: the bundle holds no credentials for it\n", host)
		return nil
	case c != nil:
		fmt.Fprintf(out, "%s: credentials kept in %s\n", host, file)
	default:
		fmt.Fprintf(out, "%s: credentials dropped from %s\n", host, file)
	}
	fmt.Fprintf(out, "A new cluster gets them at kubeup up. On a running cluster, replace the master with its new config: "+
		"kubeup upgrade --to %s (its agent then hands them to every node's agent).\n", cfg.KubernetesVersion)
	return nil
}

// mirrorArg checks that the config names the mirror host.
func mirrorArg(cfg *cluster.Config, w *where, host string) error {
	if hosts := cfg.MirrorHosts(); !slices.Contains(hosts, host) {
		have := "the config has none"
		if len(hosts) > 0 {
			have = "the config's are at " + strings.Join(hosts, ", ")
		}
		return cli.Usagef("%s: registries[].mirrors: no mirror at %s (%s): add its URL, such as https://%s, to a registry's mirrors first", w.config, host, have, host)
	}
	return nil
}

func newRegistryLoginCmd() *cobra.Command {
	var w where
	var username string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "login HOST --username USER --password-stdin",
		Short: "Keep a mirror's user name and password in the secrets bundle",
		Long: `login records the credentials of the mirror at HOST (host[:port], as in a mirror URL of
the config's registries) in the secrets bundle's ` + pki.RegistryAuthFile + `, 0600, in the format of
Docker's config.json. The password is read from standard input, never from an argument.`,
		Example: `  kubeup registry login mirror.example.internal:5000 --username pull --password-stdin < password.txt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdin {
				return cli.Usagef("give the password on standard input, with --password-stdin")
			}
			if username == "" || strings.Contains(username, ":") {
				return cli.Usagef("--username: give the user name, without ':'")
			}
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			if err := mirrorArg(cfg, &w, args[0]); err != nil {
				return err
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the password: %w", err)
			}
			password := strings.TrimRight(line, "\r\n")
			if password == "" {
				return cli.Usagef("--password-stdin: standard input held no password")
			}
			return setRegistryAuth(cmd.OutOrStdout(), cfg, state, args[0], &pki.RegistryCredential{Username: username, Password: password})
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "the mirror's user name")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password (or token) from standard input")
	w.register(cmd)
	return cmd
}

func newRegistryLogoutCmd() *cobra.Command {
	var w where
	cmd := &cobra.Command{
		Use:   "logout HOST",
		Short: "Drop a mirror's credentials from the secrets bundle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// No check against the config's mirrors: this is how credentials for a mirror
			// the config no longer names are dropped.
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			return setRegistryAuth(cmd.OutOrStdout(), cfg, state, args[0], nil)
		},
	}
	w.register(cmd)
	return cmd
}
