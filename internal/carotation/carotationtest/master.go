// Package carotationtest lays out a master's files as its Ignition config does, with a CA
// rotation started in a secrets bundle and handed over in the cluster's Secret, for tests of the
// master agent's side of the rotation: internal/carotation's own and test/adversarial's.
// client-go's fake clientset stands in for the API server and a recorder for the restarts; the
// real components run in test/controlplane's TestCARotation.
package carotationtest

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// Master is a master's tree, its agent's rotation and what the agent did.
type Master struct {
	// Root is the master's tree, Bundle the secrets bundle it was rendered from.
	Root, Bundle string
	// ID is the rotation's id, News its new CAs, OldCA the cluster CA before it.
	ID    string
	News  []pki.NewCA
	OldCA []byte
	// M is the agent's side of the rotation, with a fake clientset that holds the rotation's
	// Secret, the master's Node, node-1 (which publishes that it trusts both CAs), and an add-on
	// Deployment and DaemonSet whose pods are all from their current template.
	M *carotation.Master
	// Restarts are the components M restarted, in order; Unhealthy[c] is how many of c's
	// health checks fail next.
	Restarts  []string
	Unhealthy map[string]int
}

// New makes a master of the cluster config at configPath with a rotation handed over.
func New(t testing.TB, configPath string) *Master {
	t.Helper()
	cfg, err := cluster.Load(configPath)
	if err != nil {
		t.Fatal(err)
	}
	f := &Master{Bundle: filepath.Join(t.TempDir(), "bundle"), Root: t.TempDir(), Unhealthy: map[string]int{}}
	if _, err := pki.Ensure(f.Bundle, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(f.Root, manifests.KubernetesDir), os.DirFS(f.Bundle)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(f.Root, manifests.KubernetesDir, pki.RotationDir))
	dir := filepath.Join(f.Root, manifests.ManifestsDir)
	os.MkdirAll(dir, 0o700)
	for _, sp := range manifests.StaticPods(manifests.Params{ClusterName: cfg.Name, MasterName: "master", MasterIP: "10.0.0.2", APIServerPort: 6443}) {
		data, err := manifests.StaticPodYAML(sp)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, sp.File), data, 0o600)
	}
	f.OldCA, _ = os.ReadFile(filepath.Join(f.Bundle, "pki/ca.crt"))
	r, _, err := pki.StartRotation(f.Bundle, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.ID = r.ID
	if f.News, err = pki.RotationCAs(f.Bundle); err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{
		agent.TrustAnnotation: SKI(t, f.OldCA) + "," + SKI(t, f.News[0].Cert)}}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
		Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds", Namespace: "kube-flannel"},
		Status: appsv1.DaemonSetStatus{CurrentNumberScheduled: 3, UpdatedNumberScheduled: 3}}
	client := fake.NewClientset(carotation.NewSecret(r.ID, f.News), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "master"}}, node, dep, ds)
	f.M = &carotation.Master{Root: f.Root, Client: client, Node: "master", Renewer: &renewal.Renewer{Root: f.Root, Items: renewal.MasterItems, HealthTimeout: 2 * time.Second,
		Restart: func(_ context.Context, comp string) error { f.Restarts = append(f.Restarts, comp); return nil },
		Healthy: func(context.Context, string, time.Time) error {
			comp := f.Restarts[len(f.Restarts)-1]
			if f.Unhealthy[comp] > 0 {
				f.Unhealthy[comp]--
				return errors.New("refuses the new certificate")
			}
			return nil
		}}}
	return f
}

// SKI is the key id of a PEM certificate's first certificate, as an agent publishes it.
func SKI(t testing.TB, certPEM []byte) string {
	t.Helper()
	cs, err := pki.CertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(cs[0].SubjectKeyId)
}
