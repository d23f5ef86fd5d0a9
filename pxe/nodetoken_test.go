package pxe

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// poolTokens stands in for the cluster's published node token (tokenpool.Source reads it from
// the API server; test/controlplane's TestTokenPool runs this server against the real one).
type poolTokens struct {
	mu  sync.Mutex
	tok pki.Token
	err error
}

func (p *poolTokens) Current(context.Context) (pki.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tok, p.err
}

func (p *poolTokens) set(tok pki.Token, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tok, p.err = tok, err
}

// bootToken boots a machine through script, pointer and HTTPS config, and returns the token
// its bootstrap kubeconfig carries ("" when the config has none).
func (e *env) bootToken(query string) (string, []byte) {
	e.t.Helper()
	src := *e.pointer(e.script(query)).Ignition.Config.Replace.Source
	code, raw, _ := e.get(src)
	if code != http.StatusOK {
		e.t.Fatalf("config for %s: %d %s", query, code, raw)
	}
	return bootstrapTokenOf(e.t, raw), raw
}

// bootstrapTokenOf reads the token of a config's bootstrap kubeconfig with Ignition's parser.
func bootstrapTokenOf(t *testing.T, raw []byte) string {
	t.Helper()
	cfg, _, err := v3_4.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Storage.Files {
		if f.Path != manifests.BootstrapKubeconf {
			continue
		}
		u, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatal(err)
		}
		data := u.Data
		if f.Contents.Compression != nil {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			data, _ = io.ReadAll(zr)
		}
		kc, err := clientcmd.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, ai := range kc.AuthInfos {
			return ai.Token
		}
	}
	return ""
}

func TestNodeConfigsCarryThePoolsCurrentToken(t *testing.T) {
	pool := &poolTokens{}
	e := newEnv(t, func(o *Options) { o.DefaultRole = "node"; o.NodeTokens = pool })
	first, _ := pki.NewToken(time.Now(), time.Hour)
	pool.set(first, nil)

	if got, _ := e.bootToken("mac=52-54-00-aa-00-01"); got != first.String() {
		t.Fatalf("an unknown machine (default role node) got token %q, want the pool's %s", got, first.ID)
	}
	if got, _ := e.bootToken("mac=0c-c4-7a-00-00-11"); got != first.String() {
		t.Fatalf("worker-1 got token %q, want the pool's %s", got, first.ID)
	}
	// The master's config has no bootstrap token: it is served as rendered.
	_, master := e.bootToken("mac=0c-c4-7a-00-00-01")
	if want, _ := os.ReadFile(filepath.Join(e.ignDir, "cp-1.ign")); !bytes.Equal(master, want) {
		t.Errorf("the master's config was changed (%d bytes, rendered %d)", len(master), len(want))
	}

	// The agent rotates: the next boot gets the successor, with no restart and no re-render.
	second, _ := pki.NewToken(time.Now(), time.Hour)
	pool.set(second, nil)
	if got, _ := e.bootToken("mac=52-54-00-aa-00-02"); got != second.String() {
		t.Fatalf("after rotation a new machine got %q, want the successor %s", got, second.ID)
	}

	// The cluster does not answer but the last token read is still valid: served, and logged.
	pool.set(second, errors.New("connection refused"))
	if got, _ := e.bootToken("mac=52-54-00-aa-00-03"); got != second.String() {
		t.Fatalf("with the cluster away: %q, want the last token %s", got, second.ID)
	}
	e.waitLog(`msg="node token: the cluster did not answer; serving one still valid" token=` + second.ID)

	// No valid token at all: a node gets a 503, not a config that cannot join.
	pool.set(pki.Token{}, errors.New("the published node token expired"))
	code, body, _ := e.get(e.plain.URL + "/ipxe?mac=52-54-00-aa-00-04")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("no valid token: %d %s, want 503", code, body)
	}
	e.waitLog(`msg="script refused: no valid node token"`)
}
