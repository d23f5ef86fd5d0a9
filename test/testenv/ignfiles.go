package testenv

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
)

// IgnitionFiles parses an Ignition config and returns every file's decoded content by path.
func IgnitionFiles(t testing.TB, raw []byte) (types.Config, map[string][]byte) {
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
