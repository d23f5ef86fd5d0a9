//go:build e2e

package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/bundle"
	"kubeup.dev/kubeup/test/testenv"
)

// containerd starts a private containerd (own root, state and socket) and returns its socket.
func containerd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatal("containerd is not installed: apt-get install -y containerd runc (make e2e does it)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the import test runs containerd and must run as root")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	cfg := "version = 2\nroot = \"" + dir + "/root\"\nstate = \"" + dir + "/state\"\n[grpc]\n  address = \"" + sock + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, _ := os.Create(filepath.Join(dir, "containerd.log"))
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("containerd log:\n%s", data)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := ctr(sock, "version"); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer on its socket within 30 s")
		}
		time.Sleep(200 * time.Millisecond) // polling a socket that is not there yet
	}
}

func ctr(sock string, args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"-a", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

func TestBundleImportsAndRunsInContainerd(t *testing.T) {
	dir := testenv.BundleDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, bundle.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m bundle.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Images) < 10 {
		t.Fatalf("bundle.json lists %d images", len(m.Images))
	}
	sock := containerd(t)
	for _, img := range m.Images {
		if out, err := ctr(sock, "images", "import", filepath.Join(dir, img.Archive)); err != nil {
			t.Fatalf("import %s: %v\n%s", img.Archive, err, out)
		}
	}
	list, err := ctr(sock, "images", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range m.Images {
		found := false
		for _, line := range strings.Split(list, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == img.Ref {
				found = true
				if f[2] != img.Digest {
					t.Errorf("%s imported with digest %s, bundle.json says %s", img.Ref, f[2], img.Digest)
				}
			}
		}
		if !found {
			t.Errorf("%s not in containerd after import:\n%s", img.Ref, list)
		}
	}
	// Each binary runs in its image, and what it calls is there (iptables, cp).
	runs := []struct {
		image string
		args  []string
		want  string
	}{
		{"etcd", []string{"etcd", "--version"}, "etcd Version: 3.6"},
		{"kube-apiserver", []string{"kube-apiserver", "--version"}, "Kubernetes " + testenv.Kubernetes(t) + "\n"},
		{"coredns", []string{"/coredns", "-version"}, "CoreDNS-1.15"},
		{"kube-proxy", []string{"iptables-restore", "--version"}, "nf_tables"},
		{"flannel", []string{"/opt/bin/flanneld", "--version"}, "v0.28"},
		{"flannel", []string{"iptables", "--version"}, "nf_tables"},
		{"flannel-cni-plugin", []string{"/bin/cp", "-f", "/flannel", "/flannel-copy"}, ""},
	}
	refs := map[string]string{}
	for _, img := range m.Images {
		refs[strings.TrimSuffix(filepath.Base(img.Archive), ".tar")] = img.Ref
	}
	for i, r := range runs {
		ref, ok := refs[r.image]
		if !ok {
			t.Errorf("no %s image in the bundle", r.image)
			continue
		}
		out, err := ctr(sock, append([]string{"run", "--rm", ref, fmt.Sprintf("t%d", i)}, r.args...)...)
		if err != nil || !strings.Contains(out, r.want) {
			t.Errorf("run %s %v: %v, want %q in:\n%s", ref, r.args, err, r.want, out)
			continue
		}
		t.Logf("%s %v: %s", r.image, r.args, strings.SplitN(strings.TrimSpace(out), "\n", 2)[0])
	}
}
