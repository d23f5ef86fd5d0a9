package ignition

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// A node config given another token is byte for byte the config ignition-gen renders from a
// bundle holding that token: the PXE server and kubeup tokens sync hand out what ignition-gen
// would, without the bundle.
func TestWithBootstrapTokenIsARerender(t *testing.T) {
	cfg := loadConfig(t, "local.yaml", nil)
	b := newBundle(t, cfg)
	dir := t.TempDir()
	if _, err := Generate(cfg, b, Options{OutDir: dir, Role: cluster.RoleNode}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "node.ign"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.NewToken(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := WithBootstrapToken(raw, tok.String())
	if err != nil {
		t.Fatal(err)
	}
	other := *b
	other.Token = tok
	want := t.TempDir()
	if _, err := Generate(cfg, &other, Options{OutDir: want, Role: cluster.RoleNode}); err != nil {
		t.Fatal(err)
	}
	rendered, _ := os.ReadFile(filepath.Join(want, "node.ign"))
	if !bytes.Equal(patched, rendered) {
		t.Fatalf("patched config (%d bytes) differs from the one rendered with token %s (%d bytes)", len(patched), tok.ID, len(rendered))
	}
	if bytes.Equal(patched, raw) {
		t.Fatal("the patched config is the original")
	}
	again, _ := WithBootstrapToken(raw, tok.String())
	if !bytes.Equal(again, patched) {
		t.Error("patching twice gave different bytes")
	}

	// The master's config has no bootstrap kubeconfig to patch.
	if _, err := Generate(cfg, b, Options{OutDir: dir}); err != nil {
		t.Fatal(err)
	}
	master, _ := os.ReadFile(filepath.Join(dir, "master.ign"))
	if _, err := WithBootstrapToken(master, tok.String()); !errors.Is(err, ErrNoBootstrapKubeconfig) {
		t.Errorf("master config: %v, want ErrNoBootstrapKubeconfig", err)
	}
	if _, err := WithBootstrapToken([]byte("{"), tok.String()); err == nil || !strings.Contains(err.Error(), "parse") {
		t.Errorf("broken config: %v", err)
	}
}
