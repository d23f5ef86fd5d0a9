package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"kubeup.dev/kubeup/internal/fsutil"
)

// Options say where binaries are and where the bundle goes.
type Options struct {
	// BinDirs are searched, in order, for each component's binaries.
	BinDirs []string
	// Out is the bundle directory: bundle.json and images/<name>.tar.
	Out string
	// UserlandDir holds the root filesystems components name in Userland (hack/userland.sh).
	UserlandDir string
	// Progress, if set, hears about each image as it is written.
	Progress func(rec ImageRecord)
}

// Make builds every component's image from its binaries and writes the bundle. Archives whose
// content is unchanged are not rewritten.
func Make(ctx context.Context, k8s string, comps []Component, opt Options) (Manifest, error) {
	m := Manifest{Kubernetes: k8s}
	if err := fsutil.MkdirAll(filepath.Join(opt.Out, "images"), 0o755); err != nil {
		return m, err
	}
	var missing []string
	for _, c := range comps {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		img, lacking, err := buildComponent(c, opt)
		if err != nil {
			return m, err
		}
		if len(lacking) > 0 {
			missing = append(missing, lacking...)
			continue
		}
		rec, err := writeImage(opt.Out, c.Name, c.Ref, c.Source, img)
		if err != nil {
			return m, err
		}
		m.Images = append(m.Images, rec)
		if opt.Progress != nil {
			opt.Progress(rec)
		}
	}
	if len(missing) > 0 {
		return m, fmt.Errorf("not found in %v (binaries) or %s (userlands): %v; `make bundle` builds them all",
			opt.BinDirs, opt.UserlandDir, missing)
	}
	return m, writeManifest(opt.Out, m)
}

// buildComponent assembles c's image from its userlands and binaries, or says which are missing.
func buildComponent(c Component, opt Options) (v1.Image, []string, error) {
	spec := ImageSpec{Ref: c.Ref, Entrypoint: c.Entrypoint}
	var missing []string
	for _, u := range c.Userland {
		files, err := DirFiles(filepath.Join(opt.UserlandDir, u))
		if err != nil || len(files) == 0 {
			missing = append(missing, c.Name+": userland "+u)
		}
		spec.Files = append(spec.Files, files...)
	}
	names := make([]string, 0, len(c.Binaries))
	for b := range c.Binaries {
		names = append(names, b)
	}
	sort.Strings(names)
	for _, b := range names {
		data, mode, err := findBinary(opt.BinDirs, b)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, c.Name+": "+b)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		spec.Files = append(spec.Files, File{Path: c.Binaries[b], Mode: mode, Data: data})
	}
	if len(missing) > 0 {
		return nil, missing, nil
	}
	img, err := Build(spec)
	return img, nil, err
}

func writeManifest(out string, m Manifest) error {
	data, err := m.Encode()
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(out, ManifestFile), data, 0o644)
}

func writeImage(out, name, ref, source string, img v1.Image) (ImageRecord, error) {
	d, err := img.Digest()
	if err != nil {
		return ImageRecord{}, err
	}
	rec := ImageRecord{Ref: ref, Digest: d.String(), Archive: "images/" + name + ".tar", Source: source}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, ref, img); err != nil {
		return rec, err
	}
	return rec, fsutil.WriteFile(filepath.Join(out, rec.Archive), buf.Bytes(), 0o644)
}

func findBinary(dirs []string, name string) ([]byte, int64, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, 0, err
		}
		mode := int64(0o755)
		if st.Mode()&0o111 == 0 {
			mode = 0o644
		}
		return data, mode, nil
	}
	return nil, 0, fs.ErrNotExist
}
