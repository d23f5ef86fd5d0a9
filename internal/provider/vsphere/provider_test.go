package vsphere

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
// the master is refused, because its etcd data would go with its disk; the other VMs stay.
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

	err := p.Replace(ctx, "master", ignition.Config{Name: "master", Role: "master", Raw: smallConfig("new")})
	if err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("replace the master: %v, want a refusal naming etcd's data", err)
	}
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
