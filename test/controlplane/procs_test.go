package controlplane

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// hostPrefixes are the machine paths the manifests use; the test moves them under its scratch root.
var hostPrefixes = []string{"/etc/kubernetes", "/var/lib/etcd", "/var/log/kubernetes"}

// remap rewrites one command-line argument's host paths to paths under root. It changes paths
// only: every flag and value is otherwise the manifest's own.
func remap(root, arg string) string {
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		for _, pre := range hostPrefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				parts[i] = filepath.Join(root, p)
			}
		}
	}
	return name + "=" + strings.Join(parts, ",")
}

// staticPodCommand reads a static pod manifest that Ignition wrote under root and returns its
// container's command with host paths remapped.
func staticPodCommand(t *testing.T, root, file string) []string {
	t.Helper()
	cmd, err := manifestCommand(root, file)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// manifestCommand is staticPodCommand for callers with no *testing.T at hand (the agent's
// goroutine, restarting a process from its manifest as it is now).
func manifestCommand(root, file string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/manifests", file))
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(pod.Spec.Containers) != 1 {
		return nil, fmt.Errorf("%s: %d containers", file, len(pod.Spec.Containers))
	}
	var cmd []string
	for _, a := range pod.Spec.Containers[0].Command {
		cmd = append(cmd, remap(root, a))
	}
	return cmd, nil
}

// proc is one running control-plane process.
type proc struct {
	name   string
	bin    string
	args   []string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// start runs a command from the toolchain with its output in a log file, and stops it (and
// prints its log when the test failed) at cleanup.
func start(t *testing.T, bin string, args []string, logDir string) *proc {
	t.Helper()
	name := filepath.Base(args[0])
	p := &proc{name: name, bin: bin, args: args, log: filepath.Join(logDir, name+".log")}
	p.run(t)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			printTail(t, p)
		}
	})
	return p
}

func (p *proc) run(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(p.bin, p.name), p.args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { p.cmd.Wait(); f.Close(); close(exited) }()
}

// stop stops the process as the kubelet stops a container: SIGTERM, then SIGKILL after a grace
// period.
func (p *proc) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// restart stops the process and starts it again with the same command line, as the kubelet
// does when a static pod's manifest changes.
func (p *proc) restart(t *testing.T) {
	p.stop()
	p.run(t)
}

func printTail(t *testing.T, p *proc) {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("---- last lines of %s (%s) ----\n%s", p.name, p.log, strings.Join(lines, "\n"))
}

// portsFree fails early, with a clear message, if another process holds a port the control
// plane needs: otherwise the failure would show up minutes later as a confusing timeout.
func portsFree(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("port %s is taken (%v): stop what holds it, the control-plane test needs it", a, err)
		}
		l.Close()
	}
}

// waitFor polls fn until it returns nil or the deadline passes, then fails with its last error.
func waitFor(t *testing.T, ctx context.Context, what string, timeout time.Duration, fn func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = fn(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not done after %v; last seen: %v", what, timeout, last)
		case <-tick.C:
		}
	}
}
