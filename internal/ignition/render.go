package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/cluster"
)

// SpecVersion is the Ignition spec kubeup emits: the newest both Fedora CoreOS (Butane fcos
// 1.5.0) and Flatcar (flatcar 1.1.0) accept.
const SpecVersion = "3.4.0"

// compressAbove is the size from which file contents are gzipped inside the config: the PKI and
// manifests compress well, and a smaller config fits more delivery channels.
const compressAbove = 512

// Render encodes a plan as an Ignition config, merges its Butane snippets and checks the result
// with Ignition's own parser: an error or a warning from it is an error here.
func Render(p Plan) ([]byte, error) {
	return newRenderer().render(p)
}

// renderer encodes plans, remembering the encoding of file contents it has seen: the files every
// machine shares (CA certificate, kubelet config, bootstrap kubeconfig) are compressed once per
// run, not once per machine.
type renderer struct {
	encoded map[string]types.Resource
	zw      *gzip.Writer
	buf     bytes.Buffer
}

func newRenderer() *renderer {
	r := &renderer{encoded: map[string]types.Resource{}}
	r.zw, _ = gzip.NewWriterLevel(&r.buf, gzip.BestCompression)
	return r
}

func (r *renderer) render(p Plan) ([]byte, error) {
	cfg := types.Config{Ignition: types.Ignition{Version: SpecVersion}}
	for _, d := range p.Dirs {
		cfg.Storage.Directories = append(cfg.Storage.Directories, types.Directory{
			Node:               types.Node{Path: d.Path},
			DirectoryEmbedded1: types.DirectoryEmbedded1{Mode: ptr.To(int(d.Mode))},
		})
	}
	for _, f := range p.Files {
		res, err := r.contents(f.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		cfg.Storage.Files = append(cfg.Storage.Files, types.File{
			Node:          types.Node{Path: f.Path, Overwrite: ptr.To(true)},
			FileEmbedded1: types.FileEmbedded1{Mode: ptr.To(int(f.Mode)), Contents: res},
		})
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
			return nil, &SnippetError{Machine: p.Name, Source: s.Source, Err: err}
		}
		if taken := collisions(p, child); len(taken) > 0 {
			return nil, &SnippetError{Machine: p.Name, Source: s.Source, Err: fmt.Errorf("the snippet replaces what kubeup writes itself (%s); Ignition lets the later config win, so the machine would not be the one kubeup describes (fix: use paths of your own, and change kubeup's units with drop-ins, systemd.units[].dropins)",
				strings.Join(taken, ", "))}
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

// contents inlines data as a data URL, gzipped when that pays. gzip output with no name and no
// mtime is a pure function of its input, so the config stays deterministic.
func (r *renderer) contents(data []byte) (types.Resource, error) {
	if res, ok := r.encoded[string(data)]; ok {
		return res, nil
	}
	var res types.Resource
	if len(data) < compressAbove {
		res.Source = ptr.To(DataURL(data))
	} else {
		gz, err := r.gzip(data)
		if err != nil {
			return res, err
		}
		res.Source = ptr.To(DataURL(gz))
		res.Compression = ptr.To("gzip")
	}
	r.encoded[string(data)] = res
	return res, nil
}

// gzip compresses with one reused writer: a new flate writer allocates about a megabyte.
func (r *renderer) gzip(data []byte) ([]byte, error) {
	r.buf.Reset()
	r.zw.Reset(&r.buf)
	if _, err := r.zw.Write(data); err != nil {
		return nil, err
	}
	if err := r.zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(r.buf.Bytes()), nil
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

// SnippetError is a user's Butane snippet that cannot be merged into a machine's config: bad
// input in the cluster config, which the commands report as such (exit 2, naming the file).
type SnippetError struct {
	Machine string // the machine (or role) whose config it was merged into
	Source  string // where in the cluster config: butane.node, machines[node-1].butane
	Err     error
}

func (e *SnippetError) Error() string { return e.Machine + ": " + e.Source + ": " + e.Err.Error() }
func (e *SnippetError) Unwrap() error { return e.Err }

// collisions are what a user snippet would replace of the plan's own: a file, directory or link
// at a path the plan writes, or a unit of the plan's with new contents, enablement or a mask.
// Drop-ins for the plan's units are the systemd way to change them and stay allowed.
func collisions(p Plan, child types.Config) []string {
	own := map[string]bool{}
	for _, f := range p.Files {
		own[f.Path] = true
	}
	for _, d := range p.Dirs {
		own[d.Path] = true
	}
	var taken []string
	for _, f := range child.Storage.Files {
		if own[f.Path] {
			taken = append(taken, "file "+f.Path)
		}
	}
	for _, d := range child.Storage.Directories {
		if own[d.Path] {
			taken = append(taken, "directory "+d.Path)
		}
	}
	for _, l := range child.Storage.Links {
		if own[l.Path] {
			taken = append(taken, "link "+l.Path)
		}
	}
	units := map[string]bool{}
	for _, u := range p.Units {
		units[u.Name] = true
	}
	for _, u := range child.Systemd.Units {
		if units[u.Name] && (u.Contents != nil || u.Enabled != nil || u.Mask != nil) {
			taken = append(taken, "unit "+u.Name)
		}
	}
	return taken
}
