package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/qemu"
)

// providerDir is where target's provider keeps what it makes for the cluster whose bundle is
// in state, and the host-reachable kubeconfig.
func providerDir(state, target string) string { return filepath.Join(state, target) }

// hostKubeconfig is the admin kubeconfig `kubeup up` writes for the host: its server is the
// API server's address as this host reaches it. QEMU (a forwarded port) and AWS (the Elastic IP)
// write their own in the provider's directory; on vSphere and bare metal the host reaches the
// endpoint the bundle's admin.conf already names.
func hostKubeconfig(state, target string) string {
	switch target {
	case cluster.TargetQEMU, cluster.TargetAWS:
		return filepath.Join(providerDir(state, target), "admin.conf")
	}
	return filepath.Join(state, "admin.conf")
}

// qemuProvider is the QEMU provider of the cluster whose bundle is in state.
func qemuProvider(cfg *cluster.Config, state string, out io.Writer) *qemu.Provider {
	return &qemu.Provider{Config: cfg, Dir: providerDir(state, cluster.TargetQEMU), Out: out}
}

// bringUp is `kubeup up` on any provider, in the order every target follows: check the target
// and make what the bundle needs, the bundle, every machine's config (rendered in memory),
// delivered over the target's channel, the machines started, each machine's progress until
// every one is Ready, every phase checked through the host kubeconfig, and that kubeconfig's
// path.
func bringUp(ctx context.Context, out io.Writer, p provider.Provider, cfg *cluster.Config, state, configPath string, timeout time.Duration) error {
	if _, err := p.Prepare(ctx); err != nil {
		return err
	}
	b, err := ensureBundle(out, cfg, state, configPath)
	if err != nil {
		return err
	}
	configs, err := ignition.Configs(cfg, b, ignition.Options{})
	if err != nil {
		return err
	}
	if err := p.Deliver(ctx, configs); err != nil {
		return err
	}
	start := time.Now()
	if err := p.Create(ctx); err != nil {
		return err
	}
	endpoint, err := p.Endpoint(ctx)
	if err != nil {
		return err
	}
	kubeconfig := hostKubeconfig(state, p.Target())
	if err := writeKubeconfig(b, endpoint, kubeconfig); err != nil {
		return err
	}
	fmt.Fprintf(out, "started %d machines (API at %s); waiting for them (Ctrl-C leaves them running)\n", len(configs), endpoint)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitForCluster(ctx, out, p, kubeconfig, start); err != nil {
		hint := ""
		if l, ok := p.(interface{ Logs() string }); ok {
			hint = "\n  " + l.Logs()
		}
		return fmt.Errorf("%w%s\n  'kubeup status' shows the machines; 'kubeup down' stops them", err, hint)
	}
	merge := "kubeup kubeconfig --merge"
	if configPath != defaultConfig {
		merge += " --config " + configPath
	}
	if state != cfg.StateDir() {
		merge += " --state " + state
	}
	fmt.Fprintf(out, "cluster %s is up in %v\n  kubectl --kubeconfig %s get nodes\n  or, to use it as kubectl context %s: %s\n",
		cfg.Name, time.Since(start).Round(time.Second), kubeconfig, contextName(cfg.Name), merge)
	return nil
}
