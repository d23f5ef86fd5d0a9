package vsphere

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim runs no guest: the test plays VMware Tools by setting a VM's heartbeat and address
// the way vCenter does when the guest's tools report.
func (s *sim) guestUp(name, ip string) {
	s.t.Helper()
	obj := s.model.Map().Get(s.vm(name).Reference()).(*simulator.VirtualMachine)
	ctx := s.model.Service.Context
	s.model.Map().WithLock(ctx, obj, func() {
		s.model.Map().Update(ctx, obj, []types.PropertyChange{
			{Name: "guestHeartbeatStatus", Val: types.ManagedEntityStatusGreen},
			{Name: "guest.ipAddress", Val: ip},
		})
	})
}

func TestWaitForGuestHeartbeat(t *testing.T) {
	s := newSim(t)
	sess := s.session()
	p := mustPlan(t, testSpec("test", machine("master", "master", "00:50:56:00:00:10"), machine("node-1", "node", "00:50:56:00:00:11")))
	if err := sess.Up(s.ctx, p, false, func(Event) {}); err != nil {
		t.Fatal(err)
	}
	s.guestUp("test-master", "10.40.0.10")
	// vcsim leaves guestHeartbeatStatus unset where vCenter says gray: "(not seen)" below.

	// node-1's guest never reports: the wait ends at its deadline and says what it last saw.
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	var ev events
	err := sess.Wait(ctx, p, ev.add)
	t.Logf("wait: %v", err)
	if err == nil || !strings.Contains(err.Error(), "test-node-1: power poweredOn, guest heartbeat (not seen)") || strings.Contains(err.Error(), "test-master:") {
		t.Errorf("wait with node-1 silent: %v; want a deadline naming test-node-1 alone with its last state", err)
	}
	if len(ev) != 1 || ev[0].VM != "test-master" || ev[0].What != "ready" || !strings.Contains(ev[0].Detail, "10.40.0.10") {
		t.Errorf("events %+v, want test-master ready at 10.40.0.10", ev)
	}

	// Once it reports, the wait returns for both.
	s.guestUp("test-node-1", "10.40.0.11")
	ev = nil
	ctx, cancel = context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := sess.Wait(ctx, p, ev.add); err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 || ev[1].VM != "test-node-1" || ev[1].What != "ready" {
		t.Errorf("events %+v, want both ready", ev)
	}
}
