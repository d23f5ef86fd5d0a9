package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
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
