package pxe

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
)

// syncBuffer is a log sink the handlers write to from their goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a PXE server over real HTTP and HTTPS listeners on loopback, serving configs/metal.yaml's
// machines from a real secrets bundle and real rendered configs.
type env struct {
	t          *testing.T
	srv        *Server
	plain      *httptest.Server
	secure     *httptest.Server
	log        *syncBuffer
	configFile string
	ignDir     string
	assets     string
	bundle     *pki.Bundle
	cfg        *cluster.Config
	roots      *x509.CertPool
}

func newEnv(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, log: &syncBuffer{}, configFile: filepath.Join(dir, "metal.yaml"), ignDir: filepath.Join(dir, "ign"), assets: filepath.Join(dir, "assets")}
	src, err := os.ReadFile("../configs/metal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte(`    mac: "0c:c4:7a:00:00:12"`), []byte("    mac: \"0c:c4:7a:00:00:12\"\n    uuid: 4C4C4544-0042-3510-8051-B2C04F4E3432\n    serial: SN-0042"), 1)
	if err := os.WriteFile(e.configFile, src, 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg, err = cluster.Load(e.configFile)
	if err != nil {
		t.Fatal(err)
	}
	e.bundle, err = pki.Ensure(filepath.Join(dir, "state"), e.cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"", cluster.RoleNode} {
		if _, err := ignition.Generate(e.cfg, e.bundle, ignition.Options{OutDir: e.ignDir, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(e.assets, "debian"), 0o755)
	os.WriteFile(filepath.Join(e.assets, "debian", "vmlinuz"), bytes.Repeat([]byte("k"), 100000), 0o644)

	certPEM, keyPEM, err := pki.ServingCert(e.bundle, "kubeup-pxe", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(e.bundle.File("pki/ca.crt"))

	// Both servers exist before the options name their URLs; their handlers are set after.
	e.plain = httptest.NewUnstartedServer(nil)
	e.secure = httptest.NewUnstartedServer(nil)
	e.secure.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	e.plain.Start()
	e.secure.StartTLS()
	t.Cleanup(func() { e.plain.Close(); e.secure.Close() })
	opt := Options{ConfigFile: e.configFile, IgnitionDir: e.ignDir, AssetsDir: e.assets, BaseURL: e.plain.URL, TLSBaseURL: e.secure.URL,
		CA: e.bundle.File("pki/ca.crt"), Log: slog.New(slog.NewTextHandler(e.log, nil))}
	if mutate != nil {
		mutate(&opt)
	}
	e.srv, err = New(opt)
	if err != nil {
		t.Fatal(err)
	}
	e.plain.Config.Handler = e.srv.Handler()
	e.secure.Config.Handler = e.srv.TLSHandler()
	return e
}

// get fetches a URL from a given loopback source address (127.0.0.1 unless said), trusting only
// the cluster CA for HTTPS.
func (e *env) get(url string, from ...string) (int, []byte, http.Header) {
	e.t.Helper()
	src := "127.0.0.1"
	if len(from) > 0 {
		src = from[0]
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: e.roots}}}
	resp, err := c.Get(url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

var pointerURL = regexp.MustCompile(`ignition\.config\.url=(\S+)`)

// script asks for a machine's script and returns the pointer URL in it.
func (e *env) script(query string) string {
	e.t.Helper()
	code, body, _ := e.get(e.plain.URL + "/ipxe?" + query)
	if code != http.StatusOK {
		e.t.Fatalf("/ipxe?%s: %d %s", query, code, body)
	}
	m := pointerURL.FindSubmatch(body)
	if m == nil {
		e.t.Fatalf("no ignition.config.url in the script:\n%s", body)
	}
	return string(m[1])
}

// pointer fetches and parses a pointer config with Ignition's own parser.
func (e *env) pointer(url string) types.Config {
	e.t.Helper()
	code, body, _ := e.get(url)
	if code != http.StatusOK {
		e.t.Fatalf("pointer %s: %d %s", url, code, body)
	}
	if err := ignition.Check(body); err != nil {
		e.t.Fatalf("the pointer does not parse cleanly: %v\n%s", err, body)
	}
	var c types.Config
	json.Unmarshal(body, &c)
	return c
}

func (e *env) waitLog(want string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.log.String(), want) {
		if time.Now().After(deadline) {
			e.t.Fatalf("no log line with %q; the log:\n%s", want, e.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBootChainDeliversTheMachinesConfigOnce(t *testing.T) {
	e := newEnv(t, nil)
	code, boot, _ := e.get(e.plain.URL + "/boot.ipxe")
	if code != 200 || !strings.HasPrefix(string(boot), "#!ipxe\n") || !strings.Contains(string(boot), "/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&hostname=${hostname}&serial=${serial}") {
		t.Fatalf("/boot.ipxe: %d\n%s", code, boot)
	}
	_, script, _ := e.get(e.plain.URL + "/ipxe?mac=0c-c4-7a-00-00-11&uuid=&hostname=&serial=")
	for _, want := range []string{"kernel " + e.plain.URL + "/assets/debian/vmlinuz", "ignition.platform.id=metal", "initrd " + e.plain.URL + "/assets/debian/initrd.img", "\nboot\n", "worker-1"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("worker-1's script lacks %q:\n%s", want, script)
		}
	}
	ptr := e.pointer(pointerURL.FindStringSubmatch(string(script))[1])
	src := *ptr.Ignition.Config.Replace.Source
	if !strings.HasPrefix(src, e.secure.URL+"/config/") {
		t.Fatalf("the pointer replaces itself with %s, not our HTTPS endpoint", src)
	}
	if cas := ptr.Ignition.Security.TLS.CertificateAuthorities; len(cas) != 1 || *cas[0].Source != ignition.DataURL(e.bundle.File("pki/ca.crt")) {
		t.Errorf("the pointer does not trust exactly the cluster CA: %+v", cas)
	}
	code, real, _ := e.get(src)
	want, _ := os.ReadFile(filepath.Join(e.ignDir, "worker-1.ign"))
	if code != 200 || !bytes.Equal(real, want) {
		t.Fatalf("config over HTTPS: %d, %d bytes; want worker-1.ign (%d bytes)", code, len(real), len(want))
	}
	sum := sha512.Sum512(real)
	if h := *ptr.Ignition.Config.Replace.Verification.Hash; h != "sha512-"+hex.EncodeToString(sum[:]) {
		t.Errorf("the pointer pins %s, the config served hashes otherwise", h)
	}
	e.waitLog(`msg="config served" machine=worker-1`)
	// Once only: a second fetch with the same token (a replay, or someone who read the pointer
	// on the wire) gets nothing.
	if code, _, _ := e.get(src); code != http.StatusNotFound {
		t.Errorf("second fetch: %d, want 404", code)
	}
	e.waitLog(`reason="token already used"`)
	// The plain-HTTP side never serves a real config.
	if code, _, _ := e.get(strings.Replace(src, e.secure.URL, e.plain.URL, 1)); code != http.StatusNotFound {
		t.Errorf("the real config over plain HTTP: %d, want 404", code)
	}
}

func TestWrongTokenIsRefusedAndLogged(t *testing.T) {
	e := newEnv(t, nil)
	e.script("mac=0c-c4-7a-00-00-01") // the master's: its config holds the CA keys
	code, body, _ := e.get(e.secure.URL + "/config/00112233445566778899aabbccddeeff")
	if code != http.StatusNotFound || bytes.Contains(body, []byte("PRIVATE KEY")) {
		t.Fatalf("a made-up token: %d %s", code, body)
	}
	e.waitLog(`msg="config refused" from=127.0.0.1 token=00112233 reason="unknown token"`)
	if code, _, _ := e.get(e.plain.URL + "/pointer/00112233445566778899aabbccddeeff.ign"); code != http.StatusNotFound {
		t.Errorf("a made-up pointer: %d", code)
	}
	e.waitLog(`msg="pointer refused"`)
}

// The config goes only to the address that asked for the script.
func TestTokenIsBoundToTheScriptsAddress(t *testing.T) {
	e := newEnv(t, nil)
	src := *e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source
	if code, _, _ := e.get(src, "127.0.0.2"); code != http.StatusNotFound {
		t.Errorf("fetch from another address: %d, want 404", code)
	}
	e.waitLog(`reason="token minted for 127.0.0.1"`)
	if code, _, _ := e.get(src); code != http.StatusOK {
		t.Errorf("fetch from the machine's own address after a refused one: %d", code)
	}
}

func TestTokenExpiresAndANewScriptRevokesTheLast(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TokenTTL = time.Minute })
	now := time.Now()
	e.srv.now = func() time.Time { return now }
	first := *e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source
	second := *e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source
	if code, _, _ := e.get(first); code != http.StatusNotFound {
		t.Errorf("a token from an earlier boot still works: %d", code)
	}
	now = now.Add(2 * time.Minute)
	if code, _, _ := e.get(second); code != http.StatusNotFound {
		t.Errorf("an expired token works: %d", code)
	}
	e.waitLog(`reason="token expired"`)
	if n := e.srv.tokens.len(); n != 1 {
		t.Errorf("%d grants outstanding for one machine, want 1 (memory must follow machines, not requests)", n)
	}
}

func TestMachinesAreFoundByMACUUIDHostnameSerial(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Reuse = true })
	for query, machine := range map[string]string{
		"mac=0C:C4:7A:00:00:12":                          "worker-2",
		"uuid=4c4c4544-0042-3510-8051-b2c04f4e3432&mac=": "worker-2",
		"hostname=cp-1":                                  "cp-1",
		"serial=SN-0042":                                 "worker-2",
		"mac=0c-c4-7a-00-00-01&uuid=4c4c4544-0042-3510-8051-b2c04f4e3432": "cp-1", // MAC first
	} {
		src := *e.pointer(e.script(query)).Ignition.Config.Replace.Source
		_, got, _ := e.get(src)
		want, _ := os.ReadFile(filepath.Join(e.ignDir, machine+".ign"))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got another config than %s's", query, machine)
		}
	}
}

func TestUnknownMachinesGetNothingUnlessADefaultRoleIsSet(t *testing.T) {
	e := newEnv(t, nil)
	if code, _, _ := e.get(e.plain.URL + "/ipxe?mac=52-54-00-ff-ff-ff"); code != http.StatusNotFound {
		t.Errorf("unknown machine: %d, want 404", code)
	}
	e.waitLog(`msg="script refused: unknown machine"`)

	e = newEnv(t, func(o *Options) { o.DefaultRole = cluster.RoleNode })
	src := *e.pointer(e.script("mac=52-54-00-ff-ff-ff")).Ignition.Config.Replace.Source
	_, got, _ := e.get(src)
	want, _ := os.ReadFile(filepath.Join(e.ignDir, "node.ign"))
	if !bytes.Equal(got, want) || bytes.Contains(got, []byte("PRIVATE KEY")) {
		t.Errorf("an unknown machine with default role node did not get node.ign")
	}
}

func TestConfigsAndMachinesReloadWithoutRestart(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Reuse = true })
	// A changed config is served from the next script on.
	changed := []byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/changed","mode":420}]}}`)
	os.WriteFile(filepath.Join(e.ignDir, "worker-1.ign"), changed, 0o644)
	future := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(e.ignDir, "worker-1.ign"), future, future)
	_, got, _ := e.get(*e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source)
	if !bytes.Equal(got, changed) {
		t.Errorf("the changed config was not served: %s", got)
	}
	// A machine added to the cluster config is found.
	src, _ := os.ReadFile(e.configFile)
	src = append(src, []byte("  - name: worker-3\n    role: node\n    mac: \"0c:c4:7a:00:00:13\"\n")...)
	os.WriteFile(e.configFile, src, 0o644)
	os.Chtimes(e.configFile, future, future)
	os.WriteFile(filepath.Join(e.ignDir, "worker-3.ign"), changed, 0o644)
	if code, body, _ := e.get(e.plain.URL + "/ipxe?mac=0c-c4-7a-00-00-13"); code != 200 || !strings.Contains(string(body), "worker-3") {
		t.Errorf("a machine added to the config: %d %s", code, body)
	}
}

func TestAssetsRangesETagsAndNoEscape(t *testing.T) {
	e := newEnv(t, nil)
	c := &http.Client{}
	req, _ := http.NewRequest("GET", e.plain.URL+"/assets/debian/vmlinuz", nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusPartialContent || len(body) != 100 || etag == "" {
		t.Fatalf("range request: %d, %d bytes, ETag %q", resp.StatusCode, len(body), etag)
	}
	req.Header.Del("Range")
	req.Header.Set("If-None-Match", etag)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", resp.StatusCode)
	}
	for _, p := range []string{"/assets/../metal.yaml", "/assets/debian/../../ign/cp-1.ign", "/assets/%2e%2e/ign/cp-1.ign"} {
		if code, body, _ := e.get(e.plain.URL + p); code == 200 {
			t.Errorf("%s served %d bytes outside the assets directory", p, len(body))
		}
	}
}

func TestReports(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ReportsFile = filepath.Join(t.TempDir(), "reports.jsonl") })
	report := `{"machine":"worker-1","phase":"1","pass":true}`
	resp, err := http.Post(e.plain.URL+"/report", "application/json", strings.NewReader(report))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %v %v", err, resp.Status)
	}
	if resp, _ := http.Post(e.plain.URL+"/report", "application/json", strings.NewReader(`{"phase":"1"}`)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a report without a machine: %d", resp.StatusCode)
	}
	_, body, _ := e.get(e.plain.URL + "/reports")
	var got map[string][]map[string]any
	if err := json.Unmarshal(body, &got); err != nil || len(got["worker-1"]) != 1 || got["worker-1"][0]["pass"] != true {
		t.Errorf("/reports: %s %v", body, err)
	}
	// Over HTTPS too: the agents post to metal.pxeServer, kubeup status reads from it.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}}
	resp, err = c.Post(e.secure.URL+"/report", "application/json", strings.NewReader(`{"machine":"worker-2","phase":"3"}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report over HTTPS: %v %v", err, resp.Status)
	}
	if code, body, _ := e.get(e.secure.URL + "/reports"); code != 200 || !strings.Contains(string(body), `"worker-2"`) {
		t.Errorf("/reports over HTTPS: %d %s", code, body)
	}
	file, _ := os.ReadFile(e.srv.opt.ReportsFile)
	if string(file) != report+"\n"+`{"machine":"worker-2","phase":"3"}`+"\n" {
		t.Errorf("reports file %q", file)
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	e := newEnv(t, nil)
	plain, _ := net.Listen("tcp", "127.0.0.1:0")
	secure, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.srv.Serve(ctx, plain, secure, e.secure.TLS) }()
	if code, _, _ := e.get("http://" + plain.Addr().String() + "/boot.ipxe"); code != 200 {
		t.Errorf("/boot.ipxe through Serve: %d", code)
	}
	src := *e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source
	if code, _, _ := e.get(strings.Replace(src, e.secure.URL, "https://"+secure.Addr().String(), 1)); code != 200 {
		t.Errorf("the config over Serve's HTTPS: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// A server restarted between a machine's script and its config fetch still honours the token
// (the machine cannot ask again: its pointer is fixed for this boot), unless the config changed.
func TestTokensSurviveARestart(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	e := newEnv(t, func(o *Options) { o.TokensFile = tokens })
	src := *e.pointer(e.script("mac=0c-c4-7a-00-00-11")).Ignition.Config.Replace.Source
	other := *e.pointer(e.script("mac=0c-c4-7a-00-00-12")).Ignition.Config.Replace.Source
	e.srv.saveTokens()
	if st, err := os.Stat(tokens); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v %v", st, err)
	}
	// worker-2's config changes while the server is down: its old pointer pins bytes that are gone.
	changed := []byte(`{"ignition":{"version":"3.4.0"}}`)
	os.WriteFile(filepath.Join(e.ignDir, "worker-2.ign"), changed, 0o644)
	future := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(e.ignDir, "worker-2.ign"), future, future)

	restarted, err := New(e.srv.opt)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = restarted
	e.plain.Config.Handler = restarted.Handler()
	e.secure.Config.Handler = restarted.TLSHandler()
	code, got, _ := e.get(src)
	want, _ := os.ReadFile(filepath.Join(e.ignDir, "worker-1.ign"))
	if code != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("after a restart, worker-1's token: %d", code)
	}
	if code, _, _ := e.get(other); code != http.StatusNotFound {
		t.Errorf("after a restart, a token whose config changed: %d, want 404", code)
	}
	e.waitLog(`msg="tokens dropped: their config changed while the server was down" machines=[worker-2]`)
}
