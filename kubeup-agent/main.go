// Command kubeup-agent runs on every machine after Ignition. On the master it waits for the API
// server, applies the bootstrap objects and add-ons by server-side apply, and then approves
// kubelet-serving CSRs for as long as it runs. Every step is reported on the console.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
)

func main() {
	configPath := flag.String("config", agent.ConfigPath, "agent config written by Ignition")
	root := flag.String("root", "/", "prefix for every path in the config (for tests)")
	apiTimeout := flag.Duration("api-timeout", 20*time.Minute, "how long to wait for the API server")
	once := flag.Bool("once", false, "bootstrap and approve pending CSRs once, then exit")
	flag.Parse()
	if err := run(*configPath, *root, *apiTimeout, *once); err != nil {
		fmt.Fprintln(os.Stderr, "kubeup-agent:", err)
		os.Exit(1)
	}
}

func run(configPath, root string, apiTimeout time.Duration, once bool) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg agent.Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	name := cfg.Machine
	if name == "" {
		name, _ = os.Hostname()
	}
	rep := &agent.Reporter{Machine: name, Console: os.Stdout}
	if cfg.Role != cluster.RoleMaster {
		rep.Report(context.Background(), "1", "Started", true, "node agent: phase reports are not built yet; the kubelet joins on its own")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &agent.Master{Config: cfg, Root: root, Reporter: rep}
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		return err
	}
	admin, err := m.RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	ap := &agent.Approver{Client: client, Log: func(csr string, d agent.Decision, reason string) {
		fmt.Printf("kubeup: %s: CSR %s: %s: %s\n", name, csr, d, reason)
	}}
	if once {
		return ap.Once(ctx)
	}
	ap.Run(ctx, 2*time.Second, func(err error) { fmt.Fprintln(os.Stderr, "kubeup-agent: approver:", err) })
	return nil
}
