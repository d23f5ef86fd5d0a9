package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// The master keeps etcd's data on a disk of its own, as on QEMU and AWS, so that a new root (a
// new template, a new config) keeps the cluster's data: a VMDK in the datastore folder
// kubeup-<cluster>, apart from any VM's folder. Prepare makes it, Create attaches it to the
// master's clone, Replace moves it from the old VM to the new one, and Down deletes it.

// EtcdDiskGiB is the size of a new etcd disk, thin provisioned.
const EtcdDiskGiB = 20

// keyDiskUUID makes the guest see each SCSI disk's VMDK UUID as its WWN, which udev turns into
// /dev/disk/by-id/wwn-0x<uuid>: a name the config can give before the VM exists.
const keyDiskUUID = "disk.EnableUUID"

// etcdFolder is the datastore folder of cluster's etcd disks.
func etcdFolder(cluster string) string { return "kubeup-" + cluster }

// EtcdDiskPath is the datastore path of machine's etcd disk in cluster's folder.
func EtcdDiskPath(datastore, cluster, machine string) string {
	return fmt.Sprintf("[%s] %s/%s-etcd.vmdk", datastore, etcdFolder(cluster), machine)
}

// EtcdDevice is the guest's name for the disk whose VMDK has uuid, as QueryVirtualDiskUuid
// gives it ("60 00 C2 9b ... 4a"): with disk.EnableUUID set, Linux reads the UUID as the SCSI
// disk's NAA WWN.
func EtcdDevice(uuid string) string {
	return "/dev/disk/by-id/wwn-0x" + strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(uuid))
}

// etcdDisk finds the etcd disk at file and returns its UUID; it makes the disk (and its
// folder) when there is none, unless dryRun. made says it was made now; uuid is "" for a dry run
// that found none.
func (s *Session) etcdDisk(ctx context.Context, file string, dryRun bool) (uuid string, made bool, err error) {
	m := object.NewVirtualDiskManager(s.client.Client)
	uuid, err = m.QueryVirtualDiskUuid(ctx, file, s.dc)
	if err == nil {
		return uuid, false, nil
	}
	if !notFound(err) {
		return "", false, opError("look up etcd disk", file, err)
	}
	if dryRun {
		return "", false, nil
	}
	dir := strings.TrimSuffix(path.Dir(file), "/")
	if err := object.NewFileManager(s.client.Client).MakeDirectory(ctx, dir, s.dc, true); err != nil && !fault.Is(err, &types.FileAlreadyExists{}) {
		return "", false, opError("make folder", dir, err)
	}
	spec := &types.FileBackedVirtualDiskSpec{
		VirtualDiskSpec: types.VirtualDiskSpec{
			DiskType:    string(types.VirtualDiskTypeThin),
			AdapterType: string(types.VirtualDiskAdapterTypeLsiLogic),
		},
		CapacityKb: EtcdDiskGiB * 1024 * 1024,
	}
	if _, err := run(ctx, "create etcd disk", file, func(ctx context.Context) (*object.Task, error) {
		return m.CreateVirtualDisk(ctx, file, s.dc, spec)
	}); err != nil {
		return "", false, err
	}
	if uuid, err = m.QueryVirtualDiskUuid(ctx, file, s.dc); err != nil {
		return "", true, opError("look up etcd disk", file, err)
	}
	return uuid, true, nil
}

// deleteEtcdFolder deletes cluster's etcd disk folder in datastore, with the disks in it,
// whatever machines the config names now; with dryRun only says whether there is one. A folder
// that is not there (never made, or deleted already) is no error. found is its path, or "".
func (s *Session) deleteEtcdFolder(ctx context.Context, datastore, cluster string, dryRun bool) (found string, err error) {
	ds, err := s.finder.Datastore(ctx, datastore)
	if err != nil {
		return "", fmt.Errorf("vsphere.datastore %q: %w", datastore, err)
	}
	dir := ds.Path(etcdFolder(cluster))
	if _, err := ds.Stat(ctx, etcdFolder(cluster)); err != nil {
		var noDir object.DatastoreNoSuchDirectoryError
		var noFile object.DatastoreNoSuchFileError
		if errors.As(err, &noDir) || errors.As(err, &noFile) {
			return "", nil
		}
		return "", opError("look up", dir, err)
	}
	if dryRun {
		return dir, nil
	}
	_, err = run(ctx, "delete", dir, func(ctx context.Context) (*object.Task, error) {
		return object.NewFileManager(s.client.Client).DeleteDatastoreFile(ctx, dir, s.dc)
	})
	return dir, err
}

// notFound says the file does not exist (vCenter says FileNotFound; vcsim CannotAccessFile).
func notFound(err error) bool {
	return fault.Is(err, &types.FileNotFound{}) || fault.Is(err, &types.CannotAccessFile{})
}

// attachDisk is the device change that attaches the existing VMDK file to a VM whose devices
// are devices (the template's, for a clone), on its first SCSI controller's next free unit.
func attachDisk(devices object.VirtualDeviceList, ds types.ManagedObjectReference, file string) (*types.VirtualDeviceConfigSpec, error) {
	c, err := devices.FindSCSIController("")
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w (the template needs a SCSI controller for the etcd disk)", file, err)
	}
	disk := devices.CreateDisk(c, ds, file)
	// No FileOperation: the disk exists and is not the VM's to create.
	return &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: disk}, nil
}

// detachDisk removes the disk backed by file from vm, keeping the file, so that destroying vm
// (which deletes the disks attached to it) leaves it. A VM without that disk is left alone.
func (s *Session) detachDisk(ctx context.Context, f found, file string) error {
	vm := object.NewVirtualMachine(s.client.Client, f.ref)
	devices, err := vm.Device(ctx)
	if err != nil {
		return opError("devices of", f.name, err)
	}
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok || b.GetVirtualDeviceFileBackingInfo().FileName != file {
			continue
		}
		spec := types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d},
		}}
		_, err := run(ctx, "detach etcd disk from", f.name, func(ctx context.Context) (*object.Task, error) {
			return vm.Reconfigure(ctx, spec)
		})
		return err
	}
	return nil
}
