package main

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// The repository's Dockerfile, built without Docker: the image holds the three static binaries,
// the CA bundle and a sticky /tmp, runs kubeup from /work, and its binaries run.
func TestDockerfileImage(t *testing.T) {
	r, err := ParseDockerfile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/usr/local/bin/kubeup": "./kubeup", "/usr/local/bin/ignition-gen": "./ignition-gen", "/usr/local/bin/packer-plugin-kubeup": "./packer-plugin"}
	if len(r.Binaries) != len(want) {
		t.Errorf("the Dockerfile builds %v, want %v", r.Binaries, want)
	}
	for k, v := range want {
		if r.Binaries[k] != v {
			t.Errorf("the Dockerfile builds %v, want %v", r.Binaries, want)
		}
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := Build("../..", r, out); err != nil {
		t.Fatal(err)
	}

	// Read it back as a consumer would: the OCI layout inside the archive.
	dir := t.TempDir()
	untar(t, out, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != Ref {
		t.Fatalf("index %+v %v: want one image named %s", im, err, Ref)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/kubeup"}) || cf.Config.WorkingDir != "/work" ||
		!slices.Contains(cf.Config.Env, "PATH=/usr/local/bin") || cf.OS != "linux" {
		t.Errorf("config %+v", cf.Config)
	}
	rootfs := t.TempDir()
	extract(t, mutate.Extract(img), rootfs)
	if fi, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v %v, want a sticky 1777 directory", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); err != nil || fi.Size() == 0 {
		t.Errorf("CA bundle: %v", err)
	}
	for path := range want {
		bin := filepath.Join(rootfs, path)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: the image has no libc", path)
			}
		}
		f.Close()
	}
	run := func(bin string, args ...string) string {
		out, err := exec.Command(filepath.Join(rootfs, "usr/local/bin", bin), args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	if out := run("kubeup", "up", "--help"); !strings.Contains(out, "--provider") {
		t.Errorf("kubeup up --help:\n%s", out)
	}
	if out := run("ignition-gen", "--help"); !strings.Contains(out, "ignition-gen") {
		t.Errorf("ignition-gen --help:\n%s", out)
	}
	var desc struct {
		Version      string   `json:"version"`
		Provisioners []string `json:"provisioners"`
	}
	if err := json.Unmarshal([]byte(run("packer-plugin-kubeup", "describe")), &desc); err != nil || desc.Version != "0.1.0" || !slices.Contains(desc.Provisioners, "node") {
		t.Errorf("packer-plugin-kubeup describe: %+v %v", desc, err)
	}
}

// A Dockerfile that grew a step cliimage does not reproduce is refused, naming the fix.
func TestDockerfileShape(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(f, []byte(strings.Replace(string(data), "FROM scratch", "FROM debian:bookworm-slim", 1)), 0o644)
	if _, err := ParseDockerfile(f); err == nil || !strings.Contains(err.Error(), "hack/cliimage") {
		t.Errorf("a changed base: %v, want an error saying cliimage must change with it", err)
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	extract(t, f, dir)
}

func extract(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
			os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode))
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			data, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, data, os.FileMode(h.Mode&0o777)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func modeBits(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
