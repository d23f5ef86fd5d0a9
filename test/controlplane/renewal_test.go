package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/renewal"
	"kubeup.dev/kubeup/test/testenv"
)

// restartSlack is how long after a component reports healthy a client may still see the
// restart (a request sent just before, answered just after).
const restartSlack = 3 * time.Second

// maxWindow is the longest the API may be unavailable for one restart of etcd or the API
// server: what the test asserts, with room for this 2-core machine shared with other builds.
const maxWindow = 60 * time.Second

// The agent's renewal, against the real control plane with every leaf certificate and
// kubeconfig issued for 2 minutes: it renews each twice, restarting etcd, the API server, the
// controller-manager and the scheduler one at a time (as the kubelet would, on a changed
// manifest) with a health check that proves the new certificate is in use; a client sending a
// request every second with admin.conf, read afresh from disk each time as kubectl does, sees
// failures only while etcd or the API server restarts, each window under maxWindow, and none
// after the first certificates have expired.
func TestRenewal(t *testing.T) {
	const life = 2 * time.Minute
	shorten := func(root string) {
		r := &renewal.Renewer{Root: root, Items: renewal.MasterItems, Share: 1, Lifetime: life,
			Restart: func(context.Context, string) error { return nil },
			Healthy: func(context.Context, string, time.Time) error { return nil }}
		if _, err := r.RenewDue(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	e := setup(t, shorten)
	ctx := t.Context()
	m := &agent.Master{Config: e.agentCfg, Root: e.root, Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}}}
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		t.Fatal(err)
	}

	first, err := (&renewal.Renewer{Root: e.root, Items: renewal.MasterItems}).Read()
	if err != nil {
		t.Fatal(err)
	}
	expiry := first[0].Cert.NotAfter
	for _, c := range first {
		if c.Cert.NotAfter.Before(expiry) {
			expiry = c.Cert.NotAfter
		}
	}
	t.Logf("control plane up and bootstrapped %v after start; its certificates expire at %s", time.Since(e.startedAt).Round(time.Second), expiry.Format(time.TimeOnly))

	// The client: one request a second, each with admin.conf as it is on disk then.
	stopClient := testenv.SteadyClient(ctx, filepath.Join(e.root, "etc/kubernetes/admin.conf"), time.Second, 3*time.Second)

	// The renewer, with the real health checks; restarts of what the client depends on are
	// recorded as windows.
	type window struct {
		comp       string
		start, end time.Time
	}
	var windows []window
	health := renewal.LocalHealth(e.root, "https://127.0.0.10:6443")
	r := &renewal.Renewer{Root: e.root, Items: renewal.MasterItems, Share: 2.0 / 3, Lifetime: life,
		HealthTimeout: 2 * time.Minute, Log: t.Logf,
		Restart: func(_ context.Context, comp string) error {
			windows = append(windows, window{comp: comp, start: time.Now()})
			e.procs[comp].restart(t)
			return nil
		},
		Healthy: func(ctx context.Context, comp string, since time.Time) error {
			err := health.Check(ctx, comp, since)
			if err == nil {
				windows[len(windows)-1].end = time.Now()
			}
			return err
		},
	}
	// The agent's loop around it: metrics, the Node annotation, Events, with a client that
	// follows admin.conf's renewals. The Node is registered by hand: no kubelet runs here.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "master"}}
	if _, err := e.adminCS.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reloading, err := agent.ReloadingConfig(filepath.Join(e.root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	agentClient := kubernetes.NewForConfigOrDie(reloading)
	metrics := renewal.NewMetrics()
	w := &agent.CertWatch{Machine: "master", Root: e.root, Renewer: r, Metrics: metrics,
		Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}, Client: agentClient, Events: agent.NewEvents(t.Context(), agentClient)}}
	renewed := map[string]int{}
	done := func() bool {
		for _, it := range renewal.MasterItems {
			if renewed[it.Name] < 2 {
				return false
			}
		}
		return time.Now().After(expiry.Add(5 * time.Second))
	}
	deadline := time.Now().Add(8 * time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("not every certificate renewed twice after 8 minutes: %v", renewed)
		}
		before := map[string]string{}
		for _, c := range must(r.Read()) {
			before[c.Name] = c.Cert.SerialNumber.String()
		}
		certs, out := w.Pass(ctx)
		for _, o := range out {
			if o.Err != nil {
				t.Fatalf("renewal of %q: %v", o.Component, o.Err)
			}
		}
		for _, c := range certs {
			if s, ok := before[c.Name]; ok && s != c.Cert.SerialNumber.String() {
				renewed[c.Name]++
			}
		}
		time.Sleep(2 * time.Second) // the agent's check interval, scaled down
	}
	answers := stopClient()

	for _, w := range windows {
		t.Logf("%s restarted: unavailable-to-healthy window %v", w.comp, w.end.Sub(w.start).Round(time.Millisecond))
		if d := w.end.Sub(w.start); d > maxWindow {
			t.Errorf("%s took %v to be healthy on its renewed certificates, over the %v bound", w.comp, d, maxWindow)
		}
	}
	failed := 0
	for _, a := range answers {
		if a.Err == nil {
			continue
		}
		failed++
		inWindow := slices.ContainsFunc(windows, func(w window) bool {
			return (w.comp == renewal.Etcd || w.comp == renewal.APIServer) &&
				!a.At.Before(w.start.Add(-restartSlack)) && !a.At.After(w.end.Add(restartSlack))
		})
		if !inWindow {
			t.Errorf("request at %s failed outside any etcd or API server restart: %v", a.At.Format(time.TimeOnly), a.Err)
		}
	}
	t.Logf("%d requests, %d failed (all during restarts); renewals: %v", len(answers), failed, renewed)
	if len(answers) < 60 {
		t.Errorf("only %d requests were made: the client did not run through the renewals", len(answers))
	}
	// One more pass publishes the state the checks below compare with (and may renew again).
	w.Pass(ctx)
	last := must(r.Read())
	for _, c := range last {
		if !c.Cert.NotAfter.After(expiry.Add(life / 3)) {
			t.Errorf("%s expires at %s: not renewed past the first certificates' expiry", c.Name, c.Cert.NotAfter.Format(time.TimeOnly))
		}
	}

	// What the agent published, read back the way an operator would: with admin.conf as it
	// is now (the one read at start has expired).
	now, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	operator := kubernetes.NewForConfigOrDie(now)
	n, err := operator.CoreV1().Nodes().Get(ctx, "master", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var published []agent.Expiry
	if err := json.Unmarshal([]byte(n.Annotations[agent.CertificatesAnnotation]), &published); err != nil {
		t.Fatalf("annotation %s: %v", agent.CertificatesAnnotation, err)
	}
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, c := range last {
		if !slices.ContainsFunc(published, func(x agent.Expiry) bool { return x.Name == c.Name && x.NotAfter.Equal(c.Cert.NotAfter) }) {
			t.Errorf("the Node's annotation lacks %s expiring at %s: %v", c.Name, c.Cert.NotAfter, published)
		}
		line := fmt.Sprintf(`%s{machine="master",name=%q} %s`, renewal.ExpiryMetric, c.Name, strconv.FormatFloat(float64(c.Cert.NotAfter.Unix()), 'g', -1, 64))
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, rec.Body.String())
		}
	}
	// `kubeup certs status` lists them, from the host, with what is on disk.
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
	status, err := exec.CommandContext(ctx, kubeup, "certs", "status", "--kubeconfig", filepath.Join(e.root, "etc/kubernetes/admin.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeup certs status: %v\n%s", err, status)
	}
	t.Logf("kubeup certs status:\n%s", status)
	for _, c := range last {
		if !regexp.MustCompile(`(?m)^master +` + regexp.QuoteMeta(c.Name) + ` +` + c.Cert.NotAfter.UTC().Format("2006-01-02 15:04") + ` `).Match(status) {
			t.Errorf("kubeup certs status does not list %s expiring at %s", c.Name, c.Cert.NotAfter.UTC().Format("2006-01-02 15:04"))
		}
	}
	// The same as a document for scripts: every certificate with its exact expiry.
	doc, err := exec.CommandContext(ctx, kubeup, "certs", "status", "-o", "json", "--kubeconfig", filepath.Join(e.root, "etc/kubernetes/admin.conf")).Output()
	var certs struct {
		Machines []struct {
			Machine      string `json:"machine"`
			Reported     bool   `json:"reported"`
			Certificates []struct {
				Name     string    `json:"name"`
				NotAfter time.Time `json:"notAfter"`
			} `json:"certificates"`
		} `json:"machines"`
	}
	if jerr := json.Unmarshal(doc, &certs); jerr != nil {
		t.Fatalf("kubeup certs status -o json: %v, %v\n%s", err, jerr, doc)
	}
	got := map[string]time.Time{}
	for _, m := range certs.Machines {
		for _, c := range m.Certificates {
			if m.Machine == "master" && m.Reported {
				got[c.Name] = c.NotAfter
			}
		}
	}
	for _, c := range last {
		if !got[c.Name].Equal(c.Cert.NotAfter) {
			t.Errorf("kubeup certs status -o json: master's %s expires %v, want %v", c.Name, got[c.Name], c.Cert.NotAfter)
		}
	}
	// Certificates of two minutes are always under seven days from expiry: each one warns.
	// (Events are sent in the background: waited for.)
	waitFor(t, ctx, "renewal and expiry Events on Node master", time.Minute, func() error {
		reasons := eventReasons(ctx, t, operator)
		if reasons["CertificateRenewed"] < 2*len(renewal.RestartOrder) || reasons["CertificateExpiresSoon"] < len(renewal.MasterItems) || reasons["CertificateRenewalFailed"] != 0 {
			return fmt.Errorf("events on Node master by reason: %v; want renewals, expiry warnings and no failure", reasons)
		}
		return nil
	})
}

// eventReasons counts the Events on Node master by reason, an Event that the events library
// made a series counting as often as it happened.
func eventReasons(ctx context.Context, t *testing.T, c kubernetes.Interface) map[string]int {
	t.Helper()
	evs, err := c.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=master"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, ev := range evs.Items {
		n := 1
		if ev.Series != nil && ev.Series.Count > 1 {
			n = int(ev.Series.Count)
		}
		reasons[ev.Reason] += n
	}
	return reasons
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
