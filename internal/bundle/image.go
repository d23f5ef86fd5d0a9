package bundle

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in an image: builds at different times give the same digests.
var epoch = time.Unix(0, 0).UTC()

// File is one file of an image's layer: a regular file, a symlink when Link is set, or
// a directory (of its own mode, e.g. /tmp's 1777) when Dir is set.
type File struct {
	Path string // absolute path in the image
	Mode int64
	Data []byte
	Link string // symlink target
	Dir  bool
}

// ImageSpec is an image to assemble: a layer of files (and the Upper layers over it), run as
// Entrypoint with Cmd's arguments, as User (empty: root).
type ImageSpec struct {
	Ref   string
	Files []File
	// Upper are further layers over Files, in order. Images whose lower layers hold the same
	// files share those layers' blobs, which a machine pulls and unpacks once.
	Upper      [][]File
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	WorkingDir string
}

// defaultEnv lets static pod commands name their binary (etcd, kube-apiserver) as upstream
// images allow.
var defaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// Build assembles an OCI image for linux/amd64. The result depends only on the spec: file
// order, timestamps and owners are fixed, so the digest is reproducible.
func Build(spec ImageSpec) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, files := range append([][]File{spec.Files}, spec.Upper...) {
		layerTar, err := layerTar(files)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Ref, err)
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(layerTar)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "kubeup bundle"},
		})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	// Without os/arch, containerd's import filters the image out as not for this platform.
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	env := spec.Env
	if env == nil {
		env = defaultEnv
	}
	cf.Config = v1.Config{Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, User: spec.User, Env: env, WorkingDir: spec.WorkingDir}
	return mutate.ConfigFile(img, cf)
}

// layerTar writes files as a tar stream, parents first, sorted, owned by root, at the epoch.
func layerTar(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("file path %q must be absolute and clean", f.Path)
		}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// A later file replaces an earlier one at the same path (a binary over a userland's).
	byPath := map[string]int{}
	for i, f := range files {
		byPath[f.Path] = i
	}
	type entry struct {
		name string
		f    *File
	}
	var entries []entry
	for d := range dirs {
		entries = append(entries, entry{name: strings.TrimPrefix(d, "/") + "/"})
	}
	for i := range files {
		if byPath[files[i].Path] == i && !dirs[files[i].Path] {
			entries = append(entries, entry{name: strings.TrimPrefix(files[i].Path, "/"), f: &files[i]})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, ModTime: epoch, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		switch {
		case e.f == nil:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.f.Dir:
			h.Typeflag, h.Mode = tar.TypeDir, e.f.Mode
		case e.f.Link != "":
			h.Typeflag, h.Mode, h.Linkname = tar.TypeSymlink, 0o777, e.f.Link
		default:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, e.f.Mode, int64(len(e.f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if e.f != nil && e.f.Link == "" && !e.f.Dir {
			if _, err := tw.Write(e.f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
