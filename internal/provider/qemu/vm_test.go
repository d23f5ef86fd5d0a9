package qemu

import (
	"slices"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
)

// userNIC is the -netdev of a machine's NIC on QEMU's user network, or "".
func userNIC(args []string) string {
	for i, a := range args {
		if a == "-netdev" && i+1 < len(args) && strings.HasPrefix(args[i+1], "user,") {
			return args[i+1]
		}
	}
	return ""
}

// Without forwards only the master has a NIC on QEMU's user network, for the API port; with
// them every machine has one, restricted, whose only ways out are the forwards to loopback.
func TestHostForwardsReachEveryMachine(t *testing.T) {
	s := &Spec{Dir: t.TempDir(), Image: Image{Disk: "d", Kernel: "k", Initrd: "i"}, Memory: "2G", CPUs: 2, APIPort: 6443}
	master := Machine{Name: "master", Role: cluster.RoleMaster, MAC: "52:54:00:10:00:10", Ignition: "m.ign"}
	node := Machine{Name: "node-1", Role: cluster.RoleNode, MAC: "52:54:00:10:00:11", Ignition: "n.ign"}
	if got, want := userNIC(s.args(master)), "user,id=host,restrict=on,hostfwd=tcp:127.0.0.1:6443-:6443"; got != want {
		t.Errorf("the master's user NIC: %q, want %q", got, want)
	}
	if got := userNIC(s.args(node)); got != "" {
		t.Errorf("a node has a user NIC without forwards: %q", got)
	}
	s.HostForwards = []cluster.HostForward{{Guest: "10.0.2.100:5000", Host: "127.0.0.1:5000"}, {Guest: "10.0.2.100:5001", Host: "127.0.0.1:5001"}}
	s.Netcat = "/usr/bin/nc"
	fwd := ",guestfwd=tcp:10.0.2.100:5000-cmd:/usr/bin/nc -N 127.0.0.1 5000,guestfwd=tcp:10.0.2.100:5001-cmd:/usr/bin/nc -N 127.0.0.1 5001"
	if got, want := userNIC(s.args(master)), "user,id=host,restrict=on,hostfwd=tcp:127.0.0.1:6443-:6443"+fwd; got != want {
		t.Errorf("the master's user NIC: %q, want %q", got, want)
	}
	args := s.args(node)
	if got, want := userNIC(args), "user,id=host,restrict=on"+fwd; got != want {
		t.Errorf("a node's user NIC: %q, want %q", got, want)
	}
	if !slices.Contains(args, "virtio-net-pci,netdev=host,mac=52:54:00:ff:00:01") {
		t.Errorf("a node's user NIC has no device: %q", args)
	}
}
