package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/provider/vsphere/vspheretest"
)

// playGuests plays, on every powered-on VM of cluster as it appears, a guest that booted and
// whose agent passed phase 1: the heartbeat green and the agent's lines in guestinfo, as a real
// VM's VMware Tools would leave them (vcsim runs no guest). It stops with ctx.
func playGuests(ctx context.Context, t *testing.T, sim *vspheretest.Sim, cluster string) {
	played := map[string]bool{}
	wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		vms, err := sim.Finder.VirtualMachineList(ctx, cluster+"-*")
		if err != nil {
			return false, nil
		}
		for _, vm := range vms {
			if played[vm.Name()] {
				continue
			}
			if st, err := vm.PowerState(ctx); err != nil || st != types.VirtualMachinePowerStatePoweredOn {
				continue
			}
			name := strings.TrimPrefix(vm.Name(), cluster+"-")
			report := machine.Phase1Report{Machine: name, Phase: "1", Pass: true, Checks: []machine.Check{{Name: "kubelet", Pass: true, Evidence: "active"}}}
			if err := sim.Guest(ctx, vm.Name(), map[string]string{
				machine.GuestinfoLast:   "kubeup: " + name + " phase 1 NodeSpec ok: 1 checks, failed: []",
				machine.GuestinfoReport: report.Line(),
			}); err != nil {
				if ctx.Err() == nil {
					t.Errorf("play the guest of %s: %v", vm.Name(), err)
				}
				return true, nil
			}
			played[vm.Name()] = true
		}
		return false, nil
	})
}

// vsphereStandIn starts vcsim with a template named as configs/vsphere.yaml's and points the
// govc environment at it alone, as a user's environment would point it at vCenter.
func vsphereStandIn(t *testing.T) *vspheretest.Sim {
	t.Helper()
	sim := vspheretest.Start(t, "kubeup-debian")
	t.Setenv("GOVC_URL", sim.URL.String())
	t.Setenv("GOVC_INSECURE", "1")
	for _, k := range []string{"GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_FOLDER", "GOVC_RESOURCE_POOL", "GOVC_TLS_CA_CERTS"} {
		t.Setenv(k, "")
	}
	return sim
}

// vsphereConfig is configs/vsphere.yaml with its machines on loopback addresses (127.0.114.x),
// so that what up and status send to the API server stays on this host.
func vsphereConfig(t *testing.T) (*cluster.Config, string) {
	t.Helper()
	src, err := os.ReadFile("../configs/vsphere.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "10.40.0.10:6443") {
		t.Fatal("configs/vsphere.yaml no longer has its endpoint at 10.40.0.10:6443")
	}
	path := filepath.Join(t.TempDir(), "vsphere.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(src), "10.40.0.", "127.0.114.")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// TestUpOnVSphereFollowsTheMachines drives kubeup up, status and down for configs/vsphere.yaml
// against vcsim, with GOVC_URL pointing at the simulator instead of the config's server, as on
// every other target: a dry run that changes nothing; the bundle, one VM per machine carrying
// its config, and each machine followed through the guestinfo its agent sets until --timeout
// says where things stand and where to look; kubeup status showing the same machines in the
// same shape; a re-run that changes nothing; a down that leaves only the bundle and the VMs
// that are not the cluster's.
func TestUpOnVSphereFollowsTheMachines(t *testing.T) {
	sim := vsphereStandIn(t)
	_, path := vsphereConfig(t)
	load := func() *cluster.Config {
		cfg, err := cluster.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	state := filepath.Join(t.TempDir(), "state")
	others := sim.VMNames(t)
	opt := cloudOptions{numNodes: 2, configPath: path}

	// A dry run prints the plan and makes nothing, in vSphere or on disk.
	var out bytes.Buffer
	dry := opt
	dry.dryRun = true
	if err := up(ctx, &out, load(), state, dry); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	t.Logf("dry run:\n%s", out.String())
	for _, want := range []string{"vsphere-master", "mac 00:50:56:00:00:10", "gzip+base64", "would clone", "would create", "etcd disk", "nothing was changed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("the dry run wrote the state directory")
	}
	if got := sim.VMNames(t); !slices.Equal(got, others) {
		t.Errorf("the dry run changed the VMs: %v", got)
	}

	// up: the guests boot and pass phase 1, but no API server answers at the endpoint.
	go playGuests(ctx, t, sim, "vsphere")
	out.Reset()
	timed := opt
	timed.timeout = 12 * time.Second
	err := up(ctx, &out, load(), state, timed)
	t.Logf("up:\n%s", out.String())
	if err == nil || !strings.Contains(err.Error(), "waiting for every machine to be Ready") || !strings.Contains(err.Error(), "govc vm.info -e") {
		t.Fatalf("up against machines that never register: %v; want the wait's deadline and where to look", err)
	}
	b, err := pki.Load(state, load())
	if err != nil {
		t.Fatalf("no secrets bundle: %v", err)
	}
	// Rendered as up renders: the master's config mounts the etcd disk up made.
	vp, err := targets.VSphere(load(), targets.Options{State: state})
	if err != nil {
		t.Fatal(err)
	}
	defer vp.Close(ctx)
	ro, err := vp.RenderOptions(ctx)
	if err != nil || ro.EtcdDevice == "" {
		t.Fatalf("render options: %+v, %v; want the etcd disk's device", ro, err)
	}
	rendered, err := ignition.Configs(load(), b, ro)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"master", "node-1", "node-2"} {
		vm := "vsphere-" + m
		for _, step := range []string{" cloned: mac ", " powered on"} {
			if !strings.Contains(out.String(), vm+strings.Repeat(" ", 20-len(vm))+step) {
				t.Errorf("up does not report %q for %s", step, vm)
			}
		}
		if !strings.Contains(out.String(), "] "+m+": phase 1 passed") {
			t.Errorf("up does not show %s reaching phase 1 from its guestinfo", m)
		}
		// The VM carries the config of its machine, as rendering it again from the bundle
		// gives it (each config of configs/vsphere.yaml fits guestinfo; the provider's tests
		// cover the pointer).
		i := slices.IndexFunc(rendered, func(c ignition.Config) bool { return c.Name == m })
		if got := guestinfoConfig(t, sim, vm); i < 0 || !bytes.Equal(got, rendered[i].Raw) {
			t.Errorf("%s: guestinfo holds %d bytes, not its machine's config", vm, len(got))
		}
	}
	if _, err := os.Stat(filepath.Join(state, "vsphere", "ignition")); err == nil {
		t.Error("up wrote configs to disk that guestinfo carries")
	}
	made := sim.VMNames(t)

	// status: the same machines, from the same reads, as a script reads them.
	out.Reset()
	var stderr bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"status", "--config", path, "--state", state, "-o", "json"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("status: %v\n%s%s", err, out.String(), stderr.String())
	}
	var st clusterStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out.String())
	}
	if st.Target != cluster.TargetVSphere || st.Endpoint != "https://127.0.114.10:6443" || st.APIOK || len(st.Machines) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for i, m := range st.Machines {
		want := []string{"master", "node-1", "node-2"}[i]
		if m.Name != want || m.Stage != "phase 1 passed" || m.Phase1Pass == nil || !*m.Phase1Pass || m.Boots != 1 || !strings.HasPrefix(m.LastReport, "kubeup: "+want+" phase 1") {
			t.Errorf("status machine %d: %+v, want %s at phase 1", i, m, want)
		}
	}

	// Again, not waiting: everything exists, nothing changes.
	out.Reset()
	if err := up(ctx, &out, load(), state, opt); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out.String())
	}
	if strings.Count(out.String(), " exists: poweredOn") != 3 || strings.Contains(out.String(), "cloned:") {
		t.Errorf("re-run output, want 3 VMs that exist and no clone:\n%s", out.String())
	}
	if got := sim.VMNames(t); !slices.Equal(got, made) {
		t.Errorf("re-run changed the VMs: %v, was %v", got, made)
	}

	out.Reset()
	cmd = newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"down", "--config", path, "--state", state})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	t.Logf("down:\n%s", out.String())
	if got := sim.VMNames(t); !slices.Equal(got, others) {
		t.Errorf("after down the VMs are %v, want %v", got, others)
	}
	if _, err := os.Stat(targets.Dir(state, cluster.TargetVSphere)); !os.IsNotExist(err) {
		t.Errorf("down left %s: %v", targets.Dir(state, cluster.TargetVSphere), err)
	}
	if _, err := os.Stat(filepath.Join(state, pki.MetaFile)); err != nil {
		t.Errorf("down removed the secrets bundle: %v", err)
	}
}

// guestinfoConfig is a VM's guestinfo.ignition.config.data, decoded from gzip+base64.
func guestinfoConfig(t *testing.T, sim *vspheretest.Sim, name string) []byte {
	t.Helper()
	gz, err := base64.StdEncoding.DecodeString(extraConfig(t, sim, name, "guestinfo.ignition.config.data"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// extraConfig is the value of key in VM name's extraConfig.
func extraConfig(t *testing.T, sim *vspheretest.Sim, name, key string) string {
	t.Helper()
	vm, err := sim.Finder.VirtualMachine(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var m mo.VirtualMachine
	if err := vm.Properties(context.Background(), vm.Reference(), []string{"config.extraConfig"}, &m); err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov.Key == key {
			return ov.Value.(string)
		}
	}
	t.Fatalf("%s has no %s", name, key)
	return ""
}
