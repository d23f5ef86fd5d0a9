package vsphere

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	kmachine "kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/provider/vsphere/vspheretest"
)

// newProvider is the provider of configs/vsphere.yaml (cluster "vsphere": master, node-1,
// node-2) against a fresh vcsim, with the configs the tests deliver.
func newProvider(t *testing.T) (*Provider, *vspheretest.Sim, *bytes.Buffer) {
	t.Helper()
	v := vspheretest.Start(t, template)
	creds, err := credentialsFrom(env(map[string]string{"GOVC_URL": v.URL.String(), "GOVC_INSECURE": "1"}), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Load("../../../configs/vsphere.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := &Provider{Config: cfg, Dir: filepath.Join(t.TempDir(), "vsphere"), Template: template, Out: &out, Credentials: &creds}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	return p, v, &out
}

// bringUp runs the provider's steps of kubeup up, a VM per machine of the config.
func bringUp(t *testing.T, p *Provider, out *bytes.Buffer) {
	t.Helper()
	ctx := t.Context()
	if _, err := p.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Deliver(ctx, configsOf(p.Config)); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
}

func configsOf(cfg *cluster.Config) []ignition.Config {
	var cs []ignition.Config
	for _, m := range cfg.Machines {
		cs = append(cs, ignition.Config{Name: m.Name, Role: m.Role, Raw: smallConfig(m.Name)})
	}
	return cs
}

// TestProviderFollowsGuestinfo: the provider flow makes one VM per machine and reads each
// machine's progress back from its heartbeat and the guestinfo variables its agent sets, in
// the config's order; a VM powered off in vSphere shows as stopped.
func TestProviderFollowsGuestinfo(t *testing.T) {
	p, v, out := newProvider(t)
	ctx := t.Context()
	if _, err := p.Machines(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Machines before up: %v, want fs.ErrNotExist", err)
	}
	bringUp(t, p, out)
	if _, err := os.Stat(p.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("configs that fit guestinfo were written to %s: %v", p.Dir, err)
	}

	report := kmachine.Phase1Report{Machine: "node-1", Phase: "1", Pass: true}
	if err := v.Guest(ctx, "vsphere-node-1", map[string]string{kmachine.GuestinfoLast: "kubeup: node-1 phase 1 NodeSpec ok", kmachine.GuestinfoReport: report.Line()}); err != nil {
		t.Fatal(err)
	}
	if err := v.Guest(ctx, "vsphere-master", nil); err != nil { // the heartbeat only
		t.Fatal(err)
	}
	vm, err := v.Finder.VirtualMachine(ctx, "vsphere-node-2")
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm.PowerOff(ctx)
	if err != nil || task.Wait(ctx) != nil {
		t.Fatalf("power off node-2: %v", err)
	}

	ms, err := p.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		stage := "stopped"
		if m.Running {
			stage = m.Console.Stage()
		}
		got = append(got, m.Name+"/"+m.Role+": "+stage)
	}
	want := "master/master: booted; node-1/node: phase 1 passed; node-2/node: stopped"
	if strings.Join(got, "; ") != want {
		t.Errorf("machines: %s\nwant      %s", strings.Join(got, "; "), want)
	}
	if ep, _ := p.Endpoint(ctx); ep != "https://10.40.0.10:6443" {
		t.Errorf("endpoint %s", ep)
	}
}

// TestProviderReplace: a node is replaced by a new clone with the new config and the same MAC;
// the other VMs stay.
func TestProviderReplace(t *testing.T) {
	p, v, out := newProvider(t)
	ctx := t.Context()
	bringUp(t, p, out)
	ref := func(name string) types.ManagedObjectReference {
		vm, err := v.Finder.VirtualMachine(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return vm.Reference()
	}
	master, node1, node2 := ref("vsphere-master"), ref("vsphere-node-1"), ref("vsphere-node-2")

	newConfig := smallConfig("node-1-v2")
	if err := p.Replace(ctx, "node-1", ignition.Config{Name: "node-1", Role: "node", Raw: newConfig}); err != nil {
		t.Fatalf("replace node-1: %v\n%s", err, out)
	}
	if ref("vsphere-master") != master || ref("vsphere-node-2") != node2 {
		t.Error("replacing node-1 touched another VM")
	}
	if ref("vsphere-node-1") == node1 {
		t.Fatal("node-1 is the same VM as before")
	}
	vm, err := v.Finder.VirtualMachine(ctx, "vsphere-node-1")
	if err != nil {
		t.Fatal(err)
	}
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(nics) != 1 || nics[0].(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress != "00:50:56:00:00:11" {
		t.Errorf("the new node-1 has network cards %v, want one with the machine's MAC", nics)
	}
	if st, _ := vm.PowerState(ctx); st != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("the new node-1 is %s", st)
	}
	s := &sim{t: t, ctx: ctx, client: v.Client, finder: v.Finder}
	if got := decode(t, extra(s.props("vsphere-node-1"))[keyData]); !bytes.Equal(got, newConfig) {
		t.Errorf("the new node-1 carries %q, want the new config", got)
	}
	if err := p.Replace(ctx, "node-9", ignition.Config{Name: "node-9", Raw: newConfig}); err == nil {
		t.Error("replacing a machine the config does not have succeeded")
	}
}

// TestProviderDeliverWritesOnlyWhatTheOperatorServes: a config over the guestinfo limit is
// written 0600 under Dir, to serve at vsphere.configURL; one that fits is not written at all.
func TestProviderDeliverWritesOnlyWhatTheOperatorServes(t *testing.T) {
	p, _, out := newProvider(t)
	p.Config.VSphere.ConfigURL = "https://configs.example.internal/vsphere/"
	configs := configsOf(p.Config)
	configs[0].Raw = bigConfig(t)
	if err := p.Deliver(t.Context(), configs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(p.Dir, "ignition", "master.ign"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the master's config to serve: %v, %v", fi, err)
	}
	if !strings.Contains(out.String(), "serve "+filepath.Join(p.Dir, "ignition", "master.ign")+" at https://configs.example.internal/vsphere/master.ign") {
		t.Errorf("the plan does not say where to serve it:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "ignition", "node-1.ign")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("node-1's config fits guestinfo but was written: %v", err)
	}
}

// disks lists the VMDK files attached to VM name.
func disks(t *testing.T, v *vspheretest.Sim, name string) []string {
	t.Helper()
	vm, err := v.Finder.VirtualMachine(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	devices, err := vm.Device(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		if b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			files = append(files, b.GetVirtualDeviceFileBackingInfo().FileName)
		}
	}
	return files
}

// TestProviderKeepsTheMastersEtcdDisk: Prepare makes the master's etcd disk and has the
// master's config mount it by its UUID; Create attaches it to the master's clone only; a
// replaced master gets a new VM (from another template, which its mark records) and the same
// disk, which outlives the old VM; a second up keeps it; Down deletes it last.
func TestProviderKeepsTheMastersEtcdDisk(t *testing.T) {
	p, v, out := newProvider(t)
	ctx := t.Context()
	prep, err := p.Prepare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file := EtcdDiskPath("LocalDS_0", "vsphere", "master")
	s, _ := p.session(ctx)
	uuid, made, err := s.etcdDisk(ctx, file, true)
	if err != nil || uuid == "" || made {
		t.Fatalf("after Prepare: disk %s: uuid %q, %v", file, uuid, err)
	}
	if prep.Render.EtcdDevice != EtcdDevice(uuid) || !strings.HasPrefix(prep.Render.EtcdDevice, "/dev/disk/by-id/wwn-0x") {
		t.Errorf("render option EtcdDevice %q, want %q", prep.Render.EtcdDevice, EtcdDevice(uuid))
	}
	if err := p.Deliver(ctx, configsOf(p.Config)); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if !slices.Contains(disks(t, v, "vsphere-master"), file) {
		t.Errorf("the master's disks %v lack %s", disks(t, v, "vsphere-master"), file)
	}
	if slices.Contains(disks(t, v, "vsphere-node-1"), file) {
		t.Error("node-1 got the etcd disk")
	}
	if x := extra((&sim{t: t, ctx: ctx, client: v.Client, finder: v.Finder}).props("vsphere-master")); x[keyDiskUUID] != "TRUE" {
		t.Errorf("%s = %q: the guest would not see the disk's UUID", keyDiskUUID, x[keyDiskUUID])
	}

	if img, err := p.BootedImage(ctx, "master"); err != nil || img != template {
		t.Errorf("BootedImage = %q, %v; want %s", img, err, template)
	}
	old, err := v.Finder.VirtualMachine(ctx, "vsphere-master")
	if err != nil {
		t.Fatal(err)
	}
	// An upgrade's replacement: a clone of another template (vcsim's second VM).
	p.Template = "DC0_C0_RP0_VM1"
	if err := p.Replace(ctx, "master", ignition.Config{Name: "master", Role: "master", Raw: smallConfig("master-v2")}); err != nil {
		t.Fatalf("replace the master: %v\n%s", err, out)
	}
	if img, err := p.BootedImage(ctx, "master"); err != nil || img != p.Template {
		t.Errorf("BootedImage after the replacement = %q, %v; want %s", img, err, p.Template)
	}
	now, err := v.Finder.VirtualMachine(ctx, "vsphere-master")
	if err != nil || now.Reference() == old.Reference() {
		t.Fatalf("the master was not cloned again: %v", err)
	}
	if !slices.Contains(disks(t, v, "vsphere-master"), file) {
		t.Errorf("the new master's disks %v lack %s", disks(t, v, "vsphere-master"), file)
	}
	if again, _, err := s.etcdDisk(ctx, file, true); err != nil || again != uuid {
		t.Errorf("after the replacement: disk uuid %q, %v; want the same disk, %q", again, err, uuid)
	}
	if !strings.Contains(out.String(), "detached") {
		t.Errorf("the replacement does not say it kept the disk:\n%s", out)
	}

	// A second up finds the disk: the cluster's data is never made again.
	out.Reset()
	if prep, err := p.Prepare(ctx); err != nil || prep.Render.EtcdDevice != EtcdDevice(uuid) {
		t.Errorf("second Prepare: %v, %+v", err, prep.Render)
	}
	if !strings.Contains(out.String(), "exists") {
		t.Errorf("second Prepare does not say the disk exists:\n%s", out)
	}

	out.Reset()
	p.DryRun = true
	if err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "would delete") || !strings.Contains(out.String(), "kubeup-vsphere") {
		t.Errorf("down --dry-run does not name the etcd disk's folder:\n%s", out)
	}
	p.DryRun = false
	if err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if uuid, _, err := s.etcdDisk(ctx, file, true); err != nil || uuid != "" {
		t.Errorf("after down: disk uuid %q, %v; want none", uuid, err)
	}
	if dir, err := s.deleteEtcdFolder(ctx, "LocalDS_0", "vsphere", true); err != nil || dir != "" {
		t.Errorf("after down: folder %q, %v; want none", dir, err)
	}
}
