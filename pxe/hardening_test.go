package pxe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
)

// A default role other than node, or a node.ign that holds keys (a master's config where the
// role's config goes), is refused when the server starts; one that turns up after is refused at
// the boot that would serve it.
func TestDefaultRoleNeverServesKeys(t *testing.T) {
	e := newEnv(t, nil)
	opt := e.srv.opt
	for _, role := range []string{cluster.RoleMaster, "cp-1"} {
		o := opt
		o.DefaultRole = role
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "only node") {
			t.Errorf("default role %s: %v, want a refusal", role, err)
		}
	}
	master, err := os.ReadFile(filepath.Join(e.ignDir, "cp-1.ign"))
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(e.ignDir, "node.ign")
	original, _ := os.ReadFile(node)
	os.WriteFile(node, master, 0o600)
	o := opt
	o.DefaultRole = cluster.RoleNode
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "holds private keys") || !strings.Contains(err.Error(), "ignition-gen --role node") {
		t.Errorf("node.ign holding the master's keys: %v, want a refusal at start", err)
	}

	os.WriteFile(node, original, 0o600)
	e = newEnv(t, func(o *Options) { o.DefaultRole = cluster.RoleNode })
	node = filepath.Join(e.ignDir, "node.ign")
	os.WriteFile(node, master, 0o600)
	future := time.Now().Add(time.Minute)
	os.Chtimes(node, future, future)
	if code, body, _ := e.get(e.plain.URL + "/ipxe?mac=52-54-00-ff-ff-ff"); code != http.StatusInternalServerError || strings.Contains(string(body), "PRIVATE") {
		t.Errorf("an unknown machine once node.ign holds keys: %d %s, want 500", code, body)
	}
	e.waitLog(`msg="script refused: the default role's config"`)
}

// Reports from names the cluster config does not know are capped; the config's machines always
// report.
func TestReportsFromUnknownNamesAreCapped(t *testing.T) {
	e := newEnv(t, nil)
	post := func(machine string) int {
		resp, err := http.Post(e.plain.URL+"/report", "application/json", strings.NewReader(fmt.Sprintf(`{"machine":%q,"phase":"1"}`, machine)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range maxOthers {
		if code := post(fmt.Sprintf("made-up-%d", i)); code != http.StatusNoContent {
			t.Fatalf("report %d: %d", i, code)
		}
	}
	if code := post("made-up-one-too-many"); code != http.StatusTooManyRequests {
		t.Errorf("report from name %d: %d, want 429", maxOthers+1, code)
	}
	if code := post("made-up-0"); code != http.StatusNoContent {
		t.Errorf("a name that reported before: %d", code)
	}
	if code := post("worker-1"); code != http.StatusNoContent {
		t.Errorf("a machine of the config: %d", code)
	}
}

// A client that sends a request's headers and then stalls in its body is cut off after
// ReadTimeout: stalled uploads cannot hold the server's connections.
func TestStalledRequestsAreCutOff(t *testing.T) {
	e := newEnv(t, nil)
	o := e.srv.opt
	o.ReadTimeout = 300 * time.Millisecond
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, plain, secure, &tls.Config{Certificates: e.secure.TLS.Certificates}) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	c.SetReadDeadline(start.Add(10 * time.Second))
	_, err = bufio.NewReader(c).ReadString(0) // whatever the server answers, until it closes
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still held the stalled request after %v", time.Since(start))
	}
	t.Logf("a stalled request was cut off after %v (%v)", time.Since(start).Round(time.Millisecond), err)
}
