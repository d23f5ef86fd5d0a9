package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/mo"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/provider/vsphere/vspheretest"
)

// TestVSphereUpDown drives kubeup up and down for configs/vsphere.yaml against vcsim, with
// GOVC_URL pointing at the simulator instead of the config's server: the bundle, the rendered
// configs, one VM per machine carrying its config, a re-run that changes nothing, and a down
// that leaves only the bundle and the VMs that are not the cluster's.
func TestVSphereUpDown(t *testing.T) {
	sim := vspheretest.Start(t, "kubeup-debian")
	t.Setenv("GOVC_URL", sim.URL.String())
	t.Setenv("GOVC_INSECURE", "1")
	for _, k := range []string{"GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_FOLDER", "GOVC_RESOURCE_POOL", "GOVC_TLS_CA_CERTS"} {
		t.Setenv(k, "")
	}
	load := func() *cluster.Config {
		cfg, err := cluster.Load("../configs/vsphere.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := t.Context()
	state := filepath.Join(t.TempDir(), "state")
	others := sim.VMNames(t)
	opt := cloudOptions{numNodes: 2}

	// A dry run prints the plan and makes nothing, in vSphere or on disk.
	var out bytes.Buffer
	dry := opt
	dry.dryRun = true
	if err := upVSphere(ctx, &out, load(), state, dry); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	t.Logf("dry run:\n%s", out.String())
	for _, want := range []string{"vsphere-master", "mac 00:50:56:00:00:10", "gzip+base64", "would clone", "nothing was changed"} {
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

	out.Reset()
	if err := upVSphere(ctx, &out, load(), state, opt); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	t.Logf("up:\n%s", out.String())
	for _, m := range []string{"master", "node-1", "node-2"} {
		vm := "vsphere-" + m
		for _, step := range []string{" cloned: mac ", " powered on"} {
			if !strings.Contains(out.String(), vm+strings.Repeat(" ", 20-len(vm))+step) {
				t.Errorf("up does not report %q for %s", step, vm)
			}
		}
		// The VM carries the very config up rendered into the state directory (each config of
		// configs/vsphere.yaml fits guestinfo; the provider's tests cover the pointer).
		want, err := os.ReadFile(filepath.Join(state, "vsphere", "ignition", m+".ign"))
		if err != nil {
			t.Fatal(err)
		}
		if got := guestinfoConfig(t, sim, vm); !bytes.Equal(got, want) {
			t.Errorf("%s: guestinfo holds %d bytes, not its config (%d bytes)", vm, len(got), len(want))
		}
	}
	if _, err := os.Stat(filepath.Join(state, "admin.conf")); err != nil {
		t.Errorf("no secrets bundle: %v", err)
	}
	made := sim.VMNames(t)

	// Again: everything exists, nothing changes.
	out.Reset()
	if err := upVSphere(ctx, &out, load(), state, opt); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out.String())
	}
	if strings.Count(out.String(), " exists: poweredOn") != 3 || strings.Contains(out.String(), "cloned:") {
		t.Errorf("re-run output, want 3 VMs that exist and no clone:\n%s", out.String())
	}
	if got := sim.VMNames(t); !slices.Equal(got, made) {
		t.Errorf("re-run changed the VMs: %v, was %v", got, made)
	}

	out.Reset()
	if err := downVSphere(ctx, &out, load(), state, opt); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	t.Logf("down:\n%s", out.String())
	if got := sim.VMNames(t); !slices.Equal(got, others) {
		t.Errorf("after down the VMs are %v, want %v", got, others)
	}
	if _, err := os.Stat(filepath.Join(state, "vsphere")); err == nil {
		t.Error("down left the rendered configs")
	}
	if _, err := os.Stat(filepath.Join(state, "admin.conf")); err != nil {
		t.Errorf("down removed the secrets bundle: %v", err)
	}
}

// guestinfoConfig is a VM's guestinfo.ignition.config.data, decoded from gzip+base64.
func guestinfoConfig(t *testing.T, sim *vspheretest.Sim, name string) []byte {
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
		if ov := o.GetOptionValue(); ov.Key == "guestinfo.ignition.config.data" {
			gz, err := base64.StdEncoding.DecodeString(ov.Value.(string))
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
	}
	t.Fatalf("%s has no guestinfo.ignition.config.data", name)
	return nil
}
