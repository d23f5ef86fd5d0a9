package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
)

// The mirror of testdata/cluster.yaml and the credentials the setup keeps for it.
const mirrorHost = "127.0.0.20:5000"

var mirrorCredential = pki.RegistryCredential{Username: "puller", Password: "cp-test-s3cret"}

// checkRegistryHosts runs a node's registry writer with the node's own identity against the
// real API server and RBAC: it must write the master's hosts.toml, credentials included, and
// the node must be refused every other Secret of kube-system.
func checkRegistryHosts(t *testing.T, ctx context.Context, e *env, node *rest.Config) {
	rel := filepath.Join(machine.ContainerdCertsDir, "docker.io", machine.RegistryHostsFile)
	want, err := os.ReadFile(filepath.Join(e.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(want), mirrorCredential.BasicAuth()) {
		t.Fatalf("the master's %s lacks the mirror's credentials:\n%s", rel, want)
	}
	client := kubernetes.NewForConfigOrDie(node)
	root := t.TempDir()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&agent.RegistryHosts{Client: client, Root: root, Log: t.Logf}).Run(rctx)
	}()
	defer func() { stop(); <-done }()
	waitFor(t, ctx, "the node's agent writes docker.io's hosts.toml", time.Minute, func() error {
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return err
		}
		if string(got) != string(want) {
			return fmt.Errorf("hosts.toml differs from the master's:\n%s", got)
		}
		if fi, err := os.Stat(filepath.Join(root, rel)); err != nil || fi.Mode().Perm() != 0o600 {
			return errors.New("hosts.toml is not mode 0600")
		}
		return nil
	})
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	if _, err := secrets.Get(ctx, "bootstrap-token-"+e.bundle.Token.ID, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node-1 reading the bootstrap token's Secret: %v, want forbidden", err)
	}
	if _, err := secrets.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node-1 listing kube-system's Secrets: %v, want forbidden", err)
	}
}
