package bundle

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"kubeup.dev/kubeup/internal/fsutil"
)

// Fetch takes an image from its registry (Source Registry: sites with internet). mirror, when
// set, replaces the reference's registry host (an internal mirror of registry.k8s.io); the
// archive is still named by the upstream reference, so manifests need no change.
func Fetch(ctx context.Context, ref, mirror string, opts ...name.Option) (v1.Image, error) {
	from := ref
	if mirror != "" {
		r, err := name.ParseReference(ref)
		if err != nil {
			return nil, err
		}
		from = mirror + "/" + strings.TrimPrefix(r.Context().RepositoryStr(), "library/") + refSuffix(r)
	}
	r, err := name.ParseReference(from, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", from, err)
	}
	return img, nil
}

func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}

// FetchAll pulls every component from its registry and writes the bundle to local.Out as Make
// does. Local components (no registry has them) are built from local's binaries instead.
func FetchAll(ctx context.Context, k8s string, comps []Component, mirror string, local Options, opts ...name.Option) (Manifest, error) {
	m := Manifest{Kubernetes: k8s}
	out := local.Out
	if err := fsutil.MkdirAll(filepath.Join(out, "images"), 0o755); err != nil {
		return m, err
	}
	for _, c := range comps {
		source := "registry"
		if mirror != "" {
			source = "mirror " + mirror
		}
		var img v1.Image
		var err error
		if c.Local {
			var missing []string
			img, missing, err = buildComponent(c, local)
			if err == nil && len(missing) > 0 {
				err = fmt.Errorf("%s has no registry and is built from its binary: not found in %v: %v", c.Ref, local.BinDirs, missing)
			}
			source = c.Source
		} else {
			img, err = Fetch(ctx, c.Ref, mirror, opts...)
		}
		if err != nil {
			return m, err
		}
		rec, err := writeImage(out, c.Name, c.Ref, source, img)
		if err != nil {
			return m, err
		}
		m.Images = append(m.Images, rec)
	}
	return m, writeManifest(out, m)
}
