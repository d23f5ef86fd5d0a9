package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// Reports reach the PXE server over HTTPS trusting only the CA file; a server the CA did not
// issue is refused and the refusal is a console line, not a failed bring-up.
func TestReportsArePostedToThePXEServer(t *testing.T) {
	got := make(chan PostedReport, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep PostedReport
		json.NewDecoder(r.Body).Decode(&rep)
		got <- rep
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	c, err := NewHTTPClient(ca)
	if err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	r := &Reporter{Machine: "node-1", Console: &console, URL: srv.URL + "/report", HTTP: c}
	r.Report(context.Background(), "1", "NodeSpec", true, "9 checks")
	rep := <-got
	if rep.Machine != "node-1" || rep.Phase != "1" || rep.Result != "NodeSpec" || !rep.Pass || rep.Message != "9 checks" || rep.Time.IsZero() {
		t.Errorf("posted %+v", rep)
	}

	// Another CA: the same server is not trusted any more.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if r.HTTP, err = NewHTTPClient(ca); err != nil {
		t.Fatal(err)
	}
	r.Report(context.Background(), "1", "NodeSpec", true, "again")
	if !strings.Contains(console.String(), "could not post the report") || !strings.Contains(console.String(), "certificate") {
		t.Errorf("a server the CA did not issue: console %q", console.String())
	}
}

// A kubeconfig whose client certificate is not written yet is waited for, not an error.
func TestWaitForKubeconfigWaitsForItsCertificate(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	cert := filepath.Join(root, "client.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "system:node:n"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	caData := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://127.0.0.1:6443, certificate-authority-data: " + caData + "}}]\n" +
		"users: [{name: u, user: {client-certificate: " + cert + ", client-key: " + cert + "}}]\n" +
		"contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
	os.WriteFile(filepath.Join(root, "etc/kubelet.conf"), []byte(kc), 0o600)
	kder, _ := x509.MarshalECPrivateKey(key)
	written := make(chan struct{})
	go func() { // the kubelet writes its certificate a moment after its kubeconfig
		time.Sleep(500 * time.Millisecond)
		os.WriteFile(cert, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), 0o600)
		close(written)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := WaitForKubeconfig(ctx, root, "etc/kubelet.conf"); err != nil {
		t.Fatalf("the certificate came a moment later: %v", err)
	}
	select {
	case <-written:
	default:
		t.Fatal("WaitForKubeconfig returned before the certificate was written")
	}
	os.Remove(cert)
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := WaitForKubeconfig(ctx, root, "etc/kubelet.conf"); err == nil || !strings.Contains(err.Error(), "client.pem") {
		t.Errorf("no certificate at all: %v, want the load error once the deadline passes", err)
	}
}

// Events go through client-go's events library: Events about different things stay apart, each
// with its own note; a repeat about the same thing becomes a series on the first one.
func TestEventsAboutDifferentThingsStayApart(t *testing.T) {
	c := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &Reporter{Machine: "master", Events: NewEvents(ctx, c)}
	r.EventAbout(ctx, corev1.EventTypeNormal, "CertificateRenewed", "etcd", "renewed etcd/server; etcd healthy")
	r.EventAbout(ctx, corev1.EventTypeNormal, "CertificateRenewed", "kube-apiserver", "renewed apiserver; kube-apiserver healthy")
	r.EventAbout(ctx, corev1.EventTypeNormal, "CertificateRenewed", "etcd", "renewed etcd/server again")
	r.Event(ctx, corev1.EventTypeWarning, "KubeupPhase3APIReady", strings.Repeat("x", 2000))
	var notes map[string]string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		evs, err := c.EventsV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		notes = map[string]string{}
		series := 0
		for _, ev := range evs.Items {
			notes[ev.Action] = ev.Note
			if ev.Series != nil {
				series = int(ev.Series.Count)
			}
			if ev.Regarding.Kind != "Node" || ev.Regarding.Name != "master" || ev.ReportingController != EventsController {
				return false, fmt.Errorf("event %s regards %+v, reported by %s", ev.Name, ev.Regarding, ev.ReportingController)
			}
		}
		return len(evs.Items) == 3 && series == 2, nil
	})
	if err != nil {
		t.Fatalf("events by subject: %v (%v); want etcd (a series of 2), kube-apiserver and Report", notes, err)
	}
	// The library records a series' first Event from whichever of its two repeats its
	// broadcaster took first (4 runs in 30 had the second): either etcd note will do.
	if etcd := notes["etcd"]; etcd != "renewed etcd/server; etcd healthy" && etcd != "renewed etcd/server again" || notes["kube-apiserver"] != "renewed apiserver; kube-apiserver healthy" {
		t.Errorf("notes %v", notes)
	}
	if n := len(notes["Report"]); n > noteLimit {
		t.Errorf("a note of %d bytes: the API refuses over %d", n, noteLimit)
	}
}
