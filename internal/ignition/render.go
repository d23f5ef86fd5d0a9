package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/cluster"
)

// SpecVersion is the Ignition spec kubeup emits: the newest both Fedora CoreOS (Butane fcos
// 1.5.0) and Flatcar (flatcar 1.1.0) accept (reference/ignition-delivery.md).
const SpecVersion = "3.4.0"

// compressAbove is the size from which file contents are gzipped inside the config: the PKI and
// manifests compress well, and a smaller config fits more delivery channels.
const compressAbove = 512

// Render encodes a plan as an Ignition config, merges its Butane snippets and checks the result
// with Ignition's own parser: an error or a warning from it is an error here.
func Render(p Plan) ([]byte, error) {
	cfg := types.Config{Ignition: types.Ignition{Version: SpecVersion}}
	for _, d := range p.Dirs {
		cfg.Storage.Directories = append(cfg.Storage.Directories, types.Directory{
			Node:               types.Node{Path: d.Path},
			DirectoryEmbedded1: types.DirectoryEmbedded1{Mode: ptr.To(int(d.Mode))},
		})
	}
	for _, f := range p.Files {
		file, err := fileEntry(f)
		if err != nil {
			return nil, err
		}
		cfg.Storage.Files = append(cfg.Storage.Files, file)
	}
	for _, u := range p.Units {
		unit := types.Unit{Name: u.Name, Enabled: ptr.To(u.Enabled)}
		if u.Contents != "" {
			unit.Contents = ptr.To(u.Contents)
		}
		cfg.Systemd.Units = append(cfg.Systemd.Units, unit)
	}
	for _, s := range p.Butane {
		child, err := cluster.TranslateButane(s.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", p.Name, s.Source, err)
		}
		cfg = v3_4.Merge(cfg, child)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := Check(out); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return out, nil
}

// Check parses a config with Ignition's own v3_4 parser and fails on any error or warning.
func Check(raw []byte) error {
	_, rep, err := v3_4.Parse(raw)
	if err != nil {
		return fmt.Errorf("ignition rejects the config: %w: %s", err, strings.TrimSpace(rep.String()))
	}
	if len(rep.Entries) > 0 {
		return fmt.Errorf("ignition warns about the config: %s", strings.TrimSpace(rep.String()))
	}
	return nil
}

func fileEntry(f File) (types.File, error) {
	src, compression, err := dataURL(f.Data)
	if err != nil {
		return types.File{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	return types.File{
		Node: types.Node{Path: f.Path, Overwrite: ptr.To(true)},
		FileEmbedded1: types.FileEmbedded1{
			Mode:     ptr.To(int(f.Mode)),
			Contents: types.Resource{Source: ptr.To(src), Compression: compression},
		},
	}, nil
}

// dataURL inlines data, gzipped when that pays. gzip output with no name and no mtime is a pure
// function of its input, so the config stays deterministic.
func dataURL(data []byte) (string, *string, error) {
	if len(data) < compressAbove {
		return "data:;base64," + base64.StdEncoding.EncodeToString(data), nil, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return "", nil, err
	}
	if err := zw.Close(); err != nil {
		return "", nil, err
	}
	return "data:;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), ptr.To("gzip"), nil
}
