package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/metricsserver"
)

// checkAgentMetrics serves metrics as a machine's agent does, its reviews made with the
// master's kubelet credentials (system:node:master, which the Node authorizer lets create
// TokenReviews and SubjectAccessReviews), against the real API server: a scrape without
// credentials, with a made-up token, or by a ServiceAccount not allowed to get /metrics is
// refused, and the same ServiceAccount bound to system:monitoring gets the metrics.
func checkAgentMetrics(t *testing.T, ctx context.Context, e *env) {
	pkiDir := filepath.Join(e.root, "etc/kubernetes/pki")
	kubelet, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.root, "etc/kubernetes/kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The master's address, which its API server certificate names, stands in for the
	// kubelet's serving certificate.
	ln, err := net.Listen("tcp", e.cfg.Master().IP().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go metricsserver.Serve(sctx, ln, metricsserver.Options{
		CertFile: filepath.Join(pkiDir, "apiserver.crt"), KeyFile: filepath.Join(pkiDir, "apiserver.key"),
		ClientCA: filepath.Join(pkiDir, "ca.crt"), Client: kubernetes.NewForConfigOrDie(kubelet),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "kubeup_test_metric 1") }),
	})

	const ns, sa = "monitoring", "prometheus"
	if _, err := e.adminCS.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adminCS.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := e.adminCS.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.bundle.File("pki/ca.crt"))
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	scrape := func(token string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ln.Addr().String()+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	// Until the server has loaded its certificate, connections are refused.
	expect := func(what, token string, want int) {
		t.Helper()
		var code int
		var body string
		err := wait.PollUntilContextTimeout(ctx, time.Second, 90*time.Second, true, func(context.Context) (bool, error) {
			var err error
			code, body, err = scrape(token)
			return err == nil && code == want, nil
		})
		if err != nil {
			t.Fatalf("%s: HTTP %d %q, want %d", what, code, body, want)
		}
	}
	expect("no credentials", "", http.StatusUnauthorized)
	expect("a made-up token", "not-a-token", http.StatusUnauthorized)
	expect("a ServiceAccount not allowed to get /metrics", tr.Status.Token, http.StatusForbidden)
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-monitoring"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:monitoring"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
	}
	if _, err := e.adminCS.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A denial is cached for 30 s.
	expect("the ServiceAccount bound to system:monitoring", tr.Status.Token, http.StatusOK)
	if _, body, _ := scrape(tr.Status.Token); body != "kubeup_test_metric 1\n" {
		t.Errorf("the scrape got %q", body)
	}
}
