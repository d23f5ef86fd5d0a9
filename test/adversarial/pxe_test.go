package adversarial_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/test/testenv"
)

// pxeServer is the real `kubeup pxe serve`, on loopback, for configs/metal.yaml.
type pxeServer struct {
	t                   *testing.T
	plain, secure, log  string
	state, out, assets  string
	client              func(from string) *http.Client
	logFile             *os.File
	plainURL, secureURL string
}

// logText is what the server has logged so far.
func (s *pxeServer) logText() string {
	data, _ := os.ReadFile(s.log)
	return string(data)
}

// get makes one request from the loopback address from and returns the status and the body;
// redirects are not followed, so a redirect is what the test sees.
func (s *pxeServer) get(from, method, url string, header http.Header, body io.Reader) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client(from).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s from %s: %v", method, url, from, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startPXE(t *testing.T) *pxeServer {
	t.Helper()
	dir := t.TempDir()
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(dir, "kubeup"))
	gen := testenv.Build(t, "./ignition-gen", filepath.Join(dir, "ignition-gen"))
	s := &pxeServer{t: t, state: filepath.Join(dir, "state"), out: filepath.Join(dir, "out"), assets: filepath.Join(dir, "assets"),
		log: filepath.Join(dir, "serve.log"), plain: freePort(t), secure: freePort(t)}
	cfg := filepath.Join(testenv.RepoRoot(), "configs/metal.yaml")
	if msg, err := exec.Command(gen, "--config", cfg, "--state", s.state, "--out", s.out).CombinedOutput(); err != nil {
		t.Fatalf("ignition-gen: %v\n%s", err, msg)
	}
	os.MkdirAll(filepath.Join(s.assets, "debian"), 0o755)
	os.WriteFile(filepath.Join(s.assets, "debian", "vmlinuz"), []byte("kernel"), 0o644)
	var err error
	if s.logFile, err = os.Create(s.log); err != nil {
		t.Fatal(err)
	}
	// Tokens expire after 3 s here, so that one can be seen expiring.
	cmd := exec.Command(kubeup, "pxe", "serve", "--config", cfg, "--state", s.state, "--ignition", s.out, "--assets", s.assets,
		"--listen", s.plain, "--tls-listen", s.secure, "--advertise", "127.0.0.1", "--token-ttl", "3s")
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		s.logFile.Close()
		if t.Failed() {
			t.Logf("the server's log:\n%s", clip(s.logText()))
		}
	})
	s.plainURL, s.secureURL = "http://"+s.plain, "https://"+s.secure
	// The server's certificate is from the cluster CA; the question here is what it answers,
	// so the client does not check it.
	s.client = func(from string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		return &http.Client{Timeout: 30 * time.Second,
			Transport:     &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		resp, err := http.Get(s.plainURL + "/boot.ipxe")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("kubeup pxe serve did not answer within a minute:\n%s", s.logText())
	}
	return s
}

var tokenInScript = regexp.MustCompile(`/pointer/([0-9a-f]+)\.ign`)

// script asks for machine mac's boot script from address from and returns its token.
func (s *pxeServer) script(from, mac string) string {
	s.t.Helper()
	code, body := s.get(from, "GET", s.plainURL+"/ipxe?mac="+mac, nil, nil)
	m := tokenInScript.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		s.t.Fatalf("the script of %s: %d %s", mac, code, body)
	}
	return m[1]
}

// TestHostilePXERequests sends the real `kubeup pxe serve` what a machine or an attacker on the
// boot network could: unknown and malformed machines, path traversal, missing, made-up, replayed,
// expired and other machines' tokens, oversized headers and bodies, and 1,000 clients at once.
// Each is refused with a 4xx (and a log line where a handler runs: net/http itself answers a
// request whose headers are too big), nothing of the bundle or the configs changes, and the
// server keeps serving.
func TestHostilePXERequests(t *testing.T) {
	s := startPXE(t)
	const cp1, worker1, worker2 = "0c:c4:7a:00:00:01", "0c:c4:7a:00:00:11", "0c:c4:7a:00:00:12"
	// The server keeps its own token table in the state directory (written atomically, so the
	// directory changes too): it changes with every script handed out, and is no one's input.
	own := func(path string) bool { return path == s.state || filepath.Base(path) == "pxe-tokens.json" }
	before := treeExcept(t, own, s.state, s.out, s.assets)
	refused := func(name string, code, want int, logWant string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: HTTP %d, want %d", name, code, want)
		}
		if logWant != "" && !strings.Contains(s.logText(), logWant) {
			// A log line is written as the response goes: wait for it a moment.
			if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
				return strings.Contains(s.logText(), logWant), nil
			}); err != nil {
				t.Errorf("%s: no log line with %q", name, logWant)
			}
		}
	}

	// Machines the config does not name, in every shape.
	for _, q := range []string{"mac=0c:c4:7a:ff:ff:ff", "mac=zz:zz:zz:zz:zz:zz", "mac=" + strings.Repeat("0c:", 400), "mac=0c%3Ac4%3A7a%3A00%3A00%3A01%0Aboot", "", "uuid=not-a-uuid", "hostname=../../cp-1", "serial=%00"} {
		code, body := s.get("127.0.0.1", "GET", s.plainURL+"/ipxe?"+q, nil, nil)
		refused("script for "+q, code, http.StatusNotFound, `msg="script refused: unknown machine"`)
		if strings.Contains(body, "/pointer/") {
			t.Errorf("script for %s handed out a token", q)
		}
	}

	// Paths out of the assets directory, to the bundle beside it.
	for _, p := range []string{"/assets/../state/pki/ca.key", "/assets/..%2fstate%2fpki%2fca.key", "/assets/debian/../../state/pki/ca.key",
		"/assets/%2e%2e/%2e%2e/etc/passwd", "/assets/debian", "/assets/missing"} {
		code, body := s.get("127.0.0.1", "GET", s.plainURL+p, nil, nil)
		if code < 300 || code >= 500 || strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, "root:") {
			t.Errorf("GET %s: HTTP %d (%d bytes), want a redirect to a clean path or a 404", p, code, len(body))
		}
	}
	if !strings.Contains(s.logText(), `msg="asset refused"`) {
		t.Error("no asset refusal was logged")
	}

	// Tokens: missing, made up, over HTTP and HTTPS.
	code, _ := s.get("127.0.0.1", "GET", s.plainURL+"/pointer/.ign", nil, nil)
	refused("an empty pointer token", code, http.StatusNotFound, `reason="unknown token"`)
	code, _ = s.get("127.0.0.1", "GET", s.plainURL+"/pointer/0123456789abcdef0123456789abcdef.ign", nil, nil)
	refused("a made-up pointer token", code, http.StatusNotFound, `msg="pointer refused"`)
	code, _ = s.get("127.0.0.1", "GET", s.secureURL+"/config/0123456789abcdef0123456789abcdef", nil, nil)
	refused("a made-up config token", code, http.StatusNotFound, `msg="config refused"`)
	code, _ = s.get("127.0.0.1", "GET", s.secureURL+"/config/", nil, nil)
	refused("no config token", code, http.StatusNotFound, "")

	// A token is good once, from the address that got the script, until it expires.
	tok := s.script("127.0.0.1", cp1)
	if code, body := s.get("127.0.0.1", "GET", s.secureURL+"/config/"+tok, nil, nil); code != http.StatusOK || !strings.Contains(body, `"ignition"`) {
		t.Fatalf("the master's own first fetch: HTTP %d", code)
	}
	code, _ = s.get("127.0.0.1", "GET", s.secureURL+"/config/"+tok, nil, nil)
	refused("a replayed token", code, http.StatusNotFound, `reason="token already used"`)
	tok = s.script("127.0.0.1", worker1)
	code, body := s.get("127.0.0.2", "GET", s.secureURL+"/config/"+tok, nil, nil)
	refused("another machine's token", code, http.StatusNotFound, `reason="token minted for 127.0.0.1"`)
	if strings.Contains(body, "ignition") {
		t.Error("another address got worker-1's config")
	}
	tok = s.script("127.0.0.1", worker2)
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		code, _ := s.get("127.0.0.1", "GET", s.plainURL+"/pointer/"+tok+".ign", nil, nil)
		return code == http.StatusNotFound, nil
	}); err != nil {
		t.Fatal("worker-2's token never expired")
	}
	code, _ = s.get("127.0.0.1", "GET", s.secureURL+"/config/"+tok, nil, nil)
	refused("an expired token", code, http.StatusNotFound, `reason="token expired"`)

	// Oversized requests.
	big := http.Header{"X-Padding": []string{strings.Repeat("a", 64<<10)}}
	code, _ = s.get("127.0.0.1", "GET", s.plainURL+"/boot.ipxe", big, nil)
	refused("64 KiB of headers", code, http.StatusRequestHeaderFieldsTooLarge, "")
	code, _ = s.get("127.0.0.1", "POST", s.secureURL+"/report", nil, bytes.NewReader(bytes.Repeat([]byte("x"), 100<<10)))
	refused("a 100 KiB report", code, http.StatusRequestEntityTooLarge, `reason="larger than 64 KiB"`)
	code, _ = s.get("127.0.0.1", "POST", s.plainURL+"/report", nil, strings.NewReader(`["not", "a", "report"]`))
	refused("a report that is no report", code, http.StatusBadRequest, `reason="not a JSON object with a machine field"`)

	// 1,000 clients at once, each asking for an unknown machine's script: every one is answered
	// (the listener takes 1,024 at a time), and the server serves on.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range 1000 {
		wg.Go(func() {
			c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(fmt.Sprintf("%s/ipxe?mac=02:00:00:00:%02x:%02x", s.plainURL, i/256, i%256))
			key := ""
			if err != nil {
				key = "error: " + err.Error()
			} else {
				key = resp.Status
				resp.Body.Close()
			}
			mu.Lock()
			codes[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(codes) != 1 || codes["404 Not Found"] != 1000 {
		t.Errorf("1,000 clients at once: %v, want 1000 × 404", codes)
	}
	if code, _ := s.get("127.0.0.1", "GET", s.plainURL+"/boot.ipxe", nil, nil); code != http.StatusOK {
		t.Errorf("after the flood /boot.ipxe answers %d", code)
	}

	if after := treeExcept(t, own, s.state, s.out, s.assets); after != before {
		t.Errorf("hostile requests changed the bundle, the configs or the assets:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// treeExcept is tree without the lines of the paths skip names.
func treeExcept(t *testing.T, skip func(path string) bool, dirs ...string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(tree(t, dirs...), "\n") {
		if path, _, _ := strings.Cut(l, " "); !skip(path) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
