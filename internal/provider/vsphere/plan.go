package vsphere

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/provider"
)

// extraConfig keys: Ignition's (its VMware provider reads guestinfo.ignition.config.data) and kubeup's mark.
const (
	keyData     = "guestinfo.ignition.config.data"
	keyEncoding = "guestinfo.ignition.config.data.encoding"
	keyCluster  = "guestinfo.kubeup.cluster"
	keyMachine  = "guestinfo.kubeup.machine"
	keyConfig   = "guestinfo.kubeup.config.sha256"
	keyImage    = "guestinfo.kubeup.image"
	encoding    = "gzip+base64"
)

// Spec is what up makes: one VM per machine, cloned from Template, in the datacenter.
type Spec struct {
	// Cluster is the cluster's name: the VMs' name prefix and their mark.
	Cluster    string
	Datacenter string
	Datastore  string
	Network    string
	// Template is the VM or template to clone (its name or inventory path).
	Template string
	// ConfigURL is where configs too large for guestinfo are served from (https://...).
	ConfigURL string
	Machines  []Machine
}

// Machine is one machine and its rendered Ignition config.
type Machine struct {
	Name, Role, MAC string
	Config          []byte
	// File is the config's path on disk, where the operator takes it from to serve it under
	// ConfigURL as <Name>.ign when it is over the guestinfo limit.
	File string
	// EtcdDisk, the master's, is the datastore path of the etcd disk its clone gets attached.
	EtcdDisk string
}

// VM is one machine as up makes it.
type VM struct {
	Machine
	// Name is the VM's name in the inventory.
	Name string
	// Encoded is the size of the config in guestinfo's gzip+base64.
	Encoded int
	// PointerURL is set when guestinfo carries a pointer to the config at this URL instead of
	// the config: the operator serves File there.
	PointerURL string
	data       string // guestinfo.ignition.config.data
	sum        string // hex SHA-256 of Config
}

// Plan is what up makes, computed without asking vSphere.
type Plan struct {
	Spec
	VMs []VM
}

// VMName is the inventory name of a cluster's machine: a folder's VM names are unique, and
// several clusters may share one folder.
func VMName(cluster, machine string) string { return cluster + "-" + machine }

// NewPlan encodes every machine's config for guestinfo, replacing those over the limit with a
// hash-pinned pointer to ConfigURL.
func NewPlan(spec Spec) (*Plan, error) {
	for _, f := range []struct{ field, v string }{{"name", spec.Cluster}, {"vsphere.datacenter", spec.Datacenter},
		{"vsphere.datastore", spec.Datastore}, {"vsphere.network", spec.Network}, {"vsphere.template", spec.Template}} {
		if f.v == "" {
			return nil, fmt.Errorf("vsphere: %s is empty (fix: set it in the cluster config)", f.field)
		}
	}
	p := &Plan{Spec: spec}
	for _, m := range spec.Machines {
		vm, err := planVM(spec, m)
		if err != nil {
			return nil, err
		}
		p.VMs = append(p.VMs, vm)
	}
	return p, nil
}

func planVM(spec Spec, m Machine) (VM, error) {
	vm := VM{Machine: m, Name: VMName(spec.Cluster, m.Name)}
	if _, err := net.ParseMAC(m.MAC); err != nil || m.MAC == "" {
		return VM{}, fmt.Errorf("machine %s: mac %q: vSphere needs each machine's MAC to set it on the VM (fix: set machines[].mac, e.g. 00:50:56:00:00:10)", m.Name, m.MAC)
	}
	sum := sha256.Sum256(m.Config)
	vm.sum = hex.EncodeToString(sum[:])
	data, err := ignition.GzipBase64(m.Config)
	if err != nil {
		return VM{}, fmt.Errorf("machine %s: encode its config: %w", m.Name, err)
	}
	vm.Encoded = len(data)
	if vm.PointerURL, _, err = pointerURL(spec.ConfigURL, m.Name, vm.Encoded); err != nil {
		return VM{}, err
	}
	if vm.PointerURL == "" {
		vm.data = data
		return vm, nil
	}
	ptr, err := ignition.Pointer(vm.PointerURL, m.Config)
	if err != nil {
		return VM{}, fmt.Errorf("machine %s: pointer config: %w", m.Name, err)
	}
	if vm.data, err = ignition.GzipBase64(ptr); err != nil {
		return VM{}, fmt.Errorf("machine %s: encode its pointer config: %w", m.Name, err)
	}
	return vm, nil
}

// GuestinfoLimit is what we allow in guestinfo.ignition.config.data, measured on the
// gzip+base64 encoding we set. govc's inline arguments top out near 128 KiB; half that leaves
// room for the rest of the VM's extraConfig.
const GuestinfoLimit = 64 * 1024

// pointerURL is "" when a config of encoded bytes (gzip+base64) fits guestinfo; otherwise the
// URL under configURL that its pointer names and the operator serves it at (<name>.ign), and
// why. With no configURL such a config cannot reach its machine: an error with the fix.
func pointerURL(configURL, name string, encoded int) (url, why string, err error) {
	if encoded <= GuestinfoLimit {
		return "", "", nil
	}
	why = fmt.Sprintf("%d bytes gzip+base64 > %d guestinfo limit", encoded, GuestinfoLimit)
	if configURL == "" {
		return "", "", fmt.Errorf("machine %s: its config is %s (fix: set vsphere.configURL to an https:// location to serve it from)", name, why)
	}
	return strings.TrimSuffix(configURL, "/") + "/" + name + ".ign", why, nil
}

// Channel is vSphere's: guestinfo, gzip+base64, or, for a config over GuestinfoLimit, a
// hash-pinned pointer to its copy under vsphere.configURL, which the operator serves.
func Channel(cfg *cluster.Config, c ignition.Config) (provider.Channel, error) {
	var configURL string
	if cfg.VSphere != nil {
		configURL = cfg.VSphere.ConfigURL
	}
	data, err := ignition.GzipBase64(c.Raw)
	if err != nil {
		return provider.Channel{}, fmt.Errorf("machine %s: encode its config: %w", c.Name, err)
	}
	url, why, err := pointerURL(configURL, c.Name, len(data))
	if err != nil {
		return provider.Channel{}, err
	}
	return provider.Channel{How: "guestinfo (gzip+base64)", PointerURL: url, Why: why}, nil
}

// extraConfig is what the clone sets in the VM's extraConfig.
func (vm *VM) extraConfig(cluster, template string) []types.BaseOptionValue {
	return []types.BaseOptionValue{
		&types.OptionValue{Key: keyData, Value: vm.data},
		&types.OptionValue{Key: keyEncoding, Value: encoding},
		&types.OptionValue{Key: keyCluster, Value: cluster},
		&types.OptionValue{Key: keyMachine, Value: vm.Machine.Name},
		&types.OptionValue{Key: keyConfig, Value: vm.sum},
		&types.OptionValue{Key: keyImage, Value: template},
		&types.OptionValue{Key: keyDiskUUID, Value: "TRUE"},
	}
}

// Print writes the plan: the VMs, their MACs, and how each config travels.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "vSphere: %d VMs of cluster %s, cloned from %s into datacenter %s, datastore %s, network %q\n",
		len(p.VMs), p.Cluster, p.Template, p.Datacenter, p.Datastore, p.Network)
	for _, vm := range p.VMs {
		how := "inline in guestinfo"
		if vm.PointerURL != "" {
			how = fmt.Sprintf("over the %d limit: guestinfo holds a pointer to %s", GuestinfoLimit, vm.PointerURL)
		}
		fmt.Fprintf(w, "  %-20s %-7s mac %s  config %d bytes, %d gzip+base64, %s\n", vm.Name, vm.Role, vm.MAC, len(vm.Config), vm.Encoded, how)
	}
	for _, vm := range p.VMs {
		if vm.PointerURL == "" {
			continue
		}
		fmt.Fprintf(w, "  serve %s at %s before the VM boots (Ignition checks its SHA-512)", vm.File, vm.PointerURL)
		if vm.Role == "master" {
			fmt.Fprint(w, "; it holds the cluster's CA keys: serve it to the master alone")
		}
		fmt.Fprintln(w)
	}
}
