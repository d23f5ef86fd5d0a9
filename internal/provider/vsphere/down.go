package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// Down powers off and destroys every VM of the datacenter that kubeup made for the cluster
// (found by its mark, whatever the config lists now) and nothing else. It goes on past a VM it
// cannot delete and returns an error naming each one. With dryRun it reports what it would
// delete.
func (s *Session) Down(ctx context.Context, cluster string, dryRun bool, report func(Event)) error {
	all, err := s.vms(ctx)
	if err != nil {
		return err
	}
	var failed []error
	var left []string
	for _, f := range all {
		if !f.ours(cluster) {
			continue
		}
		ev := Event{Machine: f.machine, VM: f.name}
		if f.template {
			// Someone turned a cluster VM into a template: others may clone from it now.
			ev.What, ev.Detail = "left", "it is a template now: remove it yourself if nobody clones from it"
			report(ev)
			continue
		}
		if dryRun {
			ev.What, ev.Detail = "would delete", string(f.power)
			report(ev)
			continue
		}
		if err := s.destroy(ctx, f); err != nil {
			failed = append(failed, err)
			left = append(left, f.name)
			continue
		}
		ev.What = "deleted"
		report(ev)
	}
	if len(failed) > 0 {
		return fmt.Errorf("vsphere down: could not delete %s: %w\n  (fix: see each error; run down again once fixed, it deletes only what is left)",
			strings.Join(left, ", "), errors.Join(failed...))
	}
	return nil
}

func (s *Session) destroy(ctx context.Context, f found) error {
	vm := object.NewVirtualMachine(s.client.Client, f.ref)
	if f.power != types.VirtualMachinePowerStatePoweredOff {
		_, err := run(ctx, "power off", f.name, vm.PowerOff)
		// Powered off since it was listed: what down wanted anyway.
		if err != nil && !fault.IsAlreadyPoweredOffError(err) {
			return err
		}
	}
	_, err := run(ctx, "destroy", f.name, vm.Destroy)
	return err
}
