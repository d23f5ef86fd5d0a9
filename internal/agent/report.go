package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Reporter tells the world how a machine's bring-up goes: one line per step on the console
// (the serial console on a VM: readable without logging in), to the PXE server's /report when
// one is configured, and, once the API answers, a Kubernetes Event on the machine's Node.
type Reporter struct {
	Machine string
	Console io.Writer
	// Client, when set, also records each report as an Event.
	Client kubernetes.Interface
	// URL, when set, also gets each report as a JSON POST (the PXE server), over HTTP with
	// HTTP, which trusts the cluster CA.
	URL  string
	HTTP *http.Client
}

// PostedReport is what a machine posts to the PXE server's /report.
type PostedReport struct {
	Machine string    `json:"machine"`
	Phase   string    `json:"phase"`
	Result  string    `json:"result"`
	Pass    bool      `json:"pass"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// NewHTTPClient trusts only the CA in caFile, for posting reports to the PXE server (whose
// certificate the cluster CA issued).
func NewHTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	c, err := HTTPClientFor(pem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caFile, err)
	}
	return c, nil
}

// HTTPClientFor is an HTTPS client that trusts only the CA certificates in caPEM: the PXE
// server's clients (agents, kubeup status, the benchmark) trust the cluster CA and nothing else.
func HTTPClientFor(caPEM []byte) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, nil
}

// post sends one report to the PXE server; a server that does not answer costs one line on
// the console, never the bring-up.
func (r *Reporter) post(ctx context.Context, rep PostedReport) {
	body, _ := json.Marshal(rep)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	c := r.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			err = fmt.Errorf("%s", resp.Status)
		}
	}
	if err != nil && r.Console != nil {
		fmt.Fprintf(r.Console, "kubeup: %s: could not post the report to %s: %v\n", r.Machine, r.URL, err)
	}
}

// Report prints and records one phase result. ok=false makes a Warning event.
func (r *Reporter) Report(ctx context.Context, phase, result string, ok bool, msg string) {
	status := "ok"
	if !ok {
		status = "FAIL"
	}
	if r.Console != nil {
		fmt.Fprintf(r.Console, "kubeup: %s phase %s %s %s: %s\n", r.Machine, phase, result, status, msg)
	}
	if r.URL != "" {
		r.post(ctx, PostedReport{Machine: r.Machine, Phase: phase, Result: result, Pass: ok, Message: msg, Time: time.Now().UTC()})
	}
	typ := corev1.EventTypeNormal
	if !ok {
		typ = corev1.EventTypeWarning
	}
	r.Event(ctx, typ, "KubeupPhase"+phase+result, msg)
}

// Event records an Event of type typ on the machine's Node, when the reporter has a client.
func (r *Reporter) Event(ctx context.Context, typ, reason, msg string) {
	if r.Client == nil {
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "kubeup-" + r.Machine + "-", Namespace: metav1.NamespaceDefault},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node", Name: r.Machine, APIVersion: "v1"},
		Reason:              reason,
		Message:             msg,
		Type:                typ,
		Source:              corev1.EventSource{Component: "kubeup-agent", Host: r.Machine},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubeup.dev/agent",
		ReportingInstance:   r.Machine,
	}
	if _, err := r.Client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && r.Console != nil {
		fmt.Fprintf(r.Console, "kubeup: %s: could not record event: %v\n", r.Machine, err)
	}
}
