package carotation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/carotation/carotationtest"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// These tests run the master's stages on carotationtest's master tree: they check the files
// and the order of restarts. The real components, restarts and health checks run in
// test/controlplane's TestCARotation.

type fixture struct{ *carotationtest.Master }

func newFixture(t *testing.T) *fixture {
	return &fixture{carotationtest.New(t, "../../configs/local.yaml")}
}

// ski is the key id of a PEM certificate, as the agent publishes it.
func (f *fixture) ski(t *testing.T, certPEM []byte) string { return carotationtest.SKI(t, certPEM) }

// trusts sets what node-1's agent publishes that it trusts.
func (f *fixture) trusts(t *testing.T, cas ...[]byte) {
	t.Helper()
	n, err := f.M.Client.CoreV1().Nodes().Get(t.Context(), "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cas {
		ids = append(ids, f.ski(t, c))
	}
	n.Annotations[agent.TrustAnnotation] = strings.Join(ids, ",")
	if _, err := f.M.Client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rolled plays the controllers: n pods of each add-on are from the current template.
func (f *fixture) rolled(t *testing.T, n int32) {
	t.Helper()
	ctx := t.Context()
	d, _ := f.M.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	d.Status.UpdatedReplicas = min(n, d.Status.Replicas)
	ds, _ := f.M.Client.AppsV1().DaemonSets("kube-flannel").Get(ctx, "kube-flannel-ds", metav1.GetOptions{})
	ds.Status.UpdatedNumberScheduled = min(n, ds.Status.CurrentNumberScheduled)
	if _, err := f.M.Client.AppsV1().Deployments("kube-system").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.Client.AppsV1().DaemonSets("kube-flannel").UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) status(t *testing.T) *carotation.Status {
	t.Helper()
	st, err := carotation.GetStatus(t.Context(), f.M.Client)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) file(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.Root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// onNew reports which of the master's certificates are issued by the new CAs.
func (f *fixture) onNew(t *testing.T) (yes, no []string) {
	t.Helper()
	certs, err := f.M.Renewer.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		i := slices.IndexFunc(f.News, func(n pki.NewCA) bool { return n.CA == c.CA })
		ca, _ := pki.CertsPEM(f.News[i].Cert)
		if c.Cert.CheckSignatureFrom(ca[0]) == nil {
			yes = append(yes, c.Name)
		} else {
			no = append(no, c.Name)
		}
	}
	return yes, no
}

// The whole way through: the master trusts both CAs and waits while a node does not (no
// restart while it waits); once the node trusts the new CA, one Step takes the master to
// ReadyToFinish, restarting every component in the stages' order; another Step does nothing;
// with finish requested, a Step drops the old CAs; after that nothing happens again.
func TestMasterStages(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.trusts(t, f.OldCA)
	trustBoth := []string{renewal.ControllerManager, renewal.Etcd, renewal.APIServer, renewal.Scheduler}
	for range 2 {
		if busy, err := f.M.Step(ctx); err != nil || !busy {
			t.Fatalf("Step: busy %v, %v; want busy", busy, err)
		}
		if st := f.status(t); st.Stage != carotation.NodesTrust || !strings.Contains(st.Message, "node node-1 (trusts "+f.ski(t, f.OldCA)+";") || strings.Contains(st.Message, "master") {
			t.Fatalf("with node-1 trusting the old CA only: %+v, want %s naming node-1 only", st, carotation.NodesTrust)
		}
		if !slices.Equal(f.Restarts, trustBoth) {
			t.Fatalf("restarts %v, want TrustBoth's %v only", f.Restarts, trustBoth)
		}
	}
	f.trusts(t, f.OldCA, f.News[0].Cert)
	// The add-ons are asked to restart their pods, and the master waits for them.
	if busy, err := f.M.Step(ctx); err != nil || !busy {
		t.Fatalf("Step: busy %v, %v", busy, err)
	}
	st := f.status(t)
	if st.Stage != carotation.PodsTrust || !strings.Contains(st.Message, "deployment kube-system/coredns (restart asked)") || !strings.Contains(st.Message, "daemonset kube-flannel/kube-flannel-ds (restart asked)") {
		t.Fatalf("after node-1 trusts the new CA: %+v, want %s asking both add-ons to restart", st, carotation.PodsTrust)
	}
	d, _ := f.M.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if got := d.Spec.Template.Annotations[carotation.RestartAnnotation]; got != st.ID+"-both" {
		t.Fatalf("coredns's pod template annotation %q, want %q", got, st.ID+"-both")
	}
	// The controllers: one pod of each restarted, then all.
	f.rolled(t, 1)
	if _, err := f.M.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.PodsTrust || !strings.Contains(st.Message, "coredns (1 of 2 pods restarted)") {
		t.Fatalf("half rolled out: %+v", st)
	}
	f.rolled(t, 3)
	if _, err := f.M.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.ReadyToFinish {
		t.Fatalf("after node-1 trusts the new CA: %+v, want %s", st, carotation.ReadyToFinish)
	}
	want := append(trustBoth,
		renewal.Etcd, renewal.APIServer, renewal.ControllerManager, renewal.Scheduler, // Reissue
		renewal.ControllerManager, // SwitchSigner
	)
	if !slices.Equal(f.Restarts, want) {
		t.Errorf("restarts %v, want %v", f.Restarts, want)
	}
	if _, no := f.onNew(t); len(no) > 0 {
		t.Errorf("still from the old CA: %v", no)
	}
	for _, n := range f.News {
		got := f.file(t, manifests.PKIDir+"/"+string(n.CA)+".crt")
		if !bytes.HasPrefix(got, n.Cert) || len(got) == len(n.Cert) {
			t.Errorf("pki/%s.crt is not new then old CA", n.CA)
		}
		if !bytes.Equal(f.file(t, manifests.PKIDir+"/"+string(n.CA)+".key"), n.Key) {
			t.Errorf("pki/%s.key is not the new CA's key", n.CA)
		}
	}
	if !bytes.Equal(f.file(t, carotation.SignerCert), f.News[0].Cert) {
		t.Error("the signer is not the new cluster CA")
	}
	cm := string(f.file(t, manifests.ManifestsDir+"/kube-controller-manager.yaml"))
	if !strings.Contains(cm, "--cluster-signing-cert-file="+carotation.SignerCert) || !strings.Contains(cm, "--cluster-signing-key-file="+carotation.SignerKey) {
		t.Errorf("the controller-manager does not sign from the signer files:\n%s", cm)
	}
	if admin := f.caData(t, "admin.conf"); !bytes.Equal(admin, append(append([]byte{}, f.News[0].Cert...), f.OldCA...)) {
		t.Error("admin.conf does not trust old and new CA")
	}

	f.Restarts = nil
	if _, err := f.M.Step(ctx); err != nil || len(f.Restarts) != 0 {
		t.Fatalf("a pass at ReadyToFinish: %v, restarts %v; want nothing", err, f.Restarts)
	}
	// The controller-manager publishes the new CA alone once it restarts in Finishing.
	if _, err := f.M.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: carotation.RootCAConfigMap, Namespace: "kube-system"},
		Data:       map[string]string{"ca.crt": string(f.News[0].Cert)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := carotation.RequestFinish(ctx, f.M.Client); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.Finished {
		t.Fatalf("after finish: %+v", st)
	}
	if !slices.Equal(f.Restarts, renewal.RestartOrder) {
		t.Errorf("finish restarted %v, want %v", f.Restarts, renewal.RestartOrder)
	}
	if d, _ := f.M.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); d.Spec.Template.Annotations[carotation.RestartAnnotation] != st.ID+"-new" {
		t.Errorf("after finish coredns's pod template annotation is %q, want %q", d.Spec.Template.Annotations[carotation.RestartAnnotation], st.ID+"-new")
	}
	for _, n := range f.News {
		if !bytes.Equal(f.file(t, manifests.PKIDir+"/"+string(n.CA)+".crt"), n.Cert) {
			t.Errorf("pki/%s.crt is not the new CA alone", n.CA)
		}
	}
	if admin := f.caData(t, "admin.conf"); !bytes.Equal(admin, f.News[0].Cert) {
		t.Error("admin.conf still trusts the old CA")
	}
	cm = string(f.file(t, manifests.ManifestsDir+"/kube-controller-manager.yaml"))
	if !strings.Contains(cm, "--cluster-signing-cert-file="+manifests.PKIDir+"/ca.crt") {
		t.Error("the controller-manager does not sign from pki/ca.crt again")
	}
	for _, gone := range []string{carotation.WorkDir + "/old", carotation.WorkDir + "/new", carotation.SignerKey} {
		if _, err := os.Stat(filepath.Join(f.Root, gone)); err == nil {
			t.Errorf("%s is still there after finishing", gone)
		}
	}
	f.Restarts = nil
	if busy, err := f.M.Step(ctx); err != nil || len(f.Restarts) != 0 || busy {
		t.Errorf("a pass after finishing: busy %v, %v, restarts %v; want nothing", busy, err, f.Restarts)
	}
}

// An add-on whose pods do not restart (no room for new ones) holds PodsTrust only until its
// restart has made no progress for PodsTimeout; then the master goes on, and says what.
func TestMasterPodsTrustGoesOnWithoutProgress(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now()
	f.M.Now = func() time.Time { return now }
	var events []string
	f.M.Event = func(_ context.Context, ok bool, reason, msg string) {
		events = append(events, fmt.Sprint(ok, " ", reason, ": ", msg))
	}
	if _, err := f.M.Step(ctx); err != nil || f.status(t).Stage != carotation.PodsTrust {
		t.Fatalf("first pass: %v, %+v", err, f.status(t))
	}
	f.rolled(t, 0) // nothing restarts
	for range 2 {
		if _, err := f.M.Step(ctx); err != nil || f.status(t).Stage != carotation.PodsTrust {
			t.Fatalf("a pass within the timeout: %v, %+v", err, f.status(t))
		}
	}
	now = now.Add(carotation.DefaultPodsTimeout) // no progress for that long
	if _, err := f.M.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t); st.Stage != carotation.ReadyToFinish {
		t.Fatalf("after the timeout: %+v, want the master gone on to %s", st, carotation.ReadyToFinish)
	}
	if !slices.ContainsFunc(events, func(e string) bool {
		return strings.HasPrefix(e, "false CARotationPodsNotRestarted") && strings.Contains(e, "deployment kube-system/coredns (0 of 2 pods restarted)")
	}) {
		t.Errorf("events %q: want a warning naming coredns", events)
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
	healthy := f.M.Renewer.Healthy
	f.M.Renewer.Healthy = func(ctx context.Context, comp string, since time.Time) error {
		if comp == renewal.APIServer && refuse {
			if yes, _ := f.onNew(t); slices.Contains(yes, "apiserver") {
				return errors.New("refuses the new certificate")
			}
		}
		return healthy(ctx, comp, since)
	}
	// Through TrustBoth, NodesTrust (node-1 trusts both), and PodsTrust once the add-ons
	// restarted.
	if _, err := f.M.Step(ctx); err != nil || f.status(t).Stage != carotation.PodsTrust {
		t.Fatalf("first pass: %v, %+v", err, f.status(t))
	}
	f.rolled(t, 3)
	_, err := f.M.Step(ctx)
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
	if _, err := f.M.Step(ctx); err != nil {
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
	f.Unhealthy[renewal.Etcd] = 1 << 30 // TrustBoth cannot complete
	f.M.Renewer.HealthTimeout = 100 * time.Millisecond
	if _, err := f.M.Step(ctx); err == nil {
		t.Fatal("TrustBoth completed with etcd unhealthy")
	}
	s, _ := f.M.Client.CoreV1().Secrets(carotation.Namespace).Get(ctx, carotation.SecretName, metav1.GetOptions{})
	s.Data[carotation.IDKey] = []byte("another")
	f.M.Client.CoreV1().Secrets(carotation.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	_, err := f.M.Step(ctx)
	if err == nil || !strings.Contains(err.Error(), "finish") || !strings.Contains(err.Error(), string(carotation.TrustBoth)) {
		t.Errorf("Step with another rotation's Secret: %v", err)
	}
}

// caData is a kubeconfig's CA data.
func (f *fixture) caData(t *testing.T, name string) []byte {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(filepath.Join(f.Root, manifests.KubernetesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].CertificateAuthorityData
}
