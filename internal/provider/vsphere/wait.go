package vsphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/types"
)

// Properties Wait watches.
const (
	propPower     = "runtime.powerState"
	propHeartbeat = "guestHeartbeatStatus"
	propIP        = "guest.ipAddress"
)

// Wait waits until every VM of the plan is powered on and its guest heartbeat is green: VMware
// Tools (open-vm-tools) runs in the guest, so the OS has booted. It says nothing about
// Kubernetes: the machines' agents report their phases on their consoles and as Kubernetes
// events, which kubeup verify checks. vSphere is the one witness every site has, without a
// network path from here to the machines. When ctx ends first, the error gives each waiting
// VM's last seen state.
func (s *Session) Wait(ctx context.Context, p *Plan, report func(Event)) error {
	all, err := s.vms(ctx)
	if err != nil {
		return err
	}
	var late []string
	for _, vm := range p.VMs {
		var ref *types.ManagedObjectReference
		for _, f := range all {
			if f.name == vm.Name && f.ours(p.Cluster) && f.machine == vm.Machine.Name {
				ref = &f.ref
			}
		}
		if ref == nil {
			return fmt.Errorf("wait for %s: no such VM of cluster %s (fix: kubeup up makes it)", vm.Name, p.Cluster)
		}
		last := map[string]any{}
		err := property.Wait(ctx, property.DefaultCollector(s.client.Client), *ref, []string{propPower, propHeartbeat, propIP},
			func(changes []types.PropertyChange) bool {
				for _, c := range changes {
					last[c.Name] = c.Val
				}
				return last[propPower] == types.VirtualMachinePowerStatePoweredOn && last[propHeartbeat] == types.ManagedEntityStatusGreen
			})
		if err != nil {
			if ctx.Err() == nil {
				return fmt.Errorf("wait for %s: %w", vm.Name, err)
			}
			late = append(late, fmt.Sprintf("%s: power %v, guest heartbeat %v", vm.Name, orNone(last[propPower]), orNone(last[propHeartbeat])))
			continue
		}
		detail := "guest heartbeat green"
		if ip, _ := last[propIP].(string); ip != "" {
			detail += ", address " + ip
		}
		report(Event{Machine: vm.Machine.Name, VM: vm.Name, What: "ready", Detail: detail})
	}
	if len(late) > 0 {
		return fmt.Errorf("wait for the VMs: %w; last seen:\n  %s\n  (a gray heartbeat means VMware Tools does not run in the guest yet: look at the VM's console in vSphere; the template needs open-vm-tools)",
			context.Cause(ctx), strings.Join(late, "\n  "))
	}
	return nil
}

func orNone(v any) any {
	if v == nil {
		return "(not seen)"
	}
	return v
}
