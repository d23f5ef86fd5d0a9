package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/targets"
)

// targetProvider is the provider of the config's target (the table in
// internal/provider/targets), for up and for the commands that look at or remove a cluster an
// earlier up made (status, verify, down); the caller closes it.
func targetProvider(cfg *cluster.Config, state string, out io.Writer, opt cloudOptions) (provider.Provider, error) {
	return openProvider(cfg, opt.targetOptions(cfg, state, out))
}

// closeProvider logs out of the providers that hold a session (vSphere).
func closeProvider(ctx context.Context, p provider.Provider) {
	if c, ok := p.(interface{ Close(context.Context) error }); ok {
		_ = c.Close(context.WithoutCancel(ctx))
	}
}

// bringUp is `kubeup up` on any provider, in the order every target follows: check the target
// and make what the bundle needs, the bundle, every machine's config (rendered in memory),
// delivered over the target's channel, the machines started, each machine's progress until
// every one is Ready, every phase checked through the host kubeconfig, and that kubeconfig's
// path. A dry run stops after Create, which then only prints; --timeout 0 stops once the
// machines are started.
func bringUp(ctx context.Context, out io.Writer, p provider.Provider, cfg *cluster.Config, state string, opt cloudOptions) error {
	prep, err := p.Prepare(ctx)
	if err != nil {
		return err
	}
	if err := recordSANs(out, cfg, state, prep.SANs, opt); err != nil {
		return err
	}
	b, _, cleanup, err := cloudBundle(out, cfg, state, "", opt)
	if err != nil {
		return err
	}
	defer cleanup()
	configs, err := ignition.Configs(cfg, b, prep.Render)
	if err != nil {
		return err
	}
	for _, role := range prep.Roles {
		ro := prep.Render
		ro.Role = role
		rc, err := ignition.Configs(cfg, b, ro)
		if err != nil {
			return err
		}
		configs = append(configs, rc...)
	}
	if err := p.Deliver(ctx, configs); err != nil {
		return err
	}
	start := time.Now()
	if err := p.Create(ctx); err != nil {
		return err
	}
	if opt.dryRun {
		fmt.Fprintln(out, "dry run: nothing was changed")
		return nil
	}
	endpoint, err := p.Endpoint(ctx)
	if err != nil {
		return err
	}
	kubeconfig := targets.HostKubeconfig(state, p.Target())
	// The bundle's own admin.conf is never rewritten: it already names the endpoint.
	if row, _ := targets.Lookup(p.Target()); row.OwnKubeconfig {
		if err := writeKubeconfig(b, endpoint, kubeconfig); err != nil {
			return err
		}
	}
	if opt.timeout == 0 {
		fmt.Fprintf(out, "not following the machines (--timeout 0; API at %s): 'kubeup status' shows their progress\n  kubectl --kubeconfig %s get nodes\n",
			endpoint, kubeconfig)
		return nil
	}
	fmt.Fprintf(out, "the machines are starting (API at %s); waiting for them (Ctrl-C leaves them running)\n", endpoint)
	wctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	if err := waitForCluster(wctx, out, p, kubeconfig, start); err != nil {
		if ctx.Err() != nil { // Ctrl-C, not --timeout
			return fmt.Errorf("stopped waiting (interrupted); the machines keep running\n  'kubeup status' shows them; 'kubeup down' stops them")
		}
		hint := ""
		if l, ok := p.(interface{ Logs() string }); ok {
			hint = "\n  " + l.Logs()
		}
		return fmt.Errorf("%w%s\n  'kubeup status' shows the machines; 'kubeup down' stops them", err, hint)
	}
	merge := "kubeup kubeconfig --merge"
	if opt.configPath != defaultConfig {
		merge += " --config " + opt.configPath
	}
	if state != cfg.StateDir() {
		merge += " --state " + state
	}
	fmt.Fprintf(out, "cluster %s is up in %v\n  kubectl --kubeconfig %s get nodes\n  or, to use it as kubectl context %s: %s\n",
		cfg.Name, time.Since(start).Round(time.Second), kubeconfig, contextName(cfg.Name), merge)
	return nil
}

// recordSANs makes the API server certificate cover the addresses the target's Prepare found
// or made (the master's Elastic IP on AWS), which no config can name in advance: it adds them to
// cfg's certSANs and records them in the bundle directory, so that a bundle made now covers
// them and every later command checks against them. A bundle made before (or for other
// addresses) is an error naming the renewal: kubeup never re-issues a certificate by itself.
// A dry run records nothing and only notes what up would stop on.
func recordSANs(out io.Writer, cfg *cluster.Config, state string, sans []string, opt cloudOptions) error {
	var missing []string
	for _, a := range sans {
		exists, covers, err := pki.APIServerCovers(state, a)
		if err != nil {
			return err
		}
		if exists && !covers {
			missing = append(missing, a)
		}
	}
	fix := fmt.Sprintf("kubeup certs renew apiserver --config %s --state %s", opt.configPath, state)
	if opt.dryRun && len(missing) > 0 {
		// The plan goes on with the bundle as it is.
		fmt.Fprintf(out, "note: the bundle's API server certificate does not cover %s: up will stop and ask for '%s'\n", strings.Join(missing, ", "), fix)
		return nil
	}
	for _, a := range sans {
		if !slices.Contains(cfg.ControlPlane.CertSANs, a) {
			cfg.ControlPlane.CertSANs = append(cfg.ControlPlane.CertSANs, a)
		}
	}
	if opt.dryRun || len(sans) == 0 {
		return nil
	}
	if err := pki.SetProviderSANs(state, sans); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("the secrets bundle in %s was made before the target gave the master its address %s (on AWS its Elastic IP): "+
			"its API server certificate does not cover it, and kubectl from outside the machines' network would fail TLS verification. "+
			"kubeup does not re-issue certificates by itself. Fix: %s (it keeps the key and adds %s, recorded in %s), then kubeup up "+
			"again; the address is kept until kubeup down",
			state, strings.Join(missing, ", "), fix, strings.Join(missing, ", "), filepath.Join(state, pki.ProviderSANsFile))
	}
	return nil
}

// snippetUsage reports a Butane snippet that cannot be merged into a machine's config as what it
// is, bad input in the config file (exit 2, naming the file).
func snippetUsage(config string, err error) error {
	if se := (*ignition.SnippetError)(nil); errors.As(err, &se) {
		return cli.Usage(fmt.Errorf("%s: %w", config, err))
	}
	return err
}
