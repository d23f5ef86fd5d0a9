package vsphere

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"kubeup.dev/kubeup/internal/provider/vsphere/vspheretest"
)

// sim is a vcsim vCenter (vspheretest) with the template "kubeup-debian", and the test's own
// client to look at what up and down did.
type sim struct {
	t      *testing.T
	ctx    context.Context
	model  *simulator.Model
	creds  Credentials
	client *govmomi.Client // the test's own view, to check what up and down did
	finder *find.Finder
}

const template = "kubeup-debian"

func newSim(t *testing.T) *sim {
	t.Helper()
	v := vspheretest.Start(t, template)
	creds, err := credentialsFrom(env(map[string]string{"GOVC_URL": v.URL.String(), "GOVC_INSECURE": "1"}), "")
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, ctx: t.Context(), model: v.Model, creds: creds, client: v.Client, finder: v.Finder}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func (s *sim) session() *Session {
	s.t.Helper()
	sess, err := Connect(s.ctx, s.creds, "DC0")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = sess.Close(context.Background()) })
	return sess
}

func (s *sim) vm(name string) *object.VirtualMachine {
	s.t.Helper()
	vm, err := s.finder.VirtualMachine(s.ctx, name)
	if err != nil {
		s.t.Fatalf("VM %s: %v", name, err)
	}
	return vm
}

// props reads a VM as the test sees it.
func (s *sim) props(name string) mo.VirtualMachine {
	s.t.Helper()
	var m mo.VirtualMachine
	if err := s.vm(name).Properties(s.ctx, s.vm(name).Reference(), []string{"name", "config", "runtime", "datastore", "network"}, &m); err != nil {
		s.t.Fatal(err)
	}
	return m
}

// names lists every VM and template of the datacenter, with its MoRef.
func (s *sim) names() map[string]types.ManagedObjectReference {
	s.t.Helper()
	vms, err := s.finder.VirtualMachineList(s.ctx, "*")
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]types.ManagedObjectReference{}
	for _, vm := range vms {
		out[vm.Name()] = vm.Reference()
	}
	return out
}

// tasks counts the tasks vCenter has run (TaskManager.recentTask; vcsim keeps 200).
func (s *sim) tasks() int {
	s.t.Helper()
	var tm mo.TaskManager
	pc := property.DefaultCollector(s.client.Client)
	if err := pc.RetrieveOne(s.ctx, *s.client.ServiceContent.TaskManager, []string{"recentTask"}, &tm); err != nil {
		s.t.Fatal(err)
	}
	return len(tm.RecentTask)
}

// extra is a VM's extraConfig as a map.
func extra(m mo.VirtualMachine) map[string]string {
	out := map[string]string{}
	for _, o := range m.Config.ExtraConfig {
		ov := o.GetOptionValue()
		out[ov.Key], _ = ov.Value.(string)
	}
	return out
}

// decode undoes gzip+base64 as Ignition's vmware provider does.
func decode(t *testing.T, data string) []byte {
	t.Helper()
	gz, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("guestinfo data is not base64: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("guestinfo data is not gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// smallConfig is a valid Ignition config that fits guestinfo.
func smallConfig(name string) []byte {
	return fmt.Appendf(nil, `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/hostname","mode":420,"contents":{"source":"data:,%s"}}]}}`, name)
}

func testSpec(cluster string, machines ...Machine) Spec {
	return Spec{Cluster: cluster, Datacenter: "DC0", Datastore: "LocalDS_0", Network: "VM Network", Template: template,
		ConfigURL: "https://configs.example.internal/vsphere/", Machines: machines}
}

func machine(name, role, mac string) Machine {
	return Machine{Name: name, Role: role, MAC: mac, Config: smallConfig(name), File: "/state/vsphere/ignition/" + name + ".ign"}
}

// events collects what up, down and wait report.
type events []Event

func (e *events) add(ev Event) { *e = append(*e, ev) }

func (e events) what(vm string) []string {
	var out []string
	for _, ev := range e {
		if ev.VM == vm {
			out = append(out, ev.What)
		}
	}
	return out
}
