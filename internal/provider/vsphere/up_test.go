package vsphere

import (
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"
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
