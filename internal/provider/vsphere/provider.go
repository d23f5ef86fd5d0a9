package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	kmachine "kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/provider"
)

// Provider runs a cluster's machines as vSphere VMs (provider.Provider): one clone of the
// template per machine of the config, its config in guestinfo, its progress read back from the
// guestinfo variables its agent sets (machine.GuestinfoKeys) and its VMware Tools heartbeat.
type Provider struct {
	Config *cluster.Config
	// Dir keeps the configs too large for guestinfo (the operator serves them at
	// vsphere.configURL).
	Dir string
	// Template is the VM template to clone: vsphere.template, or the one a Packer manifest
	// names. Only Prepare needs it.
	Template string
	// DryRun: Prepare, Deliver and Create check and print what they would make, and make
	// nothing; Down lists what it would delete.
	DryRun bool
	// Out gets the plan and one line per VM as it is found, made or deleted.
	Out io.Writer
	// Credentials, if set, are used instead of the govc variables of the environment.
	Credentials *Credentials

	sess *Session
	plan *Plan
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Booted   = (*Provider)(nil)
)

// Target is vsphere.
func (p *Provider) Target() string { return cluster.TargetVSphere }

func (p *Provider) out() io.Writer {
	if p.Out == nil {
		return io.Discard
	}
	return p.Out
}

// session logs in once, with the govc variables unless Credentials are set.
func (p *Provider) session(ctx context.Context) (*Session, error) {
	if p.sess != nil {
		return p.sess, nil
	}
	v := p.Config.VSphere
	if v == nil {
		return nil, errors.New("target vsphere needs a vsphere block in the cluster config")
	}
	var creds Credentials
	if p.Credentials != nil {
		creds = *p.Credentials
	} else {
		var err error
		if creds, err = CredentialsFromEnv(v.Server); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(p.out(), "vSphere: %s, datacenter %s\n", creds, v.Datacenter)
	s, err := Connect(ctx, creds, v.Datacenter)
	if err != nil {
		return nil, err
	}
	p.sess = s
	return s, nil
}

// Close logs out, if a call logged in.
func (p *Provider) Close(ctx context.Context) error {
	if p.sess == nil {
		return nil
	}
	err := p.sess.Close(ctx)
	p.sess = nil
	return err
}

// spec is the plan's inventory part, without machines.
func (p *Provider) spec() Spec {
	v := p.Config.VSphere
	return Spec{Cluster: p.Config.Name, Datacenter: v.Datacenter, Datastore: v.Datastore, Network: v.Network,
		Template: p.Template, ConfigURL: v.ConfigURL}
}

// Prepare logs in and checks that the template, datastore, network, folder and resource pool
// exist, before the secrets bundle is made. vSphere needs no SAN and no render option: the
// master's address is the config's.
func (p *Provider) Prepare(ctx context.Context) (provider.Prepared, error) {
	if p.Config.VSphere == nil {
		return provider.Prepared{}, errors.New("target vsphere needs a vsphere block in the cluster config")
	}
	if p.Template == "" {
		return provider.Prepared{}, errors.New("vsphere.template is empty: name the baked template, or give --packer-manifest of its build")
	}
	s, err := p.session(ctx)
	if err != nil {
		return provider.Prepared{}, err
	}
	spec := p.spec()
	if _, err := s.locate(ctx, &Plan{Spec: spec}); err != nil {
		return provider.Prepared{}, err
	}
	master, ok := p.master()
	if !ok {
		return provider.Prepared{}, nil
	}
	file := p.etcdDiskPath(master.Name)
	uuid, made, err := s.etcdDisk(ctx, file, p.DryRun)
	if err != nil {
		return provider.Prepared{}, err
	}
	report := PrintEvent(p.out())
	switch {
	case uuid == "":
		report(Event{Machine: master.Name, VM: file, What: "would create", Detail: fmt.Sprintf("the master's etcd disk, %d GiB thin", EtcdDiskGiB)})
		return provider.Prepared{}, nil
	case made:
		report(Event{Machine: master.Name, VM: file, What: "created", Detail: fmt.Sprintf("the master's etcd disk, %d GiB thin", EtcdDiskGiB)})
	default:
		report(Event{Machine: master.Name, VM: file, What: "exists", Detail: "the master's etcd disk: kept, with the cluster's data"})
	}
	return provider.Prepared{Render: ignition.Options{EtcdDevice: EtcdDevice(uuid)}}, nil
}

// master is the config's master, if it has one.
func (p *Provider) master() (cluster.Machine, bool) {
	for _, m := range p.Config.Machines {
		if m.Role == cluster.RoleMaster {
			return m, true
		}
	}
	return cluster.Machine{}, false
}

// etcdDiskPath is the datastore path of master's etcd disk.
func (p *Provider) etcdDiskPath(master string) string {
	return EtcdDiskPath(p.Config.VSphere.Datastore, p.Config.Name, master)
}

// RenderOptions are the renderer's options for this cluster's machines, for every render after
// up's (a replacement's config): the master's config mounts its etcd disk, named by the disk's
// UUID, which Prepare made.
func (p *Provider) RenderOptions(ctx context.Context) (ignition.Options, error) {
	master, ok := p.master()
	if !ok {
		return ignition.Options{}, nil
	}
	s, err := p.session(ctx)
	if err != nil {
		return ignition.Options{}, err
	}
	uuid, _, err := s.etcdDisk(ctx, p.etcdDiskPath(master.Name), true)
	if err != nil {
		return ignition.Options{}, err
	}
	if uuid == "" {
		return ignition.Options{}, fmt.Errorf("vsphere: no etcd disk at %s (kubeup up makes it)", p.etcdDiskPath(master.Name))
	}
	return ignition.Options{EtcdDevice: EtcdDevice(uuid)}, nil
}

// configFile is where a config too large for guestinfo is written for the operator to serve.
func (p *Provider) configFile(name string) string {
	return filepath.Join(p.Dir, "ignition", name+".ign")
}

// planMachine is machine m with its config c, as the plan takes it: the master with its etcd
// disk.
func (p *Provider) planMachine(m cluster.Machine, c ignition.Config) Machine {
	pm := Machine{Name: m.Name, Role: m.Role, MAC: m.MAC, Config: c.Raw, File: p.configFile(m.Name)}
	if m.Role == cluster.RoleMaster {
		pm.EtcdDisk = p.etcdDiskPath(m.Name)
	}
	return pm
}

// Deliver plans one VM per config, its config inline in guestinfo or, when over the limit, a
// pointer to vsphere.configURL; those configs are written (0600) under Dir for the operator to
// serve there. The configs go to vSphere with the clones, in Create.
func (p *Provider) Deliver(_ context.Context, configs []ignition.Config) error {
	spec := p.spec()
	for _, c := range configs {
		m, ok := p.Config.Machine(c.Name)
		if !ok {
			return fmt.Errorf("vsphere: config %s: the vSphere provider makes one VM per machine of the config, and %s is none", c.Name, c.Name)
		}
		spec.Machines = append(spec.Machines, p.planMachine(m, c))
	}
	plan, err := NewPlan(spec)
	if err != nil {
		return err
	}
	plan.Print(p.out())
	if !p.DryRun {
		for _, vm := range plan.VMs {
			if err := writeServed(vm); err != nil {
				return err
			}
		}
	}
	p.plan = plan
	return nil
}

// writeServed writes vm's config under Dir, 0600, when it is over the guestinfo limit: the
// operator serves that directory at vsphere.configURL, where its pointer names it.
func writeServed(vm VM) error {
	if vm.PointerURL == "" {
		return nil
	}
	if err := fsutil.MkdirAll(filepath.Dir(vm.File), 0o700); err != nil {
		return err
	}
	// The master's holds the CA keys.
	return fsutil.ReplaceFile(vm.File, vm.Config, 0o600)
}

// Create clones and powers on every VM of the plan that does not exist yet (Session.Up).
func (p *Provider) Create(ctx context.Context) error {
	if p.plan == nil {
		return errors.New("vsphere: Create before Deliver")
	}
	s, err := p.session(ctx)
	if err != nil {
		return err
	}
	return s.Up(ctx, p.plan, p.DryRun, PrintEvent(p.out()))
}

// ours lists the cluster's VMs (not templates).
func (p *Provider) ours(ctx context.Context) ([]found, error) {
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.vms(ctx)
	if err != nil {
		return nil, err
	}
	var vms []found
	for _, f := range all {
		if f.ours(p.Config.Name) && !f.template {
			vms = append(vms, f)
		}
	}
	return vms, nil
}

// Machines is every VM of the cluster, in the config's order, with what its guestinfo and
// heartbeat say. No VM at all is fs.ErrNotExist: nothing was brought up.
func (p *Provider) Machines(ctx context.Context) ([]provider.Machine, error) {
	vms, err := p.ours(ctx)
	if err != nil {
		return nil, err
	}
	if len(vms) == 0 {
		return nil, fmt.Errorf("no VM of cluster %s in datacenter %s (kubeup up makes them): %w", p.Config.Name, p.Config.VSphere.Datacenter, fs.ErrNotExist)
	}
	order := func(name string) int {
		i := slices.IndexFunc(p.Config.Machines, func(m cluster.Machine) bool { return m.Name == name })
		if i < 0 {
			return len(p.Config.Machines)
		}
		return i
	}
	slices.SortFunc(vms, func(a, b found) int {
		if d := order(a.machine) - order(b.machine); d != 0 {
			return d
		}
		return strings.Compare(a.machine, b.machine)
	})
	var ms []provider.Machine
	for _, f := range vms {
		role := ""
		if m, ok := p.Config.Machine(f.machine); ok {
			role = m.Role
		}
		running := f.power == types.VirtualMachinePowerStatePoweredOn
		get := func(k string) string { return f.reports[k] }
		ms = append(ms, provider.Machine{Name: f.machine, Role: role, Running: running,
			Console: kmachine.GuestinfoConsole(get, running && f.heartbeat == types.ManagedEntityStatusGreen)})
	}
	return ms, nil
}

// Endpoint is the config's: the host reaches the machines' network.
func (p *Provider) Endpoint(context.Context) (string, error) { return p.Config.EndpointURL(), nil }

// Logs says where to look when a machine does not come up.
func (p *Provider) Logs() string {
	return fmt.Sprintf("each VM's reports: govc vm.info -e %s (its guestinfo.kubeup.* variables); its console in the vSphere client",
		VMName(p.Config.Name, "<machine>"))
}

// Replace deletes machine name's VM and clones it again from Template with config. The
// master's etcd disk is detached first, so that deleting the VM keeps it, and attached to the
// new clone: config must mount it (RenderOptions).
func (p *Provider) Replace(ctx context.Context, name string, config ignition.Config) error {
	m, ok := p.Config.Machine(name)
	if !ok {
		return fmt.Errorf("vsphere: replace %s: no such machine in the config", name)
	}
	if p.Template == "" {
		return errors.New("vsphere: replace: no template to clone (vsphere.template or --packer-manifest)")
	}
	vms, err := p.ours(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(vms, func(f found) bool { return f.machine == name })
	if i < 0 {
		return fmt.Errorf("vsphere: replace %s: cluster %s has no VM for it (kubeup up makes it)", name, p.Config.Name)
	}
	spec := p.spec()
	spec.Machines = []Machine{p.planMachine(m, config)}
	plan, err := NewPlan(spec)
	if err != nil {
		return err
	}
	s := p.sess
	pl, err := s.locate(ctx, plan)
	if err != nil {
		return err
	}
	vm := &plan.VMs[0]
	report := PrintEvent(p.out())
	// A config over the guestinfo limit (a master's with an etcd snapshot in it) goes where up
	// put such configs, which the operator serves; its pointer checks its hash, so a server
	// still giving an older file stops the boot rather than boot it.
	if err := writeServed(*vm); err != nil {
		return err
	}
	if vm.PointerURL != "" {
		report(Event{Machine: name, VM: vm.Name, What: "config written", Detail: vm.File + ", over the guestinfo limit: served at " + vm.PointerURL})
	}
	if vm.EtcdDisk != "" {
		// Never clone a master without its data: the disk must be there before the old VM goes.
		if uuid, _, err := s.etcdDisk(ctx, vm.EtcdDisk, true); err != nil {
			return err
		} else if uuid == "" {
			return fmt.Errorf("vsphere: replace master %s: no etcd disk at %s; left as it is", name, vm.EtcdDisk)
		}
		if err := s.detachDisk(ctx, vms[i], vm.EtcdDisk); err != nil {
			return err
		}
		report(Event{Machine: name, VM: vms[i].name, What: "detached", Detail: vm.EtcdDisk + ", kept for the new VM"})
	}
	if err := s.destroy(ctx, vms[i]); err != nil {
		return err
	}
	report(Event{Machine: name, VM: vms[i].name, What: "deleted", Detail: "to be cloned again"})
	return s.make(ctx, plan, pl, vm, report)
}

// BootedImage is the template machine name's VM was cloned from, as its mark records it; ""
// for a VM made before kubeup recorded it.
func (p *Provider) BootedImage(ctx context.Context, name string) (string, error) {
	vm, err := p.vmOf(ctx, name)
	return vm.image, err
}

// vmOf is machine name's VM, as found by its mark.
func (p *Provider) vmOf(ctx context.Context, name string) (found, error) {
	vms, err := p.ours(ctx)
	if err != nil {
		return found{}, err
	}
	i := slices.IndexFunc(vms, func(f found) bool { return f.machine == name })
	if i < 0 {
		return found{}, fmt.Errorf("vsphere: cluster %s has no VM for %s (kubeup up makes it)", p.Config.Name, name)
	}
	return vms[i], nil
}

// BootedConfig is nil: Ignition overwrites the config in guestinfo once it has applied it.
// BootedConfigSum tells whether it differs from a new render.
func (p *Provider) BootedConfig(context.Context, string) ([]byte, error) { return nil, nil }

// BootedConfigSum is the SHA-256 of the config machine name's VM was cloned with, as its mark
// records it (a later render from the same bundle gives the same bytes, so the same sum).
func (p *Provider) BootedConfigSum(ctx context.Context, name string) (string, error) {
	vm, err := p.vmOf(ctx, name)
	return vm.sum, err
}

// Down deletes every VM kubeup made for the cluster (Session.Down) and then Dir; the secrets
// bundle stays.
func (p *Provider) Down(ctx context.Context) error {
	s, err := p.session(ctx)
	if err != nil {
		return err
	}
	n := 0
	print := PrintEvent(p.out())
	if err := s.Down(ctx, p.Config.Name, p.DryRun, func(ev Event) { n++; print(ev) }); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(p.out(), "no VMs of cluster %s in datacenter %s\n", p.Config.Name, p.Config.VSphere.Datacenter)
	}
	// The etcd disk outlives its VM (Replace): it goes last, with the cluster.
	dir, err := s.deleteEtcdFolder(ctx, p.Config.VSphere.Datastore, p.Config.Name, p.DryRun)
	if err != nil {
		return err
	}
	if dir != "" {
		what := "deleted"
		if p.DryRun {
			what = "would delete"
		}
		print(Event{VM: dir, What: what, Detail: "the master's etcd disk: the cluster's data"})
	}
	if p.DryRun {
		fmt.Fprintf(p.out(), "dry run: nothing was deleted (down would also remove %s)\n", p.Dir)
		return nil
	}
	// The configs over the limit (the master's holds the CA keys) go with the VMs; up makes
	// them again.
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", p.Dir, err)
	}
	fmt.Fprintf(p.out(), "removed %s\n", p.Dir)
	return nil
}

// PrintEvent writes each event as one line: the VM, what happened, and the detail.
func PrintEvent(out io.Writer) func(Event) {
	return func(ev Event) {
		line := fmt.Sprintf("  %-20s %s", ev.VM, ev.What)
		if ev.Detail != "" {
			line += ": " + ev.Detail
		}
		fmt.Fprintln(out, strings.TrimRight(line, " "))
	}
}
