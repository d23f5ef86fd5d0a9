package metal

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/pxe"
)

// pxeEnv is the real PXE server (package pxe) on loopback for configs/metal.yaml (cp-1,
// worker-1, worker-2), with a real bundle, and the provider pointed at it through
// metal.pxeServer.
type pxeEnv struct {
	p      *Provider
	b      *pki.Bundle
	url    string // the server's HTTPS base URL
	out    *bytes.Buffer
	server *httptest.Server
}

func newPXEEnv(t *testing.T) *pxeEnv {
	t.Helper()
	dir := t.TempDir()
	cfg, err := cluster.Load("../../../configs/metal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	b, err := pki.Ensure(state, cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pki.ServingCert(b, "kubeup-pxe", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e := &pxeEnv{b: b, out: &bytes.Buffer{}}
	e.server = httptest.NewUnstartedServer(nil)
	e.server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	e.server.StartTLS()
	t.Cleanup(e.server.Close)
	e.url = e.server.URL
	cfg.Metal.PXEServer = e.url
	e.p = &Provider{Config: cfg, Dir: filepath.Join(state, "metal"), CAFile: filepath.Join(state, "pki", "ca.crt"), Out: e.out, PowerCycleTimeout: time.Minute}
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	srv, err := pxe.New(pxe.Options{ConfigFile: "../../../configs/metal.yaml", IgnitionDir: e.p.IgnitionDir(), AssetsDir: filepath.Join(dir, "assets"),
		BaseURL: "http://127.0.0.1:1", TLSBaseURL: e.url, CA: b.File("pki/ca.crt"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.server.Config.Handler = srv.TLSHandler()
	return e
}

// report posts a report as machine's agent does, to metal.pxeServer over HTTPS.
func (e *pxeEnv) report(t *testing.T, machine, phase string, pass bool) {
	t.Helper()
	// t.Error, not t.Fatal: it also runs on a goroutine of its own.
	c, err := agent.HTTPClientFor(e.b.File("pki/ca.crt"))
	if err != nil {
		t.Error(err)
		return
	}
	var console bytes.Buffer
	r := &agent.Reporter{Machine: machine, Console: &console, URL: e.url + "/report", HTTP: c}
	r.Report(context.Background(), phase, "NodeSpec", pass, "3 checks")
	if strings.Contains(console.String(), "could not post") {
		t.Error(console.String())
	}
}

func stages(t *testing.T, p *Provider) string {
	t.Helper()
	ms, err := p.Machines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range ms {
		if !m.Running {
			t.Errorf("%s does not count as running", m.Name)
		}
		s = append(s, m.Name+"/"+m.Role+": "+m.Console.Stage())
	}
	return strings.Join(s, "; ")
}

// TestMetalFollowsThePXEServersReports: up's steps on bare metal against the real PXE server:
// the configs written 0600 where the server reads them, each machine's stage from the reports
// its agent posts (none yet, phase 1), a server that does not answer named on every machine
// rather than failing the wait, and down removing the configs.
func TestMetalFollowsThePXEServersReports(t *testing.T) {
	e := newPXEEnv(t)
	ctx := t.Context()
	if _, err := e.p.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	configs, err := ignition.Configs(e.p.Config, e.b, ignition.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.p.Deliver(ctx, configs); err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		fi, err := os.Stat(filepath.Join(e.p.IgnitionDir(), c.Name+".ign"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's config: %v %v", c.Name, fi, err)
		}
	}
	if err := e.p.Create(ctx); err != nil || !strings.Contains(e.out.String(), "kubeup pxe serve --ignition "+e.p.IgnitionDir()) {
		t.Errorf("create: %v; output does not say what to serve:\n%s", err, e.out)
	}

	if got, want := stages(t, e.p), "cp-1/master: no report yet; worker-1/node: no report yet; worker-2/node: no report yet"; got != want {
		t.Errorf("before any report: %s\nwant %s", got, want)
	}
	e.report(t, "worker-1", "1", true)
	e.report(t, "worker-2", "1", false)
	if got, want := stages(t, e.p), "cp-1/master: no report yet; worker-1/node: phase 1 passed; worker-2/node: phase 1 FAILED"; got != want {
		t.Errorf("after reports: %s\nwant %s", got, want)
	}

	e.server.Close()
	ms, err := e.p.Machines(ctx)
	if err != nil || len(ms) != 3 || !strings.Contains(ms[0].Console.Last, "the PXE server does not answer") || ms[1].Console.Stage() != "no report yet" {
		t.Errorf("with the server down: %v %+v", err, ms)
	}

	if err := e.p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.p.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("down left %s: %v", e.p.Dir, err)
	}
}

// TestMetalReplaceWaitsForTheNewBoot: a replacement puts the new config in place and returns
// once the machine reports phase 1 again, as after the operator's power cycle; a phase 1 that
// fails after the cycle fails the replacement.
func TestMetalReplaceWaitsForTheNewBoot(t *testing.T) {
	e := newPXEEnv(t)
	ctx := t.Context()
	e.report(t, "worker-1", "1", true) // the boot before
	go func() {
		time.Sleep(2 * time.Second) // the operator's power cycle
		e.report(t, "worker-1", "1", true)
	}()
	config := []byte(`{"ignition":{"version":"3.4.0"}}`)
	start := time.Now()
	if err := e.p.Replace(ctx, "worker-1", ignition.Config{Name: "worker-1", Role: "node", Raw: config}); err != nil {
		t.Fatalf("replace: %v\n%s", err, e.out)
	}
	if time.Since(start) < 2*time.Second {
		t.Error("replace returned before the new boot's report")
	}
	if got, _ := os.ReadFile(filepath.Join(e.p.IgnitionDir(), "worker-1.ign")); !bytes.Equal(got, config) {
		t.Errorf("the new config is not in place: %q", got)
	}
	if !strings.Contains(e.out.String(), "power-cycle it now") {
		t.Errorf("replace does not tell the operator what to do:\n%s", e.out)
	}

	go func() {
		time.Sleep(time.Second)
		e.report(t, "worker-2", "1", false)
	}()
	err := e.p.Replace(ctx, "worker-2", ignition.Config{Name: "worker-2", Role: "node", Raw: config})
	if err == nil || !strings.Contains(err.Error(), "phase 1 failed after the power cycle") {
		t.Errorf("replace with a failing phase 1: %v", err)
	}
	if err := e.p.Replace(ctx, "worker-9", ignition.Config{Name: "worker-9", Raw: config}); err == nil {
		t.Error("replacing a machine the config does not have succeeded")
	}
}

// TestMetalReplaceAsksTheAgentToReboot: with Reboot, a replacement asks the machine's agent to
// reboot it instead of asking the operator, and waits for the new boot's report all the same;
// a request that fails falls back to the operator. What the PXE server serves a machine is the
// config it booted (Booted).
func TestMetalReplaceAsksTheAgentToReboot(t *testing.T) {
	e := newPXEEnv(t)
	ctx := t.Context()
	e.report(t, "worker-1", "1", true) // the boot before
	var asked []string
	e.p.Reboot = func(_ context.Context, name string) error {
		asked = append(asked, name)
		e.report(t, name, "1", true) // the agent rebooted it, and the new boot reports
		return nil
	}
	config := []byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/new"}]}}`)
	if err := e.p.Replace(ctx, "worker-1", ignition.Config{Name: "worker-1", Role: "node", Raw: config}); err != nil {
		t.Fatalf("replace: %v\n%s", err, e.out)
	}
	if !slices.Equal(asked, []string{"worker-1"}) || !strings.Contains(e.out.String(), "its agent was asked to reboot it") {
		t.Errorf("asked %v to reboot; output:\n%s", asked, e.out)
	}
	if got, err := e.p.BootedConfig(ctx, "worker-1"); err != nil || !bytes.Equal(got, config) {
		t.Errorf("BootedConfig = %q, %v; want the new config", got, err)
	}
	if _, err := e.p.BootedConfig(ctx, "worker-9"); err == nil {
		t.Error("BootedConfig of a machine with no config: want an error")
	}

	e.p.Reboot = func(_ context.Context, name string) error {
		e.report(t, name, "1", true) // the operator power-cycled it
		return errors.New("the API server does not answer")
	}
	if err := e.p.Replace(ctx, "worker-2", ignition.Config{Name: "worker-2", Role: "node", Raw: config}); err != nil {
		t.Fatalf("replace: %v\n%s", err, e.out)
	}
	if !strings.Contains(e.out.String(), "its agent could not be asked to reboot it (the API server does not answer): power-cycle it now") {
		t.Errorf("a failed request does not fall back to the operator:\n%s", e.out)
	}
}
