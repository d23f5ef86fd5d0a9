package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"kubeup.dev/kubeup/internal/versions"
)

func spec(data string) ImageSpec {
	return ImageSpec{Ref: "registry.k8s.io/test:v1", Entrypoint: []string{"/usr/local/bin/x"},
		Files: []File{{Path: "/usr/local/bin/x", Mode: 0o755, Data: []byte(data)}, {Path: "/etc/x.conf", Mode: 0o644, Data: []byte("conf")}}}
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func archive(t *testing.T, ref string, img v1.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, ref, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSameInputsSameDigest(t *testing.T) {
	a, err := Build(spec("binary"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Build(spec("binary"))
	c, _ := Build(spec("binary2"))
	if digest(t, a) != digest(t, b) {
		t.Fatalf("same inputs, digests %s and %s", digest(t, a), digest(t, b))
	}
	if digest(t, a) == digest(t, c) {
		t.Fatal("different binaries, same digest")
	}
	if !bytes.Equal(archive(t, "registry.k8s.io/test:v1", a), archive(t, "registry.k8s.io/test:v1", b)) {
		t.Fatal("same image, different archive bytes")
	}
}

// Images that differ only in an upper layer share the lower layer's blob.
func TestUpperLayersShareTheLowerBlob(t *testing.T) {
	one, two := spec("binary"), spec("binary")
	one.Upper = [][]File{{{Path: "/tag", Mode: 0o644, Data: []byte("1")}}}
	two.Upper = [][]File{{{Path: "/tag", Mode: 0o644, Data: []byte("2")}}}
	var lower, upper []string
	for _, s := range []ImageSpec{one, two} {
		img, err := Build(s)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 2 {
			t.Fatalf("%d layers, %v; want 2", len(ls), err)
		}
		d0, _ := ls[0].Digest()
		d1, _ := ls[1].Digest()
		lower, upper = append(lower, d0.String()), append(upper, d1.String())
	}
	if lower[0] != lower[1] || upper[0] == upper[1] {
		t.Errorf("lower layers %v (want equal), upper %v (want different)", lower, upper)
	}
}

// untar unpacks an archive into a directory.
func untar(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArchiveIsAnOCILayoutNamedByReference(t *testing.T) {
	img, _ := Build(spec("binary"))
	dir := untar(t, archive(t, "registry.k8s.io/test:v1", img))
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("%d manifests", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Annotations[annotationContainerdName] != "registry.k8s.io/test:v1" || desc.Annotations[annotationRefName] != "registry.k8s.io/test:v1" {
		t.Errorf("annotations %v", desc.Annotations)
	}
	if desc.Digest.String() != digest(t, img) {
		t.Errorf("archive holds %s, built %s", desc.Digest, digest(t, img))
	}
	got, _ := p.Image(desc.Digest)
	cf, _ := got.ConfigFile()
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Entrypoint[0] != "/usr/local/bin/x" {
		t.Errorf("config: os %q arch %q entrypoint %v", cf.OS, cf.Architecture, cf.Config.Entrypoint)
	}
	layers, _ := got.Layers()
	rc, _ := layers[0].Uncompressed()
	tr := tar.NewReader(rc)
	seen := map[string]int64{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		seen[h.Name] = h.Mode
		if h.Uid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d mtime %v", h.Name, h.Uid, h.ModTime)
		}
	}
	if seen["usr/local/bin/x"] != 0o755 || seen["etc/x.conf"] != 0o644 || seen["usr/local/bin/"] != 0o755 {
		t.Errorf("layer entries %v", seen)
	}
}

// The registry path is tested against go-containerregistry's own registry implementation, served
// in-process: no registry is reachable from this machine.
func TestRegistrySourceKeepsUpstreamNames(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := mustHost(t, srv.URL)
	img, _ := Build(spec("pulled"))
	dst, _ := name.ParseReference(host+"/kube-apiserver:v1.37.2", name.Insecure)
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// The probe is in no registry: it is built from its binary on this path too.
	bins := t.TempDir()
	if err := os.WriteFile(filepath.Join(bins, "kubeup-probe"), []byte("probe binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	probe := Component{Name: "probe", Ref: "kubeup.dev/probe:v1", Local: true, Source: "kubeup.dev/kubeup/kubeup-probe",
		Binaries: map[string]string{"kubeup-probe": "/kubeup-probe"}, Entrypoint: []string{"/kubeup-probe"}}
	comps := []Component{{Name: "kube-apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.37.2"}, probe}
	m, err := FetchAll(context.Background(), "v1.37.2", comps, host, Options{Out: out, BinDirs: []string{bins}}, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]ImageRecord{}
	for _, r := range m.Images {
		recs[r.Ref] = r
	}
	pulled := recs["registry.k8s.io/kube-apiserver:v1.37.2"]
	if len(m.Images) != 2 || pulled.Digest != digest(t, img) {
		t.Fatalf("manifest %+v, want kube-apiserver with digest %s", m, digest(t, img))
	}
	built, _, _ := buildComponent(probe, Options{BinDirs: []string{bins}})
	if r := recs[probe.Ref]; r.Digest != digest(t, built) || r.Source != probe.Source {
		t.Errorf("probe record %+v, want the image built from its binary (%s)", r, digest(t, built))
	}
	data, _ := os.ReadFile(filepath.Join(out, pulled.Archive))
	p, err := layout.FromPath(untar(t, data))
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	if got := im.Manifests[0].Annotations[annotationContainerdName]; got != "registry.k8s.io/kube-apiserver:v1.37.2" {
		t.Errorf("archive named %q, want the upstream reference", got)
	}
	var onDisk Manifest
	raw, _ := os.ReadFile(filepath.Join(out, ManifestFile))
	if err := json.Unmarshal(raw, &onDisk); err != nil || len(onDisk.Images) != 2 {
		t.Fatalf("bundle.json: %v %s", err, raw)
	}
	if _, err := Fetch(context.Background(), "registry.k8s.io/missing:v1", host, name.Insecure); err == nil {
		t.Error("fetching a missing image succeeded")
	}
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// buildPause compiles upstream's pause.c from the default release's Kubernetes source, as
// hack/bundle.sh does.
func buildPause(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	src := filepath.Join(kubernetesSource(t, versions.Kubernetes), "build/pause/linux/pause.c")
	if out, err := exec.Command("gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v"+versions.Pause, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc pause.c: %v\n%s\n(a static build needs libc.a: apt-get install -y gcc libc6-dev)", err, out)
	}
	return bin
}

func TestPauseHoldsUntilTerminated(t *testing.T) {
	bin := buildPause(t)
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited on its own: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pause on SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pause ignored SIGTERM")
	}
}

func TestMakeWritesEveryImageAndIsRepeatable(t *testing.T) {
	bins := t.TempDir()
	pause, _ := os.ReadFile(buildPause(t))
	os.WriteFile(filepath.Join(bins, "pause"), pause, 0o755)
	os.WriteFile(filepath.Join(bins, "etcd"), []byte("etcd stand-in"), 0o755)
	os.WriteFile(filepath.Join(bins, "etcdctl"), []byte("etcdctl stand-in"), 0o755)
	var comps []Component
	for _, c := range Components("v1.37.2") {
		if c.Name == "pause" || c.Name == "etcd" {
			comps = append(comps, c)
		}
	}
	out := t.TempDir()
	m1, err := Make(context.Background(), "v1.37.2", comps, Options{BinDirs: []string{bins}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(out, ManifestFile))
	m2, err := Make(context.Background(), "v1.37.2", comps, Options{BinDirs: []string{bins}, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Images) != 2 || m1.Images[0].Digest != m2.Images[0].Digest || m1.Images[1].Digest != m2.Images[1].Digest {
		t.Fatalf("rebuild changed digests: %+v vs %+v", m1.Images, m2.Images)
	}
	if !bytes.Contains(first, []byte(`"ref": "`+versions.PauseImage+`"`)) {
		t.Errorf("bundle.json lacks the pause image:\n%s", first)
	}
	// A component whose binaries are missing is an error that names them and the fix.
	_, err = Make(context.Background(), "v1.37.2", Components("v1.37.2"), Options{BinDirs: []string{bins}, Out: t.TempDir()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("kube-apiserver: kube-apiserver")) {
		t.Fatalf("missing binaries: %v", err)
	}
}

func TestUserlandLaysUnderTheBinaries(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/busybox"), []byte("busybox"), 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin/cp"))
	os.WriteFile(filepath.Join(root, "bin/tool"), []byte("userland's tool"), 0o755)
	// Reached through a symlink, as hack/userland.sh names its versioned directories.
	link := filepath.Join(t.TempDir(), "busybox")
	os.Symlink(root, link)
	files, err := DirFiles(link)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, File{Path: "/bin/tool", Mode: 0o755, Data: []byte("the component's tool")})
	img, err := Build(ImageSpec{Ref: "x:1", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Uncompressed()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("%s twice in the layer", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		default:
			got[h.Name] = "dir"
		}
	}
	want := map[string]string{"bin/": "dir", "bin/busybox": "busybox", "bin/cp": "-> busybox", "bin/tool": "the component's tool"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
