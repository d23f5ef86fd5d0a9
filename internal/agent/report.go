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
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// Reporter tells the world how a machine's bring-up goes: one line per step on the console
// (the serial console on a VM: readable without logging in), to the PXE server's /report when
// one is configured, and, once the API answers, a Kubernetes Event on the machine's Node.
type Reporter struct {
	Machine string
	Console io.Writer
	// Client, when set, is the machine's API client (its Node's annotations).
	Client kubernetes.Interface
	// Events, when set, also records each report as an Event on the machine's Node (NewEvents).
	Events events.EventRecorder
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

// NewEvents records Events through client-go's events library, which turns a repeated Event
// into a series on one object instead of a new object each time, until ctx ends. One recorder
// serves every Reporter of a machine that shares its client.
func NewEvents(ctx context.Context, c kubernetes.Interface) events.EventRecorder {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: c.EventsV1()})
	b.StartRecordingToSink(ctx.Done())
	return b.NewRecorder(scheme.Scheme, EventsController)
}

// EventsController is the reporting controller of the agents' Events.
const EventsController = "kubeup.dev/agent"

// noteLimit is the API's limit on an Event's note: a longer one is refused whole.
const noteLimit = 1024

// Event records an Event of type typ on the machine's Node, when the reporter has a recorder.
// It is sent in the background; a failure is logged by the events library and retried.
func (r *Reporter) Event(ctx context.Context, typ, reason, msg string) {
	r.EventAbout(ctx, typ, reason, "Report", msg)
}

// EventAbout is Event for what about names (a certificate, a component). The events library
// makes one series of the Events with the same reason and subject, keeping the first one's
// note: Events about different things stay apart, each with its own note, and only a true
// repeat is counted instead of written again.
func (r *Reporter) EventAbout(_ context.Context, typ, reason, about, msg string) {
	if r.Events == nil {
		return
	}
	if len(msg) > noteLimit {
		msg = cut(msg, noteLimit-len(" [...]")) + " [...]"
	}
	about = cut(about, actionLimit)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.Machine}}
	r.Events.Eventf(node, nil, typ, reason, about, "%s", msg)
}

// actionLimit is the API's limit on an Event's action, which carries the subject.
const actionLimit = 128

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
