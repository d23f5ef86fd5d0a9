package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/packermanifest"
	"kubeup.dev/kubeup/internal/provider/vsphere"
)

// vsphereDir is where up keeps what it renders for vSphere.
func vsphereDir(state string) string { return filepath.Join(state, "vsphere") }

// upVSphere brings the cluster up on vSphere (internal/provider/vsphere): the bundle, one
// config per machine, and one VM per machine.
func upVSphere(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	if have := cfg.TrimNodes(opt.numNodes); have < opt.numNodes && opt.numNodesSet {
		return fmt.Errorf("--num-nodes %d: the config lists only %d nodes (fix: add machines with role: node, each with its own name, mac and address)", opt.numNodes, have)
	}
	template := cfg.VSphere.Template
	if opt.manifest != "" {
		id, err := packermanifest.LastArtifact(opt.manifest, "vsphere-clone")
		if err != nil {
			return err
		}
		template = id
		fmt.Fprintf(out, "template %s, from %s\n", template, opt.manifest)
	}
	if template == "" {
		return errors.New("vsphere.template is empty: name the baked template, or give --packer-manifest of its build")
	}
	machines, cleanup, err := vsphereConfigs(out, cfg, state, opt)
	defer cleanup()
	if err != nil {
		return err
	}
	plan, err := vsphere.NewPlan(vsphere.Spec{
		Cluster: cfg.Name, Datacenter: cfg.VSphere.Datacenter, Datastore: cfg.VSphere.Datastore,
		Network: cfg.VSphere.Network, Template: template, ConfigURL: cfg.VSphere.ConfigURL, Machines: machines,
	})
	if err != nil {
		return err
	}
	plan.Print(out)
	sess, err := vsphereSession(ctx, out, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	if err := sess.Up(ctx, plan, opt.dryRun, printEvent(out)); err != nil {
		return err
	}
	if opt.dryRun {
		fmt.Fprintln(out, "dry run: nothing was changed in vSphere or on disk")
		return nil
	}
	if opt.timeout > 0 {
		fmt.Fprintf(out, "waiting up to %v for each VM's guest heartbeat (VMware Tools running in the booted guest)\n", opt.timeout)
		wctx, cancel := context.WithTimeout(ctx, opt.timeout)
		defer cancel()
		if err := sess.Wait(wctx, plan, printEvent(out)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "the VMs of cluster %s run; each machine's agent reports its phases on its console and as Kubernetes events\n"+
		"  admin kubeconfig: %s (API at %s); 'kubeup down' deletes the VMs\n", cfg.Name, filepath.Join(state, "admin.conf"), cfg.EndpointURL())
	return nil
}

// vsphereConfigs renders every machine's config into <state>/vsphere/ignition, creating the
// bundle if there is none. A dry run writes nothing under state: it uses the bundle if there is
// one, or a throwaway one (whose configs are the same size), and renders into a temporary
// directory.
func vsphereConfigs(out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) ([]vsphere.Machine, func(), error) {
	b, outDir, cleanup, err := cloudBundle(out, cfg, state, filepath.Join(vsphereDir(state), "ignition"), opt)
	if err != nil {
		return nil, cleanup, err
	}
	outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: outDir})
	if err != nil {
		return nil, cleanup, err
	}
	var machines []vsphere.Machine
	for _, o := range outs {
		raw, err := os.ReadFile(o.File)
		if err != nil {
			return nil, cleanup, err
		}
		m, ok := cfg.Machine(o.Name)
		if !ok {
			m = cluster.Machine{Name: o.Name}
		}
		// The name under which up writes it, also in a dry run: the file the operator serves.
		file := filepath.Join(vsphereDir(state), "ignition", filepath.Base(o.File))
		machines = append(machines, vsphere.Machine{Name: m.Name, Role: m.Role, MAC: m.MAC, Config: raw, File: file})
	}
	return machines, cleanup, nil
}

// vsphereSession logs in with the govc variables, saying where to without the password.
func vsphereSession(ctx context.Context, out io.Writer, cfg *cluster.Config) (*vsphere.Session, error) {
	creds, err := vsphere.CredentialsFromEnv(cfg.VSphere.Server)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "vSphere: %s, datacenter %s\n", creds, cfg.VSphere.Datacenter)
	return vsphere.Connect(ctx, creds, cfg.VSphere.Datacenter)
}

func printEvent(out io.Writer) func(vsphere.Event) {
	return func(ev vsphere.Event) {
		line := fmt.Sprintf("  %-20s %s", ev.VM, ev.What)
		if ev.Detail != "" {
			line += ": " + ev.Detail
		}
		fmt.Fprintln(out, strings.TrimRight(line, " "))
	}
}

// downVSphere deletes the VMs upVSphere made for the cluster, found by their mark, and the
// configs it rendered; the secrets bundle stays.
func downVSphere(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	sess, err := vsphereSession(ctx, out, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	n := 0
	count := printEvent(out)
	if err := sess.Down(ctx, cfg.Name, opt.dryRun, func(ev vsphere.Event) { n++; count(ev) }); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(out, "no VMs of cluster %s in datacenter %s\n", cfg.Name, cfg.VSphere.Datacenter)
	}
	if opt.dryRun {
		fmt.Fprintf(out, "dry run: nothing was deleted (down would also remove %s)\n", vsphereDir(state))
		return nil
	}
	// The rendered configs (the master's holds the CA keys) go with the VMs; up renders them again.
	if err := os.RemoveAll(vsphereDir(state)); err != nil {
		return fmt.Errorf("remove %s: %w", vsphereDir(state), err)
	}
	fmt.Fprintf(out, "removed %s; the secrets bundle in %s stays\n", vsphereDir(state), state)
	return nil
}
