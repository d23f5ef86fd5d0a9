package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// Event is one step of up, down or wait for one VM, for the caller to print.
type Event struct {
	Machine, VM string
	// What happened: exists, would clone, cloned, powered on, would delete, deleted, ready...
	What string
	// Detail adds what the step found: a power state, a MAC, an address.
	Detail string
}

// Up makes every VM of the plan that does not exist yet and powers it on. It checks every
// machine first: a VM of the same name that kubeup did not make for this machine of the
// cluster fails the run before anything is made, and is left alone. A VM that kubeup made is
// reported as existing and not changed, except that one powered off (an up that failed after the
// clone) is powered on. With dryRun it checks and reports, and changes nothing.
func (s *Session) Up(ctx context.Context, p *Plan, dryRun bool, report func(Event)) error {
	all, err := s.vms(ctx)
	if err != nil {
		return err
	}
	todo, stopped, err := s.sort(ctx, p, all, report)
	if err != nil {
		return err
	}
	// kubeup's VMs that do not run: an up that failed after the clone, or a VM stopped in
	// vSphere. Up means the cluster runs.
	for _, f := range stopped {
		if dryRun {
			report(Event{Machine: f.machine, VM: f.name, What: "would power on"})
			continue
		}
		if _, err := run(ctx, "power on", f.name, object.NewVirtualMachine(s.client.Client, f.ref).PowerOn); err != nil {
			return err
		}
		report(Event{Machine: f.machine, VM: f.name, What: "powered on"})
	}
	if len(todo) == 0 {
		return nil
	}
	// Looked up even for a dry run: it checks the template, datastore and network exist.
	pl, err := s.locate(ctx, p)
	if err != nil {
		return err
	}
	for _, vm := range todo {
		if dryRun {
			report(Event{Machine: vm.Machine.Name, VM: vm.Name, What: "would clone", Detail: "mac " + vm.MAC + " from " + pl.template.InventoryPath})
			continue
		}
		if err := s.make(ctx, p, pl, vm, report); err != nil {
			return fmt.Errorf("%w\n  the VMs made so far stay: run up again to go on, or down to remove them", err)
		}
	}
	return nil
}

// sort reports the VMs that exist and returns the ones to make or to power on; a VM in the way
// is an error.
func (s *Session) sort(ctx context.Context, p *Plan, all []found, report func(Event)) (todo []*VM, stopped []found, err error) {
	byName := map[string][]found{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	var conflicts []error
	for i := range p.VMs {
		vm := &p.VMs[i]
		var mine *found
		for _, f := range byName[vm.Name] {
			if f.ours(p.Cluster) && f.machine == vm.Machine.Name {
				mine = &f
				continue
			}
			// A VM kubeup did not make for this machine: never touched. Its path helps find it.
			path, _ := find.InventoryPath(ctx, s.client.Client, f.ref)
			mark := "no kubeup mark"
			if f.cluster != "" {
				mark = fmt.Sprintf("marked for machine %q of cluster %q", f.machine, f.cluster)
			}
			conflicts = append(conflicts, fmt.Errorf("machine %s: a VM named %s exists (%s, %s) that kubeup did not make for it: left alone (fix: rename or remove that VM, or give the cluster another name)",
				vm.Machine.Name, vm.Name, path, mark))
		}
		if mine == nil {
			todo = append(todo, vm)
			continue
		}
		ev := Event{Machine: vm.Machine.Name, VM: vm.Name, What: "exists", Detail: string(mine.power)}
		if mine.sum != vm.sum {
			ev.Detail += "; made with another config: left as it is ('kubeup down' then 'up' to remake it with this one)"
		}
		report(ev)
		if mine.power != types.VirtualMachinePowerStatePoweredOn && !mine.template {
			stopped = append(stopped, *mine)
		}
	}
	if len(conflicts) > 0 {
		return nil, nil, fmt.Errorf("vsphere up: nothing made: %w", errors.Join(conflicts...))
	}
	return todo, stopped, nil
}

// make clones one VM and powers it on.
func (s *Session) make(ctx context.Context, p *Plan, pl *place, vm *VM, report func(Event)) error {
	spec, err := s.cloneSpec(ctx, p, pl, vm)
	if err != nil {
		return err
	}
	res, err := run(ctx, "clone "+pl.template.InventoryPath+" to", vm.Name, func(ctx context.Context) (*object.Task, error) {
		return pl.template.Clone(ctx, pl.folder, vm.Name, *spec)
	})
	if err != nil {
		return err
	}
	ref, ok := res.(types.ManagedObjectReference)
	if !ok {
		return fmt.Errorf("clone %s: the task returned %T, not the new VM", vm.Name, res)
	}
	report(Event{Machine: vm.Machine.Name, VM: vm.Name, What: "cloned", Detail: "mac " + vm.MAC + ", " + ref.Value})
	clone := object.NewVirtualMachine(s.client.Client, ref)
	if _, err := run(ctx, "power on", vm.Name, clone.PowerOn); err != nil {
		return err
	}
	report(Event{Machine: vm.Machine.Name, VM: vm.Name, What: "powered on"})
	return nil
}

// cloneSpec places the clone and gives it the machine's MAC, network and guestinfo.
func (s *Session) cloneSpec(ctx context.Context, p *Plan, pl *place, vm *VM) (*types.VirtualMachineCloneSpec, error) {
	// Read per clone: each clone edits a card of its own.
	devices, err := pl.template.Device(ctx)
	if err != nil {
		return nil, fmt.Errorf("devices of template %s: %w", pl.template.InventoryPath, err)
	}
	card, err := nic(pl, vm, devices)
	if err != nil {
		return nil, err
	}
	ds, pool := pl.ds.Reference(), pl.pool.Reference()
	changes := []types.BaseVirtualDeviceConfigSpec{card}
	if vm.EtcdDisk != "" {
		disk, err := attachDisk(devices, ds, vm.EtcdDisk)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %w", vm.Machine.Name, err)
		}
		changes = append(changes, disk)
	}
	return &types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Datastore: &ds, Pool: &pool},
		Config: &types.VirtualMachineConfigSpec{
			ExtraConfig:  vm.extraConfig(p.Cluster, p.Template),
			DeviceChange: changes,
		},
		// Powered on by a task of its own, so that a failure says which step failed.
		PowerOn: false,
	}, nil
}

// nic edits the template's first network card into the machine's, or adds one (vmxnet3) to a
// template without any.
func nic(pl *place, vm *VM, devices object.VirtualDeviceList) (*types.VirtualDeviceConfigSpec, error) {
	mac, _ := net.ParseMAC(vm.MAC) // checked by NewPlan
	op := types.VirtualDeviceConfigSpecOperationEdit
	var dev types.BaseVirtualDevice
	var err error
	if nics := devices.SelectByType((*types.VirtualEthernetCard)(nil)); len(nics) > 0 {
		dev = nics[0]
	} else {
		op = types.VirtualDeviceConfigSpecOperationAdd
		if dev, err = devices.CreateEthernetCard("vmxnet3", pl.backing); err != nil {
			return nil, fmt.Errorf("network card for %s: %w", vm.Name, err)
		}
	}
	card := dev.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	card.Backing = pl.backing
	card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
	card.MacAddress = mac.String()
	card.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true, Connected: true}
	return &types.VirtualDeviceConfigSpec{Operation: op, Device: dev}, nil
}
