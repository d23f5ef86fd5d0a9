package renewal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/manifests"
)

// Health checks that a restarted component runs with the certificates on disk: not only that it
// answers, but that it presents or uses the new certificate.
type Health struct {
	Root string
	// APIServer and Etcd are the local URLs (https://127.0.0.1:6443, https://127.0.0.1:2379).
	APIServer, Etcd string
	// ControllerManager and Scheduler are their secure ports' URLs (https://127.0.0.1:10257,
	// https://127.0.0.1:10259).
	ControllerManager, Scheduler string
}

// LocalHealth is Health for the master's components on their usual local addresses.
func LocalHealth(root, apiServer string) *Health {
	return &Health{Root: root, APIServer: apiServer, Etcd: "https://127.0.0.1:2379",
		ControllerManager: "https://127.0.0.1:10257", Scheduler: "https://127.0.0.1:10259"}
}

// Check is a Renewer's Healthy.
func (h *Health) Check(ctx context.Context, comp string, since time.Time) error {
	switch comp {
	case Etcd:
		return h.serves(ctx, h.Etcd+"/health", "etcd/server", "etcd/ca", filepath.Join(h.pki(), "etcd/healthcheck-client"))
	case APIServer:
		// /readyz includes etcd: it also proves apiserver-etcd-client.
		return h.serves(ctx, h.APIServer+"/readyz", "apiserver", "ca", "")
	case ControllerManager:
		return h.delegates(ctx, h.ControllerManager+"/metrics")
	case Scheduler:
		return h.delegates(ctx, h.Scheduler+"/metrics")
	}
	return fmt.Errorf("no health check for %q", comp)
}

func (h *Health) pki() string { return filepath.Join(h.Root, manifests.PKIDir) }

// serves GETs url and checks the answer is 200 and the server presented the certificate now in
// the file named cert. clientCert is the base of a client certificate and key under pki/, or
// empty for admin.conf's.
func (h *Health) serves(ctx context.Context, url, cert, ca, clientCert string) error {
	caPEM, err := os.ReadFile(filepath.Join(h.pki(), ca+".crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	var client tls.Certificate
	if clientCert != "" {
		client, err = tls.LoadX509KeyPair(clientCert+".crt", clientCert+".key")
	} else {
		client, err = h.adminCert()
	}
	if err != nil {
		return err
	}
	want, err := Item{Name: cert}.Read(h.Root)
	if err != nil {
		return err
	}
	state, err := get(ctx, url, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}})
	if err != nil {
		return err
	}
	got := state.PeerCertificates[0]
	if got.SerialNumber.Cmp(want.Cert.SerialNumber) != 0 {
		return fmt.Errorf("%s answers but still presents the old certificate (serial %x, on disk %x)", url, got.SerialNumber, want.Cert.SerialNumber)
	}
	return nil
}

func (h *Health) adminCert() (tls.Certificate, error) {
	kc, err := clientcmd.LoadFromFile(filepath.Join(h.Root, manifests.KubernetesDir, "admin.conf"))
	if err != nil {
		return tls.Certificate{}, err
	}
	ai := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	return tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
}

// delegates GETs a path that the component authorizes by asking the API server
// (SubjectAccessReview) with its own kubeconfig: a 200 proves the process now running reaches
// the API with the certificate on disk. (Its leader lease would prove it too, but a restarted
// controller-manager waits out the old process's lease first: a minute here.) The component's
// serving certificate is self-signed, so it is not verified; this runs on loopback only.
func (h *Health) delegates(ctx context.Context, url string) error {
	client, err := h.adminCert()
	if err != nil {
		return err
	}
	_, err = get(ctx, url, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
	return err
}

// get GETs url on a fresh connection (so the server's current certificate is the one seen)
// and returns its TLS state when the answer is 200.
func get(ctx context.Context, url string, tc *tls.Config) (*tls.ConnectionState, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return resp.TLS, nil
}
