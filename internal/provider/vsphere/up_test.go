package vsphere

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"kubeup.dev/kubeup/internal/ignition"
)

func mustPlan(t *testing.T, spec Spec) *Plan {
	t.Helper()
	p, err := NewPlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpClonesWithGuestinfoAndMAC(t *testing.T) {
	s := newSim(t)
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11")))
	var ev events
	if err := s.session().Up(s.ctx, p, false, ev.add); err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Spec.Machines {
		name := VMName("test", m.Name)
		if got := ev.what(name); !slices.Equal(got, []string{"cloned", "powered on"}) {
			t.Errorf("%s: events %v, want cloned, powered on", name, got)
		}
		vm := s.props(name)
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			t.Errorf("%s: %s, want poweredOn", name, vm.Runtime.PowerState)
		}
		x := extra(vm)
		if got := decode(t, x["guestinfo.ignition.config.data"]); string(got) != string(m.Config) {
			t.Errorf("%s: guestinfo config %q, want %q", name, got, m.Config)
		}
		if x["guestinfo.ignition.config.data.encoding"] != "gzip+base64" {
			t.Errorf("%s: encoding %q", name, x["guestinfo.ignition.config.data.encoding"])
		}
		if x["guestinfo.kubeup.cluster"] != "test" || x["guestinfo.kubeup.machine"] != m.Name {
			t.Errorf("%s: mark cluster=%q machine=%q", name, x["guestinfo.kubeup.cluster"], x["guestinfo.kubeup.machine"])
		}
		var macs []string
		for _, d := range vm.Config.Hardware.Device {
			if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
				c := nic.GetVirtualEthernetCard()
				macs = append(macs, c.MacAddress+"/"+c.AddressType)
				if b, ok := c.Backing.(*types.VirtualEthernetCardNetworkBackingInfo); !ok || b.DeviceName != "VM Network" {
					t.Errorf("%s: NIC backing %#v, want network VM Network", name, c.Backing)
				}
			}
		}
		if !slices.Equal(macs, []string{m.MAC + "/manual"}) {
			t.Errorf("%s: NICs %v, want one with %s/manual", name, macs, m.MAC)
		}
		ds := s.finder
		want, err := ds.Datastore(s.ctx, "LocalDS_0")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(vm.Datastore, want.Reference()) {
			t.Errorf("%s: datastores %v, want LocalDS_0 %v", name, vm.Datastore, want.Reference())
		}
	}
	// The template is left as it was.
	if tpl := s.props(template); !tpl.Config.Template || extra(tpl)["guestinfo.kubeup.cluster"] != "" {
		t.Errorf("template changed: template=%v mark=%q", tpl.Config.Template, extra(tpl)["guestinfo.kubeup.cluster"])
	}
}

func TestUpIdempotent(t *testing.T) {
	s := newSim(t)
	spec := testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11"))
	start := s.tasks()
	if err := s.session().Up(s.ctx, mustPlan(t, spec), false, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	before, tasks := s.names(), s.tasks()
	// The counter sees up's tasks: a clone and a power-on per VM.
	if tasks-start < 4 {
		t.Fatalf("the first up ran %d tasks, want at least 4: the task count cannot show a re-run's", tasks-start)
	}
	var ev events
	if err := s.session().Up(s.ctx, mustPlan(t, spec), false, ev.add); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	for _, name := range []string{"test-master", "test-node-1"} {
		if got := ev.what(name); !slices.Equal(got, []string{"exists"}) {
			t.Errorf("re-run, %s: events %v, want exists", name, got)
		}
	}
	if after := s.names(); !mapsEqual(before, after) {
		t.Errorf("re-run changed the inventory:\n before %v\n after  %v", before, after)
	}
	if n := s.tasks(); n != tasks {
		t.Errorf("re-run ran %d vSphere tasks, want none", n-tasks)
	}

	// A changed config is reported, not applied: the VM keeps the config it booted with.
	spec.Machines[1].Config = smallConfig("node-1-changed")
	old := extra(s.props("test-node-1"))["guestinfo.ignition.config.data"]
	ev = nil
	if err := s.session().Up(s.ctx, mustPlan(t, spec), false, ev.add); err != nil {
		t.Fatal(err)
	}
	if got := ev.what("test-node-1"); len(got) != 1 || !strings.Contains(ev[1].Detail, "another config") {
		t.Errorf("changed config: events %+v, want exists with 'another config'", ev)
	}
	if extra(s.props("test-node-1"))["guestinfo.ignition.config.data"] != old || s.tasks() != tasks {
		t.Error("a re-run with a changed config changed the VM")
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// bigConfig is a valid Ignition config whose gzip+base64 is over the guestinfo limit: a file of
// incompressible bytes, as a large bundle of certificates and manifests can be.
func bigConfig(t *testing.T) []byte {
	t.Helper()
	blob := make([]byte, 80*1024)
	rand.Read(blob)
	raw := fmt.Appendf(nil, `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/opt/blob","mode":384,"contents":{"source":"data:;base64,%s"}}]}}`,
		base64.StdEncoding.EncodeToString(blob))
	if err := ignition.Check(raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestUpOversizeConfigGetsPointer(t *testing.T) {
	s := newSim(t)
	big := machine("master", "master", "00:50:56:00:00:10")
	big.Config = bigConfig(t)
	p := mustPlan(t, testSpec("test", big, machine("node-1", "node", "00:50:56:00:00:11")))
	const url = "https://configs.example.internal/vsphere/master.ign"
	if p.VMs[0].PointerURL != url || p.VMs[1].PointerURL != "" {
		t.Fatalf("pointer URLs %q, %q; want %q for the master only", p.VMs[0].PointerURL, p.VMs[1].PointerURL, url)
	}
	var out strings.Builder
	p.Print(&out)
	if !strings.Contains(out.String(), "serve /state/vsphere/ignition/master.ign at "+url) || !strings.Contains(out.String(), "CA keys") {
		t.Errorf("the plan does not say which file to serve where:\n%s", out.String())
	}
	if err := s.session().Up(s.ctx, p, false, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	x := extra(s.props("test-master"))
	if n := len(x["guestinfo.ignition.config.data"]); n > GuestinfoLimit {
		t.Errorf("guestinfo holds %d bytes, over the limit", n)
	}
	ptr := decode(t, x["guestinfo.ignition.config.data"])
	// Ignition's own parser accepts it, and it points at the full config, pinned by its hash.
	if err := ignition.Check(ptr); err != nil {
		t.Fatalf("pointer config: %v\n%s", err, ptr)
	}
	var cfg struct {
		Ignition struct {
			Config struct {
				Replace struct {
					Source       string
					Verification struct{ Hash string }
				}
			}
		}
	}
	if err := json.Unmarshal(ptr, &cfg); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(big.Config)
	rep := cfg.Ignition.Config.Replace
	if rep.Source != url || rep.Verification.Hash != "sha512-"+hex.EncodeToString(sum[:]) {
		t.Errorf("pointer replaces with %s %s; want %s sha512 of the master's config", rep.Source, rep.Verification.Hash, url)
	}
	// The small node config still goes inline.
	if got := decode(t, extra(s.props("test-node-1"))["guestinfo.ignition.config.data"]); string(got) != string(p.VMs[1].Config) {
		t.Errorf("node-1: guestinfo %q, want its config inline", got)
	}

	// Without a configURL there is nowhere to put it: the plan says so and what to set.
	spec := testSpec("test", big)
	spec.ConfigURL = ""
	if _, err := NewPlan(spec); err == nil || !strings.Contains(err.Error(), "vsphere.configURL") {
		t.Errorf("no configURL: error %v, want one naming vsphere.configURL", err)
	}
}

func TestUpRefusesVMItDidNotMake(t *testing.T) {
	s := newSim(t)
	// Someone's VM with the name kubeup would give the master, and one marked for another
	// cluster with the node's name.
	foreign := s.clone("test-master", nil)
	other := s.clone("test-node-1", []types.BaseOptionValue{&types.OptionValue{Key: "guestinfo.kubeup.cluster", Value: "other"},
		&types.OptionValue{Key: "guestinfo.kubeup.machine", Value: "node-1"}})
	before, tasks := s.names(), s.tasks()
	beforeX := extra(s.props("test-master"))
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11"),
		machine("node-2", "node", "00:50:56:00:00:12")))
	err := s.session().Up(s.ctx, p, false, func(Event) {})
	if err == nil {
		t.Fatal("up made VMs beside ones it did not make")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{"test-master", "no kubeup mark", `cluster "other"`, "left alone", "nothing made"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Nothing made (not even node-2, which was free), nothing touched.
	if after := s.names(); !mapsEqual(before, after) {
		t.Errorf("inventory changed:\n before %v\n after  %v", before, after)
	}
	if s.tasks() != tasks {
		t.Error("up ran tasks although it refused")
	}
	if after := s.props("test-master"); !mapsEqual(beforeX, extra(after)) || after.Self != foreign {
		t.Error("the foreign VM was changed")
	}
	if s.props("test-node-1").Self != other {
		t.Error("the other cluster's VM was replaced")
	}
}

// clone makes a VM the test's way, not kubeup's: from the template, with extraConfig x.
func (s *sim) clone(name string, x []types.BaseOptionValue) types.ManagedObjectReference {
	s.t.Helper()
	tpl := s.vm(template)
	folder, err := s.finder.Folder(s.ctx, "vm")
	if err != nil {
		s.t.Fatal(err)
	}
	pool, err := s.finder.DefaultResourcePool(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	ref := pool.Reference()
	res, err := run(s.ctx, "clone", name, func(ctx context.Context) (*object.Task, error) {
		return tpl.Clone(ctx, folder, name, types.VirtualMachineCloneSpec{Location: types.VirtualMachineRelocateSpec{Pool: &ref},
			Config: &types.VirtualMachineConfigSpec{ExtraConfig: x}, PowerOn: true})
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return res.(types.ManagedObjectReference)
}

func TestUpDryRunMakesNothing(t *testing.T) {
	s := newSim(t)
	sess := s.session()
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11")))
	before, tasks := s.names(), s.tasks()
	var ev events
	if err := sess.Up(s.ctx, p, true, ev.add); err != nil {
		t.Fatal(err)
	}
	if got := ev.what("test-master"); !slices.Equal(got, []string{"would clone"}) {
		t.Errorf("dry run: events %v, want would clone", got)
	}
	if !mapsEqual(before, s.names()) || s.tasks() != tasks {
		t.Error("the dry run changed vSphere")
	}
	// A dry run still checks what up needs: a missing template is an error naming it.
	p.Template = "no-such-template"
	if err := sess.Up(s.ctx, p, true, ev.add); err == nil || !strings.Contains(err.Error(), `template "no-such-template"`) {
		t.Errorf("dry run with a missing template: %v", err)
	}
}

func TestUpFailedTaskSurfacesFault(t *testing.T) {
	s := newSim(t)
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10")))

	// A fault of the call: vCenter refuses the clone.
	s.model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: "CloneVM_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeNoPermission, Message: "Permission to perform this operation was denied.", Enabled: true})
	err := s.session().Up(s.ctx, p, false, func(Event) {})
	t.Logf("refused clone: %v", err)
	var op *OpError
	if !errors.As(err, &op) || !strings.HasPrefix(op.Op, "clone") || op.VM != "test-master" || op.Fault != "NoPermission" ||
		!strings.Contains(err.Error(), "Permission to perform this operation was denied.") {
		t.Errorf("refused clone: %v (%#v)", err, op)
	}
	s.model.Service.ClearFaultRules()

	// A fault of the task: the clone lands on a host in maintenance mode, where it cannot power on.
	hosts, err := s.finder.HostSystemList(s.ctx, "*/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if _, err := run(s.ctx, "maintenance", h.Name(), func(ctx context.Context) (*object.Task, error) {
			return h.EnterMaintenanceMode(ctx, 0, false, nil)
		}); err != nil {
			t.Fatal(err)
		}
	}
	err = s.session().Up(s.ctx, p, false, func(Event) {})
	t.Logf("power on in maintenance mode: %v", err)
	if !errors.As(err, &op) || op.Op != "power on" || op.VM != "test-master" || op.Fault != "InvalidState" {
		t.Errorf("power on in maintenance mode: %v (%#v)", err, op)
	}
	if !strings.Contains(err.Error(), "power on test-master") || !strings.Contains(err.Error(), "run up again") {
		t.Errorf("error %q names neither the step and VM nor what to do", err)
	}

	// As the error says, once the hosts are back a re-run goes on: it powers the VM on and
	// clones nothing.
	for _, h := range hosts {
		if _, err := run(s.ctx, "exit maintenance", h.Name(), func(ctx context.Context) (*object.Task, error) {
			return h.ExitMaintenanceMode(ctx, 0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	ref := s.vm("test-master").Reference()
	var ev events
	if err := s.session().Up(s.ctx, p, false, ev.add); err != nil {
		t.Fatal(err)
	}
	if got := ev.what("test-master"); !slices.Equal(got, []string{"exists", "powered on"}) || s.vm("test-master").Reference() != ref {
		t.Errorf("re-run after the failure: events %v, want exists, powered on, of the same VM", got)
	}
	if st := s.props("test-master").Runtime.PowerState; st != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("after the re-run test-master is %s", st)
	}
}

func TestUpNamesMissingInventory(t *testing.T) {
	s := newSim(t)
	before := s.names()
	for _, tc := range []struct {
		name  string
		edit  func(*Spec, *Credentials)
		wants []string
	}{
		{"datastore", func(sp *Spec, _ *Credentials) { sp.Datastore = "nope" }, []string{`vsphere.datastore "nope"`, "govc ls /DC0/datastore"}},
		{"network", func(sp *Spec, _ *Credentials) { sp.Network = "nope" }, []string{`vsphere.network "nope"`, "govc ls /DC0/network"}},
		{"folder", func(_ *Spec, c *Credentials) { c.Folder = "nope" }, []string{`GOVC_FOLDER "nope"`}},
		{"pool", func(_ *Spec, c *Credentials) { c.ResourcePool = "nope" }, []string{"resource pool", "GOVC_RESOURCE_POOL"}},
	} {
		spec, creds := testSpec("test", machine("master", "master", "00:50:56:00:00:10")), s.creds
		tc.edit(&spec, &creds)
		sess, err := Connect(s.ctx, creds, "DC0")
		if err != nil {
			t.Fatal(err)
		}
		err = sess.Up(s.ctx, mustPlan(t, spec), false, func(Event) {})
		_ = sess.Close(s.ctx)
		for _, want := range tc.wants {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want it to say %q", tc.name, err, want)
			}
		}
	}
	if _, err := Connect(s.ctx, s.creds, "DC9"); err == nil || !strings.Contains(err.Error(), `vsphere.datacenter "DC9"`) {
		t.Errorf("missing datacenter: %v", err)
	}
	if !mapsEqual(before, s.names()) {
		t.Error("a failed up made VMs")
	}
}
