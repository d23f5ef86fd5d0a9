// Package vspheretest starts govmomi's vCenter simulator (vcsim) in the test's process, laid
// out as configs/vsphere.yaml expects: datacenter DC0 with one cluster (whose resource pool is
// the datacenter's only one), datastore LocalDS_0, network "VM Network", and a template made
// from one of its VMs, as Packer's vsphere-clone leaves it. vcsim serves the real vSphere API
// (SOAP over HTTPS) from an in-memory inventory; it runs no guests: Guest plays what a booted
// guest's VMware Tools would leave on its VM.
package vspheretest

import (
	"context"
	"crypto/tls"
	"net/url"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Sim is a running simulator and a client of the test's own, to look at what the code under
// test did.
type Sim struct {
	Model  *simulator.Model
	URL    *url.URL // with the simulator's login in its user info
	Client *govmomi.Client
	Finder *find.Finder // set to DC0
}

// Start starts a simulator with a template named template; it stops when the test ends.
func Start(t testing.TB, template string) *Sim {
	t.Helper()
	m := simulator.VPX()
	m.Host = 0 // no standalone host: the cluster's resource pool is the only one
	m.Machine = 2
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.TLS = new(tls.Config)
	srv := m.Service.NewServer()
	t.Cleanup(func() { srv.Close(); m.Remove() })
	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sim{Model: m, URL: srv.URL, Client: client, Finder: find.NewFinder(client.Client, true)}
	dc, err := s.Finder.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	s.Finder.SetDatacenter(dc)
	vm, err := s.Finder.VirtualMachine(ctx, "DC0_C0_RP0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	// vcsim powers its VMs on; a template is powered off.
	if err := wait(ctx, vm.PowerOff); err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx, func(ctx context.Context) (*object.Task, error) { return vm.Rename(ctx, template) }); err != nil {
		t.Fatal(err)
	}
	if err := vm.MarkAsTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func wait(ctx context.Context, start func(context.Context) (*object.Task, error)) error {
	task, err := start(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// VMNames lists the datacenter's VMs and templates by name.
func (s *Sim) VMNames(t testing.TB) []string {
	t.Helper()
	vms, err := s.Finder.VirtualMachineList(context.Background(), "*")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, vm := range vms {
		names = append(names, vm.Name())
	}
	return names
}

// Guest plays a booted guest on VM name: its VMware Tools heartbeat turns green, as vCenter
// shows it once the tools run, and each of vars is set in the VM's extraConfig, where
// vSphere shows the guestinfo variables the guest set with info-set.
func (s *Sim) Guest(ctx context.Context, name string, vars map[string]string) error {
	vm, err := s.Finder.VirtualMachine(ctx, name)
	if err != nil {
		return err
	}
	var opts []types.BaseOptionValue
	for k, v := range vars {
		opts = append(opts, &types.OptionValue{Key: k, Value: v})
	}
	if err := wait(ctx, func(ctx context.Context) (*object.Task, error) {
		return vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: opts})
	}); err != nil {
		return err
	}
	obj := s.Model.Map().Get(vm.Reference()).(*simulator.VirtualMachine)
	sctx := s.Model.Service.Context
	s.Model.Map().WithLock(sctx, obj, func() {
		s.Model.Map().Update(sctx, obj, []types.PropertyChange{{Name: "guestHeartbeatStatus", Val: types.ManagedEntityStatusGreen}})
	})
	return nil
}
