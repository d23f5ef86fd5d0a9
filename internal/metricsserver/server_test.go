package metricsserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// The reviews below come from an HTTP stand-in for the API server's two review endpoints,
// answering as an API server would for one scraper allowed to get /metrics: what the server
// concludes from the answers, not whether a real API server gives them (test/controlplane runs
// that against a real one). client-go's fake clientset cannot stand in: the webhook clients
// post through the REST client, which the fake lacks.
const (
	scraper      = "system:serviceaccount:monitoring:prometheus"
	scraperToken = "scraper-token"
	otherToken   = "other-token"
)

func reviews(t *testing.T) kubernetes.Interface {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out any
		switch r.URL.Path {
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			var tr authenticationv1.TokenReview
			if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			switch tr.Spec.Token {
			case scraperToken:
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: scraper}}
			case otherToken:
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "system:serviceaccount:default:other"}}
			}
			out = &tr
		case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			var sar authorizationv1.SubjectAccessReview
			if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			nr := sar.Spec.NonResourceAttributes
			who := sar.Spec.User == scraper || slices.Contains(sar.Spec.Groups, "kubeadm:cluster-admins")
			sar.Status.Allowed = who && nr != nil && nr.Path == "/metrics" && nr.Verb == "get"
			out = &sar
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
}

func TestServeLetsInOnlyWhomTheAPIServerAllows(t *testing.T) {
	dir := newBundle(t)
	// Another cluster's CA signs a certificate this one must not accept.
	other := newBundle(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The API server's certificate names 127.0.0.1 (configs/local.yaml's certSANs): it stands
	// in for the kubelet's serving certificate, which names the machine's address.
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, Options{
			CertFile: filepath.Join(dir, "pki/apiserver.crt"), KeyFile: filepath.Join(dir, "pki/apiserver.key"),
			ClientCA: filepath.Join(dir, "pki/ca.crt"), Client: reviews(t),
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "kubeup_metric 1") }),
		})
	}()
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "pki/ca.crt"))
	roots.AppendCertsFromPEM(caPEM)
	url := "https://" + ln.Addr().String() + "/metrics"
	get := func(method, token string, certs ...tls.Certificate) (int, string) {
		t.Helper()
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
		req, _ := http.NewRequest(method, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	admin := func(dir string) tls.Certificate {
		kc, err := clientcmd.LoadFromFile(filepath.Join(dir, "admin.conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, ai := range kc.AuthInfos {
			c, err := tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		t.Fatal("admin.conf has no user")
		return tls.Certificate{}
	}
	for _, tc := range []struct {
		name   string
		method string
		token  string
		certs  []tls.Certificate
		want   int
	}{
		{"no credentials", "GET", "", nil, http.StatusUnauthorized},
		{"a token the API server does not know", "GET", "made-up", nil, http.StatusUnauthorized},
		{"a known user not allowed to get /metrics", "GET", otherToken, nil, http.StatusForbidden},
		{"the scraper", "GET", scraperToken, nil, http.StatusOK},
		{"the scraper, writing", "POST", scraperToken, nil, http.StatusMethodNotAllowed},
		{"a client certificate from the cluster CA (admin)", "GET", "", []tls.Certificate{admin(dir)}, http.StatusOK},
		{"a client certificate from another CA", "GET", "", []tls.Certificate{admin(other)}, http.StatusUnauthorized},
	} {
		code, body := get(tc.method, tc.token, tc.certs...)
		if code != tc.want || (code == http.StatusOK) != strings.Contains(body, "kubeup_metric 1") {
			t.Errorf("%s: HTTP %d %q, want %d", tc.name, code, body, tc.want)
		}
	}
	// Plain HTTP gets no metrics either.
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "kubeup_metric") {
			t.Errorf("plain HTTP got the metrics: %q", body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return after its context ended")
	}
}

// TestServeWaitsForTheCertificate: the kubelet gets its serving certificate once its CSR is
// approved; until then the server waits instead of failing.
func TestServeWaitsForTheCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(newBundle(t), "pki/ca.crt")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Serve(ctx, ln, Options{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "missing.pem"),
		ClientCA: ca, Client: reviews(t), Handler: http.NotFoundHandler()})
	if err != nil || ctx.Err() == nil {
		t.Errorf("Serve without a certificate: %v before its context ended (%v); want it to wait", err, ctx.Err())
	}
}

// newBundle writes a secrets bundle for configs/local.yaml into a new directory.
func newBundle(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Parse("local.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}
