package vsphere

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/simulator"
)

func TestDownDeletesExactlyTheClustersVMs(t *testing.T) {
	s := newSim(t)
	sess := s.session()
	a := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11")))
	b := mustPlan(t, testSpec("other", machine("master", "master", "00:50:56:00:00:20")))
	for _, p := range []*Plan{a, b} {
		if err := sess.Up(s.ctx, p, false, func(Event) {}); err != nil {
			t.Fatal(err)
		}
	}
	// A VM made by hand whose name starts like the cluster's, and one of the cluster's VMs
	// that someone powered off.
	s.clone("test-node-9", nil)
	if _, err := run(s.ctx, "power off", "test-node-1", s.vm("test-node-1").PowerOff); err != nil {
		t.Fatal(err)
	}
	before, tasks := s.names(), s.tasks()

	var ev events
	if err := sess.Down(s.ctx, "test", true, ev.add); err != nil {
		t.Fatal(err)
	}
	if got := ev.what("test-master"); !slices.Equal(got, []string{"would delete"}) || len(ev) != 2 {
		t.Errorf("dry run: events %+v, want would delete for test-master and test-node-1", ev)
	}
	if !mapsEqual(before, s.names()) || s.tasks() != tasks {
		t.Error("the dry run changed vSphere")
	}

	ev = nil
	if err := sess.Down(s.ctx, "test", false, ev.add); err != nil {
		t.Fatal(err)
	}
	after := s.names()
	for name := range before {
		_, kept := after[name]
		if gone, want := !kept, name == "test-master" || name == "test-node-1"; gone != want {
			t.Errorf("%s: deleted=%v, want %v", name, gone, want)
		}
	}
	for _, name := range []string{"test-master", "test-node-1"} {
		if got := ev.what(name); !slices.Equal(got, []string{"deleted"}) {
			t.Errorf("%s: events %v, want deleted", name, got)
		}
	}
	for _, keep := range []string{"other-master", "test-node-9", template, "DC0_C0_RP0_VM1"} {
		if _, ok := after[keep]; !ok {
			t.Errorf("down deleted %s, which is not the cluster's", keep)
		}
	}

	// Nothing left: a second down has nothing to do.
	ev = nil
	if err := sess.Down(s.ctx, "test", false, ev.add); err != nil || len(ev) != 0 {
		t.Errorf("second down: %v, events %+v; want nothing", err, ev)
	}
}

func TestDownReportsWhatItCouldNotDelete(t *testing.T) {
	s := newSim(t)
	sess := s.session()
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11")))
	if err := sess.Up(s.ctx, p, false, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	// vCenter refuses to destroy the master; down still deletes the node and names the master.
	s.model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: "Destroy_Task", ObjectType: "VirtualMachine", ObjectName: "test-master",
		Probability: 1, FaultType: simulator.FaultTypeNoPermission, Message: "Permission to perform this operation was denied.", Enabled: true})
	var ev events
	err := sess.Down(s.ctx, "test", false, ev.add)
	t.Logf("down: %v", err)
	var op *OpError
	if !errors.As(err, &op) || op.Op != "destroy" || op.VM != "test-master" || op.Fault != "NoPermission" {
		t.Fatalf("down with a refused destroy: %v", err)
	}
	if !strings.Contains(err.Error(), "could not delete test-master") {
		t.Errorf("error %q does not list what is left", err)
	}
	names := s.names()
	if _, ok := names["test-master"]; !ok {
		t.Error("test-master is gone although its destroy was refused")
	}
	if _, ok := names["test-node-1"]; ok || !slices.Equal(ev.what("test-node-1"), []string{"deleted"}) {
		t.Error("down stopped at the master instead of deleting the node")
	}
}
