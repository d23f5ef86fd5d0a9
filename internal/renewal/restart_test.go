package renewal_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/renewal"
)

// comp is a component name no other process has (the control-plane test may run a real
// kube-scheduler beside this one).
var comp = fmt.Sprintf("kubeup-test-%d", os.Getpid())

// StaticPods stamps the component's manifest and returns only once the old process is gone:
// here a process of the component's name, and this test in the kubelet's part, stopping it
// when the manifest changes.
func TestStaticPodsRestart(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, manifests.ManifestsDir)
	os.MkdirAll(dir, 0o700)
	manifest := filepath.Join(dir, comp+".yaml")
	orig := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-scheduler\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-scheduler\n    image: registry.k8s.io/kube-scheduler:v1.37.2\n"
	if err := os.WriteFile(manifest, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	old := startNamed(t)
	exited := make(chan struct{})
	go func() { old.Wait(); close(exited) }()
	t.Cleanup(func() { old.Process.Kill() })

	// The kubelet: stops the pod once its manifest changes.
	stopped := make(chan time.Time, 1)
	go func() {
		for {
			data, _ := os.ReadFile(manifest)
			if string(data) != orig {
				time.Sleep(300 * time.Millisecond) // the kubelet takes a moment to notice
				old.Process.Kill()
				<-exited
				stopped <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond) // watching the manifest
		}
	}()

	s := &renewal.StaticPods{Root: root, Proc: "/proc", StopTimeout: 30 * time.Second}
	if err := s.Restart(t.Context(), comp); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	select {
	case at := <-stopped:
		if returned.Before(at) {
			t.Errorf("Restart returned at %v, before the old process was gone at %v", returned, at)
		}
	default:
		t.Fatal("Restart returned while the old process still ran")
	}
	data, _ := os.ReadFile(manifest)
	if !strings.Contains(string(data), renewal.RestartedAnnotation+":") || !strings.Contains(string(data), "image: registry.k8s.io/kube-scheduler:v1.37.2") {
		t.Errorf("manifest after the restart:\n%s", data)
	}
	if fi, _ := os.Stat(manifest); fi.Mode().Perm() != 0o600 {
		t.Errorf("manifest mode %v", fi.Mode().Perm())
	}
}

// A kubelet that never replaces the pod is reported, naming the component.
func TestStaticPodsRestartTimeout(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, manifests.ManifestsDir), 0o700)
	os.WriteFile(filepath.Join(root, manifests.ManifestsDir, comp+".yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"), 0o600)
	p := startNamed(t)
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	s := &renewal.StaticPods{Root: root, Proc: "/proc", StopTimeout: time.Second}
	err := s.Restart(t.Context(), comp)
	if err == nil || !strings.Contains(err.Error(), "has not stopped "+comp) {
		t.Errorf("Restart: %v, want an error saying the kubelet did not stop %s", err, comp)
	}
}

// startNamed starts a process whose argv[0] is comp and returns once /proc shows that name.
// exec returns to the parent before the kernel has set the new program's arguments (the
// close-on-exec pipe closes first), so a scan right after Start can read an empty cmdline: on
// a loaded CI machine it did, and Restart then saw nothing to wait for.
func startNamed(t *testing.T) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	p := &exec.Cmd{Path: sleep, Args: []string{comp, "300"}}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	cmdline := filepath.Join("/proc", strconv.Itoa(p.Process.Pid), "cmdline")
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(cmdline)
		return err == nil && strings.HasPrefix(string(data), comp+"\x00"), nil
	})
	if err != nil {
		p.Process.Kill()
		t.Fatalf("%s never showed argv[0] %s: %v", cmdline, comp, err)
	}
	return p
}
