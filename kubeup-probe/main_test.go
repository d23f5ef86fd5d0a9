package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kubeup.dev/kubeup/test/testenv"
)

// The probe as verify runs it: serve answers with the host name; get and lookup print one
// OK or FAIL line per target and exit 1 when any failed.
func TestProbe(t *testing.T) {
	bin := testenv.Build(t, "./kubeup-probe", filepath.Join(t.TempDir(), "kubeup-probe"))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(bin, "serve", fmt.Sprintf("--port=%d", port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("probe never served: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for the server to listen
	}

	out, err := exec.Command(bin, "get", url).Output()
	if err != nil || !strings.HasPrefix(string(out), "OK "+url) {
		t.Errorf("get a serving probe: %v %q", err, out)
	}
	closed := fmt.Sprintf("http://127.0.0.1:%d/", port+1)
	out, err = exec.Command(bin, "get", url, closed).Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err == nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "OK ") || !strings.HasPrefix(lines[1], "FAIL "+closed) {
		t.Errorf("get with one dead target: %v %q", err, out)
	}
	out, err = exec.Command(bin, "lookup", "localhost", "no-such-name.invalid").Output()
	lines = strings.Split(strings.TrimSpace(string(out)), "\n")
	if err == nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "OK localhost") || !strings.HasPrefix(lines[1], "FAIL no-such-name.invalid") {
		t.Errorf("lookup: %v %q", err, out)
	}
}

// wait, the controller-manager's init container: it returns once the server answers 200, and
// only over TLS to a certificate from the given CA.
func TestProbeWait(t *testing.T) {
	bin := testenv.Build(t, "./kubeup-probe", filepath.Join(t.TempDir(), "kubeup-probe"))
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if requests.Add(1) < 3 {
			http.Error(w, "[-]poststarthook/rbac/bootstrap-roles failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "wait", "--ca", ca, srv.URL+"/healthz").Output()
	if err != nil || requests.Load() != 3 || !strings.Contains(string(out), "OK "+srv.URL) {
		t.Errorf("wait: %v after %d requests: %q", err, requests.Load(), out)
	}
	// Trusting another CA, the same healthy server is never taken as healthy.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, bin, "wait", "--ca", ca, srv.URL+"/healthz").Output()
	if err == nil || !strings.Contains(string(out), "FAIL") || !strings.Contains(string(out), "certificate") {
		t.Errorf("wait on a server of another CA: %v %q", err, out)
	}
}
