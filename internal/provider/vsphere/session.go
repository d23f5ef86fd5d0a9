package vsphere

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	kmachine "kubeup.dev/kubeup/internal/machine"
)

// Session is a login to vSphere, scoped to one datacenter.
type Session struct {
	client *govmomi.Client
	creds  Credentials
	finder *find.Finder
	dc     *object.Datacenter
}

// Connect logs in and finds the datacenter.
func Connect(ctx context.Context, creds Credentials, datacenter string) (*Session, error) {
	client, err := creds.connect(ctx)
	if err != nil {
		return nil, err
	}
	s := &Session{client: client, creds: creds, finder: find.NewFinder(client.Client, false)}
	if s.dc, err = s.finder.Datacenter(ctx, datacenter); err != nil {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("vsphere.datacenter %q on %s: %w (fix: name a datacenter of the server: govc ls /)", datacenter, creds, err)
	}
	s.finder.SetDatacenter(s.dc)
	return s, nil
}

// Close logs out.
func (s *Session) Close(ctx context.Context) error {
	return s.client.Logout(ctx)
}

// propHeartbeat is VMware Tools' heartbeat as vCenter shows it: green once the guest runs them.
const propHeartbeat = "guestHeartbeatStatus"

// found is one VM of the datacenter, with kubeup's mark if it has one.
type found struct {
	ref      types.ManagedObjectReference
	name     string
	cluster  string // guestinfo.kubeup.cluster
	machine  string // guestinfo.kubeup.machine
	sum      string // guestinfo.kubeup.config.sha256
	image    string // guestinfo.kubeup.image
	power    types.VirtualMachinePowerState
	template bool
	// heartbeat is VMware Tools' heartbeat: green once the guest OS runs its tools.
	heartbeat types.ManagedEntityStatus
	// reports are the guestinfo variables the machine's agent set (machine.GuestinfoKeys).
	reports map[string]string
}

// ours says whether kubeup made the VM for the cluster.
func (f *found) ours(cluster string) bool { return f.cluster == cluster && cluster != "" }

// vms lists every VM and template of the datacenter with its mark. One container view with the
// few properties needed: the inventory may be large, the mark is only in extraConfig, and the
// property collector cannot filter on it.
func (s *Session) vms(ctx context.Context) ([]found, error) {
	m := view.NewManager(s.client.Client)
	v, err := m.CreateContainerView(ctx, s.dc.Reference(), []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("list the VMs of datacenter %s: %w", s.dc.Name(), err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var mos []mo.VirtualMachine
	props := []string{"name", "config.extraConfig", "config.template", "runtime.powerState", propHeartbeat}
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, props, &mos); err != nil {
		return nil, fmt.Errorf("list the VMs of datacenter %s: %w", s.dc.Name(), err)
	}
	out := make([]found, 0, len(mos))
	for _, vm := range mos {
		f := found{ref: vm.Self, name: vm.Name, power: vm.Runtime.PowerState, heartbeat: vm.GuestHeartbeatStatus, reports: map[string]string{}}
		if vm.Config != nil {
			f.template = vm.Config.Template
			for _, o := range vm.Config.ExtraConfig {
				ov := o.GetOptionValue()
				val, _ := ov.Value.(string)
				switch ov.Key {
				case keyCluster:
					f.cluster = val
				case keyMachine:
					f.machine = val
				case keyConfig:
					f.sum = val
				case keyImage:
					f.image = val
				default:
					if slices.Contains(kmachine.GuestinfoKeys, ov.Key) {
						f.reports[ov.Key] = val
					}
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// place is where clones go, found once per up.
type place struct {
	template *object.VirtualMachine
	folder   *object.Folder
	pool     *object.ResourcePool
	ds       *object.Datastore
	backing  types.BaseVirtualDeviceBackingInfo
}

// locate finds the template, datastore, network, folder and pool, naming the missing one and
// the govc command that lists the candidates.
func (s *Session) locate(ctx context.Context, p *Plan) (*place, error) {
	var pl place
	var err error
	dc := s.dc.Name()
	if pl.template, err = s.finder.VirtualMachine(ctx, p.Template); err != nil {
		return nil, fmt.Errorf("template %q in datacenter %s: %w (fix: set vsphere.template or --packer-manifest to the baked template: govc find / -type m)", p.Template, dc, err)
	}
	if pl.ds, err = s.finder.Datastore(ctx, p.Datastore); err != nil {
		return nil, fmt.Errorf("vsphere.datastore %q in datacenter %s: %w (fix: govc ls /%s/datastore)", p.Datastore, dc, err, dc)
	}
	netRef, err := s.finder.Network(ctx, p.Network)
	if err != nil {
		return nil, fmt.Errorf("vsphere.network %q in datacenter %s: %w (fix: govc ls /%s/network)", p.Network, dc, err, dc)
	}
	if pl.backing, err = netRef.EthernetCardBackingInfo(ctx); err != nil {
		return nil, fmt.Errorf("vsphere.network %q: %w", p.Network, err)
	}
	if s.creds.Folder != "" {
		if pl.folder, err = s.finder.Folder(ctx, s.creds.Folder); err != nil {
			return nil, fmt.Errorf("GOVC_FOLDER %q: %w (fix: govc find / -type f)", s.creds.Folder, err)
		}
	} else {
		folders, err := s.dc.Folders(ctx)
		if err != nil {
			return nil, fmt.Errorf("the VM folder of datacenter %s: %w", dc, err)
		}
		pl.folder = folders.VmFolder
	}
	if s.creds.ResourcePool != "" {
		pl.pool, err = s.finder.ResourcePool(ctx, s.creds.ResourcePool)
	} else {
		pl.pool, err = s.finder.DefaultResourcePool(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("resource pool in datacenter %s: %w (fix: set GOVC_RESOURCE_POOL to one of: govc find / -type p)", dc, err)
	}
	return &pl, nil
}
