package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// loadConfig reads a config from configs/, optionally edited, and fails the test on problems.
func loadConfig(t testing.TB, name string, edit func(string) string) *cluster.Config {
	t.Helper()
	src, err := os.ReadFile("../../configs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	if edit != nil {
		s = edit(s)
	}
	cfg, err := cluster.Parse(name, []byte(s))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newBundle(t testing.TB, cfg *cluster.Config) *pki.Bundle {
	t.Helper()
	b, err := pki.Ensure(t.TempDir(), cfg, pki.Options{})
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	return b
}

// decodedFiles parses an Ignition config and returns every file's decoded content by path.
func decodedFiles(t testing.TB, raw []byte) (types.Config, map[string][]byte) {
	t.Helper()
	cfg, rep, err := v3_4.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("v3_4.Parse: %v %s", err, rep.String())
	}
	files := map[string][]byte{}
	for _, f := range cfg.Storage.Files {
		src := *f.Contents.Source
		i := strings.Index(src, ",")
		if !strings.HasPrefix(src, "data:") || i < 0 {
			t.Fatalf("%s: not a data URL: %.40s", f.Path, src)
		}
		data := []byte(src[i+1:])
		if strings.HasSuffix(src[:i], ";base64") {
			var err error
			if data, err = base64.StdEncoding.DecodeString(string(data)); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
		}
		if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
		}
		files[f.Path] = data
	}
	return cfg, files
}
