package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

func registrySecret(t *testing.T, files map[string]string) *corev1.Secret {
	t.Helper()
	data, err := json.Marshal(files)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: manifests.RegistryHostsSecret, Namespace: metav1.NamespaceSystem},
		Data: map[string][]byte{manifests.RegistryHostsKey: data}}
}

// The Secret's files land under containerd's certs.d, hosts.toml 0600; a second write of the
// same files changes nothing; a path outside a registry's two files is refused, and then
// nothing at all is written.
func TestRegistryHostsWrite(t *testing.T) {
	root := t.TempDir()
	r := &RegistryHosts{Root: root, Log: t.Logf}
	files := map[string]string{"docker.io/hosts.toml": "[host.\"https://m:5000\"]\n", "docker.io/ca.crt": "PEM", "m:5000/hosts.toml": "x"}
	changed, err := r.Write(registrySecret(t, files))
	if err != nil || !slices.Equal(changed, []string{"docker.io/ca.crt", "docker.io/hosts.toml", "m:5000/hosts.toml"}) {
		t.Fatalf("Write: %v, %v", changed, err)
	}
	for rel, mode := range map[string]os.FileMode{"docker.io/hosts.toml": 0o600, "docker.io/ca.crt": 0o644} {
		p := filepath.Join(root, machine.ContainerdCertsDir, rel)
		got, err := os.ReadFile(p)
		fi, serr := os.Stat(p)
		if err != nil || serr != nil || string(got) != files[rel] || fi.Mode().Perm() != mode {
			t.Errorf("%s: %q (%v), want %q mode %o", rel, got, err, files[rel], mode)
		}
	}
	if changed, err := r.Write(registrySecret(t, files)); err != nil || len(changed) != 0 {
		t.Errorf("the same files again: %v, %v", changed, err)
	}
	for _, bad := range []string{"../../etc/shadow", "docker.io/../../x/hosts.toml", "docker.io/config.toml", "hosts.toml", "/docker.io/hosts.toml", "a b/hosts.toml"} {
		fresh := t.TempDir()
		if _, err := (&RegistryHosts{Root: fresh}).Write(registrySecret(t, map[string]string{"quay.io/hosts.toml": "x", bad: "y"})); err == nil {
			t.Errorf("%q was not refused", bad)
		}
		if entries, _ := os.ReadDir(fresh); len(entries) != 0 {
			t.Errorf("%q refused, but something was written", bad)
		}
	}
}

// The agent follows the Secret: its files as it is created, and again as it changes.
func TestRegistryHostsFollowsTheSecret(t *testing.T) {
	c := fake.NewClientset()
	root := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { (&RegistryHosts{Client: c, Root: root, Log: t.Logf}).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	p := filepath.Join(root, machine.ContainerdCertsDir, "docker.io", machine.RegistryHostsFile)
	waitContent := func(want string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			got, _ := os.ReadFile(p)
			return string(got) == want, nil
		}); err != nil {
			got, _ := os.ReadFile(p)
			t.Fatalf("hosts.toml is %q, want %q", got, want)
		}
	}
	secrets := c.CoreV1().Secrets(metav1.NamespaceSystem)
	if _, err := secrets.Create(ctx, registrySecret(t, map[string]string{"docker.io/hosts.toml": "one"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitContent("one")
	if _, err := secrets.Update(ctx, registrySecret(t, map[string]string{"docker.io/hosts.toml": "two"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitContent("two")
}
