package carotation_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// These tests run the master's stages on a scratch tree laid out as the master's Ignition
// config lays it out, with client-go's fake clientset standing in for the API server and a
// recorder for the restarts: they check the files and the order of restarts. The real
// components, restarts and health checks run in test/controlplane's TestCARotation.

type fixture struct {
	root, bundle string
	news         []pki.NewCA
	oldCA        []byte
	m            *carotation.Master
	restarts     []string
	unhealthy    map[string]int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := cluster.Load("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{bundle: filepath.Join(t.TempDir(), "bundle"), root: t.TempDir(), unhealthy: map[string]int{}}
	if _, err := pki.Ensure(f.bundle, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(f.root, manifests.KubernetesDir), os.DirFS(f.bundle)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(f.root, manifests.KubernetesDir, pki.RotationDir))
	dir := filepath.Join(f.root, manifests.ManifestsDir)
	os.MkdirAll(dir, 0o700)
	for _, sp := range manifests.StaticPods(manifests.Params{ClusterName: cfg.Name, MasterName: "master", MasterIP: "10.0.0.2", APIServerPort: 6443}) {
		data, err := manifests.StaticPodYAML(sp)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, sp.File), data, 0o600)
	}
	f.oldCA, _ = os.ReadFile(filepath.Join(f.bundle, "pki/ca.crt"))
	r, _, err := pki.StartRotation(f.bundle, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.news, err = pki.RotationCAs(f.bundle); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset(carotation.NewSecret(r.ID, f.news))
	f.m = &carotation.Master{Root: f.root, Client: client, Renewer: &renewal.Renewer{Root: f.root, Items: renewal.MasterItems, HealthTimeout: 2 * time.Second,
		Restart: func(_ context.Context, comp string) error { f.restarts = append(f.restarts, comp); return nil },
		Healthy: func(context.Context, string, time.Time) error {
			comp := f.restarts[len(f.restarts)-1]
			if f.unhealthy[comp] > 0 {
				f.unhealthy[comp]--
				return errors.New("refuses the new certificate")
			}
			return nil
		}}}
	return f
}

func (f *fixture) status(t *testing.T) *carotation.Status {
	t.Helper()
	st, err := carotation.GetStatus(t.Context(), f.m.Client)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) file(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// onNew reports which of the master's certificates are issued by the new CAs.
func (f *fixture) onNew(t *testing.T) (yes, no []string) {
	t.Helper()
	certs, err := f.m.Renewer.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		i := slices.IndexFunc(f.news, func(n pki.NewCA) bool { return n.CA == c.CA })
		ca, _ := pki.CertsPEM(f.news[i].Cert)
		if c.Cert.CheckSignatureFrom(ca[0]) == nil {
			yes = append(yes, c.Name)
		} else {
			no = append(no, c.Name)
		}
	}
	return yes, no
}

// The whole way through: one Step takes the master to ReadyToFinish, restarting every
// component in the stages' order; another Step does nothing; with finish requested, a Step
// drops the old CAs; after that nothing happens again.
func TestMasterStages(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.ReadyToFinish {
		t.Fatalf("after one pass: %+v, want %s", st, carotation.ReadyToFinish)
	}
	want := []string{
		renewal.ControllerManager, renewal.Etcd, renewal.APIServer, renewal.Scheduler, // TrustBoth
		renewal.Etcd, renewal.APIServer, renewal.ControllerManager, renewal.Scheduler, // Reissue
		renewal.ControllerManager, // SwitchSigner
	}
	if !slices.Equal(f.restarts, want) {
		t.Errorf("restarts %v, want %v", f.restarts, want)
	}
	if _, no := f.onNew(t); len(no) > 0 {
		t.Errorf("still from the old CA: %v", no)
	}
	for _, n := range f.news {
		got := f.file(t, manifests.PKIDir+"/"+string(n.CA)+".crt")
		if !bytes.HasPrefix(got, n.Cert) || len(got) == len(n.Cert) {
			t.Errorf("pki/%s.crt is not new then old CA", n.CA)
		}
		if !bytes.Equal(f.file(t, manifests.PKIDir+"/"+string(n.CA)+".key"), n.Key) {
			t.Errorf("pki/%s.key is not the new CA's key", n.CA)
		}
	}
	if !bytes.Equal(f.file(t, carotation.SignerCert), f.news[0].Cert) {
		t.Error("the signer is not the new cluster CA")
	}
	cm := string(f.file(t, manifests.ManifestsDir+"/kube-controller-manager.yaml"))
	if !strings.Contains(cm, "--cluster-signing-cert-file="+carotation.SignerCert) || !strings.Contains(cm, "--cluster-signing-key-file="+carotation.SignerKey) {
		t.Errorf("the controller-manager does not sign from the signer files:\n%s", cm)
	}
	if admin := f.caData(t, "admin.conf"); !bytes.Equal(admin, append(append([]byte{}, f.news[0].Cert...), f.oldCA...)) {
		t.Error("admin.conf does not trust old and new CA")
	}

	f.restarts = nil
	if err := f.m.Step(ctx); err != nil || len(f.restarts) != 0 {
		t.Fatalf("a pass at ReadyToFinish: %v, restarts %v; want nothing", err, f.restarts)
	}
	if err := carotation.RequestFinish(ctx, f.m.Client); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.Finished {
		t.Fatalf("after finish: %+v", st)
	}
	if !slices.Equal(f.restarts, renewal.RestartOrder) {
		t.Errorf("finish restarted %v, want %v", f.restarts, renewal.RestartOrder)
	}
	for _, n := range f.news {
		if !bytes.Equal(f.file(t, manifests.PKIDir+"/"+string(n.CA)+".crt"), n.Cert) {
			t.Errorf("pki/%s.crt is not the new CA alone", n.CA)
		}
	}
	if admin := f.caData(t, "admin.conf"); !bytes.Equal(admin, f.news[0].Cert) {
		t.Error("admin.conf still trusts the old CA")
	}
	cm = string(f.file(t, manifests.ManifestsDir+"/kube-controller-manager.yaml"))
	if !strings.Contains(cm, "--cluster-signing-cert-file="+manifests.PKIDir+"/ca.crt") {
		t.Error("the controller-manager does not sign from pki/ca.crt again")
	}
	for _, gone := range []string{carotation.WorkDir + "/old", carotation.WorkDir + "/new", carotation.SignerKey} {
		if _, err := os.Stat(filepath.Join(f.root, gone)); err == nil {
			t.Errorf("%s is still there after finishing", gone)
		}
	}
	f.restarts = nil
	if err := f.m.Step(ctx); err != nil || len(f.restarts) != 0 {
		t.Errorf("a pass after finishing: %v, restarts %v; want nothing", err, f.restarts)
	}
}

// A component not healthy on its re-issued certificates gets the old ones back; the stage
// reports the failure on the Secret and stays, and the next pass completes it.
func TestMasterReissueRetried(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// The API server is not healthy while its certificate on disk is from the new CA, until
	// the test lets it be.
	refuse := true
	healthy := f.m.Renewer.Healthy
	f.m.Renewer.Healthy = func(ctx context.Context, comp string, since time.Time) error {
		if comp == renewal.APIServer && refuse {
			if yes, _ := f.onNew(t); slices.Contains(yes, "apiserver") {
				return errors.New("refuses the new certificate")
			}
		}
		return healthy(ctx, comp, since)
	}
	err := f.m.Step(ctx)
	if err == nil || !strings.Contains(err.Error(), "the old certificates are back") {
		t.Fatalf("Step: %v, want the API server's renewal undone", err)
	}
	st := f.status(t)
	if st.Stage != carotation.Reissue || !strings.Contains(st.Message, "failed, retrying") {
		t.Errorf("status %+v, want stage Reissue with the failure", st)
	}
	_, no := f.onNew(t)
	for _, name := range []string{"apiserver", "apiserver-kubelet-client", "apiserver-etcd-client", "front-proxy-client"} {
		if !slices.Contains(no, name) {
			t.Errorf("%s moved to the new CA though the API server was not healthy on it", name)
		}
	}
	refuse = false
	if err := f.m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.ReadyToFinish {
		t.Errorf("after the retry: %+v", st)
	}
}

// A Secret naming another rotation while the master is mid-way through one is refused.
func TestMasterRefusesAnotherRotation(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.unhealthy[renewal.Etcd] = 1 << 30 // TrustBoth cannot complete
	f.m.Renewer.HealthTimeout = 100 * time.Millisecond
	if err := f.m.Step(ctx); err == nil {
		t.Fatal("TrustBoth completed with etcd unhealthy")
	}
	s, _ := f.m.Client.CoreV1().Secrets(carotation.Namespace).Get(ctx, carotation.SecretName, metav1.GetOptions{})
	s.Data[carotation.IDKey] = []byte("another")
	f.m.Client.CoreV1().Secrets(carotation.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	err := f.m.Step(ctx)
	if err == nil || !strings.Contains(err.Error(), "finish") || !strings.Contains(err.Error(), string(carotation.TrustBoth)) {
		t.Errorf("Step with another rotation's Secret: %v", err)
	}
}

// caData is a kubeconfig's CA data.
func (f *fixture) caData(t *testing.T, name string) []byte {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(filepath.Join(f.root, manifests.KubernetesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].CertificateAuthorityData
}
