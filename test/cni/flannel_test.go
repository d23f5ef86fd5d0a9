//go:build e2e

package cni

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/test/testenv"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func netns(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
}

// plugin runs the flannel plugin inside the node namespace with the CNI environment.
func plugin(t *testing.T, bin, cniPath, node, command, pod, conf string) (string, error) {
	cmd := exec.Command("ip", "netns", "exec", node, bin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID=c1", "CNI_NETNS=/var/run/netns/"+pod,
		"CNI_IFNAME=eth0", "CNI_PATH="+cniPath)
	cmd.Stdin = strings.NewReader(conf)
	out, err := cmd.Output()
	return string(out), err
}

func TestFlannelPluginWiresAPod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the CNI test creates network namespaces and must run as root")
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatal("ping is not installed: apt-get install -y iputils-ping (make e2e does it)")
	}
	components := testenv.ComponentsDir(t)
	dir := t.TempDir()
	bins := filepath.Join(dir, "bin")
	os.Mkdir(bins, 0o755)
	testenv.Build(t, "./flannel-cni", filepath.Join(bins, "flannel"))
	suffix := fmt.Sprint(os.Getpid())
	node, pod := "kubeup-node-"+suffix, "kubeup-pod-"+suffix
	netns(t, node)
	netns(t, pod)
	subnetFile := filepath.Join(dir, "subnet.env")
	os.WriteFile(subnetFile, []byte("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"), 0o644)
	// host-local keeps its leases in the test's directory, not the machine's /var/lib/cni.
	conf := fmt.Sprintf(`{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","subnetFile":%q,"dataDir":%q,"delegate":{"hairpinMode":true,"isDefaultGateway":true,"ipam":{"dataDir":%q}}}`,
		subnetFile, filepath.Join(dir, "data"), filepath.Join(dir, "ipam"))
	cniPath := bins + ":" + components

	out, err := plugin(t, filepath.Join(bins, "flannel"), cniPath, node, "ADD", pod, conf)
	if err != nil {
		t.Fatalf("ADD: %v\n%s", err, out)
	}
	var res struct {
		CNIVersion string `json:"cniVersion"`
		IPs        []struct{ Address, Gateway string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) != 1 {
		t.Fatalf("ADD result: %v\n%s", err, out)
	}
	if res.CNIVersion != "0.3.1" || !strings.HasPrefix(res.IPs[0].Address, "10.244.3.") || res.IPs[0].Gateway != "10.244.3.1" {
		t.Errorf("ADD result %s", out)
	}
	addr := run(t, "ip", "netns", "exec", pod, "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(addr, res.IPs[0].Address) || !strings.Contains(run(t, "ip", "netns", "exec", pod, "ip", "link", "show", "eth0"), "mtu 1450") {
		t.Errorf("pod eth0: %s", addr)
	}
	routes := run(t, "ip", "netns", "exec", pod, "ip", "-4", "route")
	if !strings.Contains(routes, "10.244.0.0/16 via 10.244.3.1") || !strings.Contains(routes, "default via 10.244.3.1") {
		t.Errorf("pod routes:\n%s", routes)
	}
	if !strings.Contains(run(t, "ip", "netns", "exec", node, "ip", "-4", "-o", "addr", "show", "cni0"), "10.244.3.1/24") {
		t.Error("node bridge cni0 lacks the gateway address")
	}
	// The pod reaches its gateway on the node.
	run(t, "ip", "netns", "exec", pod, "ping", "-c", "1", "-W", "5", "10.244.3.1")

	if out, err := plugin(t, filepath.Join(bins, "flannel"), cniPath, node, "DEL", pod, conf); err != nil {
		t.Fatalf("DEL: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", pod, "ip", "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("eth0 still in the pod after DEL:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "c1")); err == nil {
		t.Error("delegate config kept after DEL")
	}
	// DEL again is not an error (runtimes retry it).
	if out, err := plugin(t, filepath.Join(bins, "flannel"), cniPath, node, "DEL", pod, conf); err != nil {
		t.Fatalf("second DEL: %v\n%s", err, out)
	}
}
