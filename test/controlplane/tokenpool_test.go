package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4/types"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/certificate/csr"

	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/tokenpool"
	"kubeup.dev/kubeup/pxe"
	"kubeup.dev/kubeup/test/testenv"
)

// The pool's tokens live a minute here: the successor is due with 20 s left.
const poolTTL = time.Minute

// TestTokenPool runs the node token pool against the real API server and controller-manager:
// a successor appears before the current token expires, both authenticate during the overlap,
// the token cleaner deletes the old one once it has expired, a PXE server (reading the
// published token with the distributors' narrow identity) hands new machines configs with the
// new token, and a node joins with it by TLS bootstrap.
func TestTokenPool(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	m := &agent.Master{Config: e.agentCfg, Root: e.root, Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}}}
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		t.Fatal(err)
	}
	pool := &tokenpool.Pool{Client: e.adminCS, TTL: poolTTL, Log: t.Logf}

	// The bundle's token is the pool's first member: 24 hours left, nothing to mint.
	r, err := pool.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Minted || r.Current.ID != e.bundle.Token.ID {
		t.Fatalf("first round: %+v, want the bundle's token %s as current and nothing minted", r, e.bundle.Token.ID)
	}
	// Revoked (`kubeup tokens revoke`, as an operator would), it stops authenticating and the
	// pool mints a token of its own TTL at once.
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
	tokens := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kubeup, append(append([]string{"tokens"}, args...), "--config", "testdata/cluster.yaml", "--state", e.bundle.Dir)...)
		out, err := cmd.CombinedOutput()
		t.Logf("kubeup tokens %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("kubeup tokens %s: %v", args[0], err)
		}
		return string(out)
	}
	if out := tokens("list"); !strings.Contains(out, e.bundle.Token.ID) || strings.Contains(out, e.bundle.Token.Secret) {
		t.Errorf("kubeup tokens list does not list the bundle's token %s, or shows its secret", e.bundle.Token.ID)
	}
	if out := tokens("revoke", e.bundle.Token.ID); !strings.Contains(out, "revoked node token "+e.bundle.Token.ID) {
		t.Errorf("kubeup tokens revoke: no word of the revocation")
	}
	waitFor(t, ctx, "the revoked bundle token is refused", 30*time.Second, func() error {
		return refused(ctx, e, e.bundle.Token.String())
	})
	r, err = pool.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Current
	if !r.Minted || time.Until(first.Expires) > poolTTL || r.Valid != 1 {
		t.Fatalf("after revoking the only token: %+v, want a new one valid %v", r, poolTTL)
	}
	// The agent restarts and applies the bootstrap objects again, the bundle's token among
	// them: the pool's next round deletes it again, as revoked.
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adminCS.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+e.bundle.Token.ID, metav1.GetOptions{}); err != nil {
		t.Fatalf("the bootstrap objects did not re-create the bundle's token (%v): this check tests nothing", err)
	}
	if r, err = pool.Once(ctx); err != nil || r.Minted || r.Current.ID != first.ID {
		t.Fatalf("round after the re-apply: %+v, %v; want %s current, nothing minted", r, err, first.ID)
	}
	if _, err := e.adminCS.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+e.bundle.Token.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the re-applied revoked bundle token is still there: %v", err)
	}
	waitFor(t, ctx, "the re-applied revoked bundle token is refused", 30*time.Second, func() error {
		return refused(ctx, e, e.bundle.Token.String())
	})

	// `kubeup tokens list` shows the pool's token as the published one, the revoked one no more.
	if out := tokens("list"); !regexp.MustCompile(first.ID+`\s.*\syes\n`).MatchString(out) || strings.Contains(out, e.bundle.Token.ID) {
		t.Errorf("kubeup tokens list: want %s published and %s gone", first.ID, e.bundle.Token.ID)
	}
	// The same as a document for scripts, in JSON and in YAML with the same field names.
	for _, format := range []string{"json", "yaml"} {
		var doc struct {
			Tokens []struct {
				ID          string    `json:"id"`
				Expires     time.Time `json:"expires"`
				SecondsLeft int64     `json:"secondsLeft"`
				Published   bool      `json:"published"`
			} `json:"tokens"`
		}
		out := tokens("list", "-o", format)
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("kubeup tokens list -o %s: %v", format, err)
		}
		if len(doc.Tokens) != 1 || doc.Tokens[0].ID != first.ID || !doc.Tokens[0].Published || doc.Tokens[0].Expires.Sub(first.Expires).Abs() >= time.Second || doc.Tokens[0].SecondsLeft <= 0 || strings.Contains(out, first.Secret) {
			t.Errorf("kubeup tokens list -o %s: %+v; want only %s, published, expiring %v, and no secret", format, doc.Tokens, first.ID, first.Expires)
		}
	}

	// The distributors' identity reads the published token and nothing else.
	src := &tokenpool.Source{Bundle: e.bundle, Server: e.admin.Host}
	if got, err := src.Current(ctx); err != nil || got.String() != first.String() {
		t.Fatalf("published token: %s, %v; want %s", got.ID, err, first.ID)
	}
	checkDistributorIsNarrow(t, ctx, e, first)

	// A PXE server with a default role hands unknown machines the node config with it.
	boot := newPoolPXE(t, e, src)
	if got := boot.nodeToken("52-54-00-00-00-01"); got != first.String() {
		t.Fatalf("PXE-served node config carries %q, want the pool's %s", got, first.ID)
	}

	// The agent's loop, as kubeup-agent runs it.
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pool.Run(loopCtx, 2*time.Second, func(err error) { t.Logf("pool: %v", err) })
	}()
	defer func() { stop(); <-done }()

	var second pki.Token
	waitFor(t, ctx, "a successor is minted before the first token expires", poolTTL, func() error {
		ms, err := tokenpool.Members(ctx, e.adminCS, time.Now())
		if err != nil {
			return err
		}
		if len(ms) < 2 {
			return fmt.Errorf("%d valid pool tokens; the first, %s, expires in %v", len(ms), first.ID, time.Until(first.Expires).Round(time.Second))
		}
		second = ms[0]
		return nil
	})
	left := time.Until(first.Expires)
	t.Logf("successor %s minted with %v left on %s", second.ID, left.Round(time.Second), first.ID)
	if left <= 0 || left > poolTTL/3+5*time.Second {
		t.Errorf("successor minted with %v left on the first token, want under a third of %v and before expiry", left, poolTTL)
	}
	// The overlap: both still authenticate.
	for _, tok := range []pki.Token{first, second} {
		if err := accepted(ctx, e, tok.String()); err != nil {
			t.Errorf("during the overlap, token %s: %v", tok.ID, err)
		}
	}
	waitFor(t, ctx, "the successor is published", 30*time.Second, func() error {
		got, err := src.Current(ctx)
		if err == nil && got.ID != second.ID {
			err = fmt.Errorf("published token is %s", got.ID)
		}
		return err
	})
	// A machine booting now gets the successor from the PXE server, with no restart or re-render.
	nodeRoot := boot.apply("52-54-00-00-00-02")
	joinWith(t, ctx, filepath.Join(nodeRoot, manifests.BootstrapKubeconf), second, "pool-node-1")

	// The first token expires and the controller-manager's token cleaner deletes it.
	waitFor(t, ctx, "the token cleaner deletes the expired first token", time.Until(first.Expires)+2*time.Minute, func() error {
		_, err := e.adminCS.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+first.ID, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("bootstrap-token-%s still there (expires %s): %v", first.ID, first.Expires.Format(time.RFC3339), err)
	})
	if err := refused(ctx, e, first.String()); err != nil {
		t.Error(err)
	}
	if err := accepted(ctx, e, second.String()); err != nil {
		t.Errorf("the successor after the first expired: %v", err)
	}
}

// tokenClient is a client that authenticates with a bootstrap token only.
func tokenClient(e *env, token string) kubernetes.Interface {
	cfg := &rest.Config{Host: e.admin.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: e.bundle.File("pki/ca.crt")}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// accepted says whether the API server takes token as a joining node's (it may list CSRs:
// system:node-bootstrapper).
func accepted(ctx context.Context, e *env, token string) error {
	_, err := tokenClient(e, token).CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

func refused(ctx context.Context, e *env, token string) error {
	err := accepted(ctx, e, token)
	if apierrors.IsUnauthorized(err) {
		return nil
	}
	return fmt.Errorf("token %.6s: %v, want 401 Unauthorized", token, err)
}

// checkDistributorIsNarrow: the distributors may get the published token and nothing else.
func checkDistributorIsNarrow(t *testing.T, ctx context.Context, e *env, tok pki.Token) {
	cfg, err := tokenpool.DistributorConfig(e.bundle, e.admin.Host, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	if _, err := c.CoreV1().Secrets("kube-system").Get(ctx, manifests.NodeTokenSecret, metav1.GetOptions{}); err != nil {
		t.Errorf("distributor get %s: %v", manifests.NodeTokenSecret, err)
	}
	for what, err := range map[string]error{
		"get the token's own Secret": func() error {
			_, err := c.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
			return err
		}(),
		"list kube-system's Secrets": func() error {
			_, err := c.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}(),
		"update the published Secret": func() error {
			s, err := e.adminCS.CoreV1().Secrets("kube-system").Get(ctx, manifests.NodeTokenSecret, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = c.CoreV1().Secrets("kube-system").Update(ctx, s, metav1.UpdateOptions{})
			return err
		}(),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("distributor may %s: %v, want Forbidden", what, err)
		}
	}
}

// poolPXE is a real PXE server (HTTP and HTTPS on loopback) serving the test cluster's configs
// with the node token from the cluster.
type poolPXE struct {
	t             *testing.T
	plain, secure *httptest.Server
	roots         *x509.CertPool
	dir           string
}

func newPoolPXE(t *testing.T, e *env, src *tokenpool.Source) *poolPXE {
	if _, err := ignition.Generate(e.cfg, e.bundle, ignition.Options{OutDir: e.out, Role: cluster.RoleNode}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pki.ServingCert(e.bundle, "kubeup-pxe", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := &poolPXE{t: t, plain: httptest.NewUnstartedServer(nil), secure: httptest.NewUnstartedServer(nil), roots: x509.NewCertPool(), dir: t.TempDir()}
	p.roots.AppendCertsFromPEM(e.bundle.File("pki/ca.crt"))
	p.secure.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	p.plain.Start()
	p.secure.StartTLS()
	t.Cleanup(func() { p.plain.Close(); p.secure.Close() })
	srv, err := pxe.New(pxe.Options{ConfigFile: "testdata/cluster.yaml", IgnitionDir: e.out, AssetsDir: t.TempDir(),
		BaseURL: p.plain.URL, TLSBaseURL: p.secure.URL, CA: e.bundle.File("pki/ca.crt"), DefaultRole: cluster.RoleNode,
		NodeTokens: src, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.plain.Config.Handler, p.secure.Config.Handler = srv.Handler(), srv.TLSHandler()
	return p
}

var pointerURL = regexp.MustCompile(`ignition\.config\.url=(\S+)`)

// config boots a machine with that MAC through script, pointer and HTTPS, and returns its config.
func (p *poolPXE) config(mac string) []byte {
	p.t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}}, Timeout: 30 * time.Second}
	get := func(url string) []byte {
		resp, err := c.Get(url)
		if err != nil {
			p.t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			p.t.Fatalf("GET %s: %s %s", url, resp.Status, body)
		}
		return body
	}
	m := pointerURL.FindSubmatch(get(p.plain.URL + "/ipxe?mac=" + mac))
	if m == nil {
		p.t.Fatal("no ignition.config.url in the script")
	}
	var ptr types.Config
	if err := json.Unmarshal(get(string(m[1])), &ptr); err != nil {
		p.t.Fatal(err)
	}
	return get(*ptr.Ignition.Config.Replace.Source)
}

// apply boots a machine and applies its config with the real Ignition; it returns the root.
func (p *poolPXE) apply(mac string) string {
	file := filepath.Join(p.dir, strings.ReplaceAll(mac, "-", "")+".ign")
	if err := os.WriteFile(file, p.config(mac), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return testenv.Apply(p.t, file)
}

// nodeToken boots a machine and returns the token of its bootstrap kubeconfig.
func (p *poolPXE) nodeToken(mac string) string {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(p.apply(mac), manifests.BootstrapKubeconf))
	if err != nil {
		p.t.Fatal(err)
	}
	return cfg.BearerToken
}

// joinWith runs the kubelet's TLS bootstrap with a bootstrap kubeconfig that must carry tok:
// the client CSR is created with the token and signed by the controller-manager.
func joinWith(t *testing.T, ctx context.Context, kubeconfig string, tok pki.Token, node string) {
	t.Helper()
	boot, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if boot.BearerToken != tok.String() {
		t.Fatalf("the node's bootstrap kubeconfig carries %q, want %s", boot.BearerToken, tok.ID)
	}
	csrPEM, key := nodeCSR(t, node, nil, nil)
	client := kubernetes.NewForConfigOrDie(boot)
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		t.Fatalf("create client CSR with token %s: %v", tok.ID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := csr.WaitForCertificate(wctx, client, name, uid); err != nil {
		t.Fatalf("client CSR %s (token %s) not approved and signed: %v", name, tok.ID, err)
	}
	t.Logf("node %s joined with token %s: CSR %s signed", node, tok.ID, name)
}
