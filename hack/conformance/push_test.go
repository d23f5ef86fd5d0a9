package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fakeInputs lays out every input the images take, each file holding its own name.
func fakeInputs(t *testing.T) inputs {
	t.Helper()
	dir := t.TempDir()
	in := inputs{Bins: filepath.Join(dir, "bins"), Userland: filepath.Join(dir, "userland"), Source: filepath.Join(dir, "k8s")}
	files := []string{
		"bins/agnhost", "bins/coredns", "bins/nnp", "bins/kube-sample-apiserver", "bins/etcd", "bins/pause",
		"userland/agnhost/usr/bin/dig", "userland/agnhost/bin/bash", "userland/busybox/bin/busybox",
		"userland/nginx/usr/sbin/nginx", "userland/nginx/etc/nginx/mime.types",
		"k8s/test/images/agnhost/porter/localhost.crt", "k8s/test/images/agnhost/porter/localhost.key",
		"k8s/test/images/kitten/html/kitten.jpg", "k8s/test/images/kitten/html/data.json",
		"k8s/test/images/nautilus/html/nautilus.jpg", "k8s/test/images/nautilus/html/data.json",
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("busybox", filepath.Join(in.Userland, "busybox/bin/sh")); err != nil {
		t.Fatal(err)
	}
	return in
}

// layerFiles are an image's files by path, its layers applied in order: content, or
// "-> target" for a link, and mode.
func layerFiles(t *testing.T, ref name.Reference) (map[string]string, map[string]int64) {
	t.Helper()
	files, modes := map[string]string{}, map[string]int64{}
	for _, l := range layers(t, ref) {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			files["/"+strings.TrimPrefix(h.Name, "/")] = string(data)
			if h.Typeflag == tar.TypeSymlink {
				files["/"+strings.TrimPrefix(h.Name, "/")] = "-> " + h.Linkname
			}
			modes["/"+strings.TrimPrefix(h.Name, "/")] = h.Mode
		}
		rc.Close()
	}
	return files, modes
}

// layers are the image's layers, lowest first.
func layers(t *testing.T, ref name.Reference) []v1.Layer {
	t.Helper()
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) == 0 {
		t.Fatalf("%s: %d layers, %v", ref, len(ls), err)
	}
	return ls
}

// digests are the image's layers' digests, lowest first.
func digests(t *testing.T, ref name.Reference) []string {
	t.Helper()
	var ds []string
	for _, l := range layers(t, ref) {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	return ds
}

// push builds every test image and writes it to a registry (go-containerregistry's, on
// loopback) under the suite's names: each with what upstream's Dockerfile gives it.
func TestPushBuildsEveryImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/e2e"
	var out bytes.Buffer
	if err := push(repo, fakeInputs(t), &out, []name.Option{name.Insecure}); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "\n"); n != len(testImages) {
		t.Errorf("%d images pushed, want %d:\n%s", n, len(testImages), out.String())
	}
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(repo+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	config := func(s string) (entry, cmd []string, user string) {
		img, err := remote.Image(ref(s))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		return cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User
	}
	if e, c, _ := config("agnhost:2.66.1"); strings.Join(e, " ") != "/agnhost" || strings.Join(c, " ") != "pause" {
		t.Errorf("agnhost runs %v %v, want /agnhost pause", e, c)
	}
	files, _ := layerFiles(t, ref("agnhost:2.66.1"))
	for p, want := range map[string]string{"/agnhost": "bins/agnhost", "/agnhost-2": "-> agnhost", "/usr/bin/dig": "userland/agnhost/usr/bin/dig",
		"/localhost.crt": "k8s/test/images/agnhost/porter/localhost.crt"} {
		if files[p] != want {
			t.Errorf("agnhost's %s: %q, want %q", p, files[p], want)
		}
	}
	if !strings.Contains(files["/etc/group"], "group-defined-in-image:x:50000:user-defined-in-image") {
		t.Errorf("agnhost's /etc/group: %q", files["/etc/group"])
	}
	if files, _ := layerFiles(t, ref("agnhost:2.55")); files["/agnhost"] != "bins/agnhost" || files["/kubeup-image-tag"] != "2.55\n" {
		t.Errorf("agnhost:2.55's /agnhost %q, /kubeup-image-tag %q", files["/agnhost"], files["/kubeup-image-tag"])
	}
	// The images made from agnhost's share its userland's and its own files' blobs, and the DNS
	// image the userland's: a machine pulls each once.
	agn := digests(t, ref("agnhost:2.66.1"))
	for _, img := range []string{"agnhost:2.55", "kitten:1.8", "nautilus:1.8"} {
		if d := digests(t, ref(img)); len(d) != 3 || len(agn) != 2 || d[0] != agn[0] || d[1] != agn[1] {
			t.Errorf("%s's layers %v do not stand on agnhost:2.66.1's %v", img, d, agn)
		}
	}
	if d := digests(t, ref("glibc-dns-testing:2.1.1")); d[0] != agn[0] {
		t.Errorf("glibc-dns-testing's first layer %s is not agnhost's userland %s", d[0], agn[0])
	}
	if files, _ := layerFiles(t, ref("glibc-dns-testing:2.1.1")); files["/usr/bin/dig"] != "userland/agnhost/usr/bin/dig" || files["/etc/passwd"] == "" {
		t.Errorf("glibc-dns-testing's dig %q, passwd %q", files["/usr/bin/dig"], files["/etc/passwd"])
	}
	if _, c, _ := config("kitten:1.8"); strings.Join(c, " ") != "test-webserver" {
		t.Errorf("kitten runs %v, want test-webserver", c)
	}
	if files, _ := layerFiles(t, ref("kitten:1.8")); files["/kitten.jpg"] != "k8s/test/images/kitten/html/kitten.jpg" {
		t.Errorf("kitten has no picture: %q", files["/kitten.jpg"])
	}
	if _, _, u := config("nonroot:1.5"); u != "1234" {
		t.Errorf("nonroot runs as %q, want 1234", u)
	}
	if _, modes := layerFiles(t, ref("nonewprivs:1.4")); modes["/usr/local/bin/nnp"] != 0o4755 {
		t.Errorf("nnp's mode is %o, want 4755 (set-user-ID)", modes["/usr/local/bin/nnp"])
	}
	if files, _ := layerFiles(t, ref("busybox:1.37.0-2")); files["/bin/sh"] != "-> busybox" {
		t.Errorf("busybox's /bin/sh: %q", files["/bin/sh"])
	}

	// An input missing is named, and a non-loopback registry without a CA is refused.
	in := fakeInputs(t)
	os.Remove(filepath.Join(in.Source, "test/images/kitten/html/kitten.jpg"))
	if err := push(repo, in, io.Discard, []name.Option{name.Insecure}); err == nil || !strings.Contains(err.Error(), "kitten.jpg") {
		t.Errorf("a missing input: %v, want it named", err)
	}
	if err := pushCommand([]string{"-repo", "10.0.2.100:5000/e2e", "-bins", in.Bins, "-userland", in.Userland, "-source", in.Source}, nil, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain HTTP to another host: %v, want a refusal", err)
	}
}
