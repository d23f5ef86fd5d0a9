//go:build e2e

package pxe

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/verify"
	"kubeup.dev/kubeup/test/testenv"
)

const (
	// netnsEnv names the network namespace the test runs in, once it has made it and run itself
	// again there (inNetns).
	netnsEnv = "KUBEUP_E2E_PXE_NETNS"
	bridge   = "kubeup-e2e0"
	hostCIDR = "10.30.0.1/24" // testdata/cluster.yaml's network; the server listens here
	httpURL  = "http://10.30.0.1:8080"
)

// server runs the real `kubeup pxe serve`, and can be restarted.
type server struct {
	t    *testing.T
	args []string
	log  string
	cmd  *exec.Cmd
}

func (s *server) start() {
	s.t.Helper()
	f, err := os.OpenFile(s.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Dir = testenv.RepoRoot()
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	f.Close()
	// Up when /boot.ipxe answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(httpURL + "/boot.ipxe")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("kubeup pxe serve does not answer: %v; its log: %s", err, s.logText())
		}
		time.Sleep(100 * time.Millisecond) // polling the server's port
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	s.cmd = nil
}

func (s *server) logText() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// siteDHCP runs a plain DHCP server (addresses only) for the bridge's network from a network
// namespace of its own (inside the test's), and returns what stops it.
func siteDHCP(t *testing.T, dir string) func() {
	t.Helper()
	const ns, veth, peer = "kubeup-e2e-site", "kupsite0", "kupsite1"
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run() // a leftover of an interrupted run
	exec.Command("ip", "link", "del", veth).Run()
	run("ip", "netns", "add", ns)
	run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", veth, "master", bridge, "up")
	run("ip", "link", "set", peer, "netns", ns)
	run("ip", "-n", ns, "addr", "add", "10.30.0.2/24", "dev", peer)
	run("ip", "-n", ns, "link", "set", peer, "up")
	log := filepath.Join(dir, "site-dhcp.log")
	cmd := exec.Command("ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--port=0", "--bind-interfaces",
		"--interface="+peer, "--dhcp-range=10.30.0.100,10.30.0.150,12h", "--dhcp-option=option:router,10.30.0.1",
		"--dhcp-leasefile="+filepath.Join(dir, "site.leases"), "--log-dhcp", "--log-facility="+log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
		exec.Command("ip", "link", "del", veth).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// waitFor polls cond until it holds or timeout passes, then fails with what was last seen.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	seen := ""
	for time.Since(start) < timeout {
		ok, s := cond()
		if ok {
			t.Logf("[%4.0fs] %s", time.Since(start).Seconds(), what)
			return
		}
		seen = s
		time.Sleep(2 * time.Second) // polling serial logs, the server's log or the API
	}
	t.Fatalf("%s: not after %v; last seen: %s", what, timeout, seen)
}

// inNetns runs this test again in a network namespace of its own, which has only its loopback
// and what the test makes: the bridge and its address, the tap devices, the site's and the boot
// DHCP servers, the PXE server, the machines, and every request the test sends. Nothing of it
// is in the host's root namespace, and no packet can leave for any other network.
func inNetns(t *testing.T) {
	const ns = "kubeup-e2e-pxe"
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run() // a leftover of an interrupted run
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run=^" + t.Name() + "$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	t.Logf("running in network namespace %s: ip %s", ns, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		t.Fatalf("the test in network namespace %s failed (%v): its output is above", ns, err)
	}
}

// sameFile says whether a and b are one file (a namespace and its bind mount are).
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func TestNetbootCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("network boot needs root: a network namespace, a bridge, tap devices and dnsmasq on them (run make e2e as root)")
	}
	if os.Getenv(netnsEnv) == "" {
		inNetns(t)
		return
	}
	ns := os.Getenv(netnsEnv)
	if !sameFile("/proc/self/ns/net", "/var/run/netns/"+ns) {
		t.Fatalf("%s=%s is set but this process is not in network namespace %s: run the test without it", netnsEnv, ns, ns)
	}
	img := testenv.ImageDir(t)
	if _, err := os.Stat(filepath.Join(img, "rootfs.img")); err != nil {
		t.Fatalf("the image has no rootfs.img for network boot: rebuild it with hack/image.sh (%v)", err)
	}
	for _, tool := range []string{"qemu-system-x86_64", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: apt-get install -y qemu-system-x86 dnsmasq-base ipxe (make e2e does it)", tool)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	cfgFile := filepath.Join(testenv.RepoRoot(), "test/pxe/testdata/cluster.yaml")
	cfg, err := cluster.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	state, assets := filepath.Join(dir, "state"), filepath.Join(dir, "assets")
	// kubeup up on bare metal: the bundle, and every machine's config where the PXE server
	// reads it (the provider's directory); --timeout 0 returns before following the machines,
	// which the test does itself, with its own deadlines.
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(dir, "kubeup"))
	msg, err := exec.Command(kubeup, "up", "--config", cfgFile, "--state", state, "--timeout", "0").CombinedOutput()
	t.Logf("kubeup up --timeout 0:\n%s", msg)
	if err != nil {
		t.Fatalf("kubeup up: %v", err)
	}
	out := filepath.Join(state, cluster.TargetMetal, "ignition")
	if !strings.Contains(string(msg), "kubeup pxe serve --ignition "+out) {
		t.Fatalf("kubeup up does not say to serve %s", out)
	}
	os.MkdirAll(assets, 0o755)
	if err := os.Symlink(img, filepath.Join(assets, "debian")); err != nil {
		t.Fatal(err)
	}

	if err := qemu.EnsureBridge(bridge, hostCIDR); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qemu.DeleteBridge(bridge) })
	// The network's own DHCP server, which knows nothing of network boot: a plain dnsmasq in a
	// network namespace of its own, wired to the bridge by a veth pair (as a site's router).
	site := siteDHCP(t, dir)
	t.Cleanup(site)
	// pxe/dnsmasq.sh in proxy-DHCP mode, as docs/pxe.md tells a site to run it: it adds the boot
	// options (iPXE to the server) and leaves addresses to the site's server.
	dnsmasq := exec.Command(filepath.Join(testenv.RepoRoot(), "pxe/dnsmasq.sh"), "--interface", bridge, "--server", httpURL,
		"--proxy", "10.30.0.0", "--state", filepath.Join(dir, "dnsmasq"), "--foreground")
	dnsmasqLog, _ := os.Create(filepath.Join(dir, "dnsmasq.log"))
	dnsmasq.Stdout, dnsmasq.Stderr = dnsmasqLog, dnsmasqLog
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dnsmasq.Process.Kill(); dnsmasq.Wait() })

	srv := &server{t: t, log: filepath.Join(dir, "serve.log"), args: []string{kubeup, "pxe", "serve", "--config", cfgFile, "--state", state,
		"--ignition", out, "--assets", assets, "--listen", "10.30.0.1:8080", "--tls-listen", "10.30.0.1:8443"}}
	srv.start()
	t.Cleanup(srv.stop)

	spec := &qemu.Spec{Dir: filepath.Join(dir, "vms"), Memory: "4G", CPUs: 2, Netboot: &qemu.Netboot{Bridge: bridge}}
	for _, m := range cfg.Machines {
		spec.Machines = append(spec.Machines, qemu.Machine{Name: m.Name, Role: m.Role, MAC: m.MAC})
	}
	t.Cleanup(func() {
		if t.Failed() {
			keep := filepath.Join(os.TempDir(), "kubeup-e2e-pxe-"+time.Now().Format("20060102-150405"))
			os.MkdirAll(keep, 0o755)
			for _, m := range spec.Machines {
				exec.Command("cp", spec.SerialLog(m.Name), keep).Run()
			}
			exec.Command("cp", srv.log, dnsmasqLog.Name(), filepath.Join(dir, "site-dhcp.log"), keep).Run()
			t.Logf("serial logs, the server's and dnsmasq's logs are in %s", keep)
		}
		if err := qemu.Down(spec.Dir); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	if err := qemu.Up(spec); err != nil {
		t.Fatal(err)
	}

	// The server restarts while the machines fetch their root filesystems: they try again, and
	// the tokens in the scripts they already hold still work.
	waitFor(t, "a machine fetches its root filesystem", 5*time.Minute, func() (bool, string) {
		for _, m := range spec.Machines {
			if log, _ := os.ReadFile(spec.SerialLog(m.Name)); strings.Contains(string(log), "kubeup: rootfs: fetching") {
				return true, ""
			}
		}
		return false, "no machine says kubeup: rootfs: fetching"
	})
	srv.stop()
	time.Sleep(3 * time.Second) // the server stays down a while, for fetches to fail
	srv.start()
	t.Log("the PXE server was restarted while machines fetched")

	// A request with a made-up token gets nothing, and the server says so.
	resp, err := http.Get(httpURL + "/pointer/0123456789abcdef0123456789abcdef.ign")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a made-up token: %v %v", resp.Status, err)
	}
	resp.Body.Close()

	for _, m := range spec.Machines {
		waitFor(t, m.Name+": config applied (network boot, no disk)", 15*time.Minute, func() (bool, string) {
			c, _ := spec.ReadConsole(m.Name)
			return c.Ignition == "ok", fmt.Sprintf("console: %q", c.Last)
		})
	}
	adminConf, _ := os.ReadFile(filepath.Join(state, "admin.conf"))
	rc, err := clientcmd.RESTConfigFromKubeConfig(adminConf)
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 20 * time.Second
	client := kubernetes.NewForConfigOrDie(rc)
	waitFor(t, "every machine is a Ready node", 40*time.Minute, func() (bool, string) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		var seen []string
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
			seen = append(seen, n.Name)
		}
		return ready == len(spec.Machines), fmt.Sprintf("%d Ready of %v", ready, seen)
	})
	var names []string
	for _, m := range spec.Machines {
		names = append(names, m.Name)
	}
	// Three 4 GiB machines emulated (TCG) on two host cores are slow: each check that waits for
	// the cluster to act gets 20 minutes (measured: the master's first probe pod ran after ~11).
	k, err := verify.New(rc, verify.Options{Nodes: names, Timeout: 20 * time.Minute, Progress: func(_ string, rs []verify.Result) {
		for _, r := range rs {
			t.Logf("[%4.0fs] %s", time.Since(start).Seconds(), r)
			if !r.Pass {
				t.Errorf("%s", r)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	k.Run(ctx, "all")

	log := srv.logText()
	for _, m := range spec.Machines {
		if !strings.Contains(log, `msg="config served" machine=`+m.Name+" ") {
			t.Errorf("the server's log does not show %s's config being served", m.Name)
		}
	}
	if !strings.Contains(log, `msg="pointer refused"`) || !strings.Contains(log, `reason="unknown token"`) {
		t.Errorf("the made-up token was not logged as refused")
	}
	// Every agent posted its progress to the server, and kubeup status shows it from there,
	// beside each Node's state from the API, as on every target.
	status, err := exec.Command(kubeup, "status", "--config", cfgFile, "--state", state).CombinedOutput()
	t.Logf("kubeup status:\n%s", status)
	if err != nil {
		t.Fatalf("kubeup status: %v", err)
	}
	for _, m := range spec.Machines {
		if !regexp.MustCompile(`(?m)^` + m.Name + `\s+` + m.Role + `\s+Ready\s+1\s+kubeup: ` + m.Name + ` phase \S+ \S+ ok`).Match(status) {
			t.Errorf("kubeup status does not show %s Ready with its last report", m.Name)
		}
	}

	// A config change reaches a running machine the immutable way, with no power control:
	// kubeup upgrade at the release the cluster runs replaces node-2 alone, for its config;
	// its agent is asked to reboot it, and it network-boots the new config from the server.
	src, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	const node2 = "    mac: \"52:54:00:30:00:12\"\n"
	if !bytes.Contains(src, []byte(node2)) {
		t.Fatalf("%s: no node-2 line %q to add a Butane snippet under", cfgFile, node2)
	}
	changedFile := filepath.Join(dir, "changed.yaml")
	changed := bytes.Replace(src, []byte(node2), []byte(node2+`    butane: |
      storage:
        files:
          - path: /etc/kubeup-config-change
            contents: {inline: rolled}
`), 1)
	if err := os.WriteFile(changedFile, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	boots := map[string]string{}
	for _, m := range spec.Machines {
		n, err := client.CoreV1().Nodes().Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		boots[m.Name] = n.Status.NodeInfo.BootID
	}
	rolled := time.Now()
	msg, err = exec.Command(kubeup, "upgrade", "--to", cfg.KubernetesVersion, "--config", changedFile, "--state", state).CombinedOutput()
	t.Logf("kubeup upgrade with node-2's config changed (%v):\n%s", time.Since(rolled).Round(time.Second), msg)
	if err != nil || !strings.Contains(string(msg), "are replaced: node-2 (config))\n") || !strings.Contains(string(msg), "its agent was asked to reboot it") {
		t.Fatalf("kubeup upgrade: %v; want node-2 alone replaced for its config, its agent asked to reboot it", err)
	}
	for name, boot := range boots {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if now := n.Status.NodeInfo.BootID; (now != boot) != (name == "node-2") {
			t.Errorf("%s: boot %s, before %s; want only node-2 rebooted", name, now, boot)
		}
	}
	if n := strings.Count(srv.logText(), `msg="config served" machine=node-2 `); n < 2 {
		t.Errorf("the server's log shows node-2's config served %d times, want its first boot's and the new one's", n)
	}
}
