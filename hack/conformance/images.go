package main

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"kubeup.dev/kubeup/internal/bundle"
)

// inputs are where the test images' parts are, each built from source or taken from Debian's
// packages by the scripts, never pulled from a registry.
type inputs struct {
	// Bins holds the binaries: agnhost, nnp, kube-sample-apiserver, etcd, pause, coredns.
	Bins string
	// Userland holds one root filesystem per Debian package set: agnhost, busybox, nginx.
	Userland string
	// Source is k8s.io/kubernetes at the release: test/images' own files.
	Source string
}

// testImage is one image the conformance suite runs, under the name and tag the suite gives it.
// Made says what it holds, which is not what upstream's image of that tag holds where Debian's
// packages stand in for Alpine's or for another release's: the suite's image names are mapped
// to kubeup's own repository (--kube-test-repo-list), never served under upstream's.
type testImage struct {
	Name, Tag string
	Made      string
	// Prepull is the command that, run in the image, exits at once: the images the specs share
	// are pulled onto every machine before the suite starts (prepull.go); nil for the others.
	Prepull []string
	build   func(in inputs) (image, error)
}

// ref is the image's reference under repo (HOST:PORT/PATH): the suite's name and tag there.
func (t testImage) ref(repo string) string { return repo + "/" + t.Name + ":" + t.Tag }

// image is a test image's layers and its config.
type image = bundle.ImageSpec

// testImages are the images the [Conformance] specs of the suite run (its manifest's tags at
// the release kubeup pins).
var testImages = []testImage{
	{Name: "agnhost", Tag: "2.66.1", Prepull: []string{"sh", "-c", "true"}, Made: "agnhost built from k8s.io/kubernetes/test/images/agnhost at the release, on Debian's bash, dig, getent, curl, nc, ip, iperf, socat and util-linux instead of Alpine's",
		build: func(in inputs) (image, error) { return agnhost(in, nil, "pause") }},
	// The suite's rolling updates (StatefulSets, kubectl apply) start from the previous agnhost
	// and move to the current one: only the names must differ, and the digests do too.
	{Name: "agnhost", Tag: "2.55", Prepull: []string{"sh", "-c", "true"}, Made: "the agnhost image above under the earlier tag the suite's rolling updates start from (not agnhost 2.55's code), /kubeup-image-tag telling the two apart",
		build: func(in inputs) (image, error) {
			return agnhost(in, []bundle.File{{Path: "/kubeup-image-tag", Mode: 0o644, Data: []byte("2.55\n")}}, "pause")
		}},
	{Name: "kitten", Tag: "1.8", Made: "the agnhost image with test/images/kitten's page", build: func(in inputs) (image, error) { return webFiles(in, "kitten", "kitten.jpg") }},
	{Name: "nautilus", Tag: "1.8", Made: "the agnhost image with test/images/nautilus's page", build: func(in inputs) (image, error) { return webFiles(in, "nautilus", "nautilus.jpg") }},
	{Name: "busybox", Tag: "1.37.0-2", Prepull: []string{"true"}, Made: "Debian's busybox-static (1.35, not 1.37), every applet linked", build: func(in inputs) (image, error) {
		files, err := bundle.DirFiles(filepath.Join(in.Userland, "busybox"))
		return image{Files: append(files, passwd()...), Cmd: []string{"sh"}}, err
	}},
	{Name: "nginx", Tag: "1.27.0-2", Prepull: []string{"nginx", "-v"}, Made: "Debian's nginx (1.22, not 1.27) serving its welcome page on port 80, as upstream's image does", build: nginx},
	{Name: "glibc-dns-testing", Tag: "2.1.1", Prepull: []string{"bash", "-c", "true"}, Made: "Debian's dig, host and nslookup on bash, as upstream's (without its CoreDNS 1.5 binary): the agnhost image's userland layer, whose blob machines then pull once for both", build: func(in inputs) (image, error) {
		files, err := bundle.DirFiles(filepath.Join(in.Userland, "agnhost"))
		return image{Files: files, Upper: [][]bundle.File{passwd()}, Cmd: []string{"bash"}}, err
	}},
	{Name: "nonewprivs", Tag: "1.4", Made: "test/images/nonewprivs' nnp, set-user-ID root, on Debian's busybox", build: func(in inputs) (image, error) {
		files, err := bundle.DirFiles(filepath.Join(in.Userland, "busybox"))
		nnp, err2 := hostFile(filepath.Join(in.Bins, "nnp"), "/usr/local/bin/nnp", 0o4755)
		return image{Files: append(append(files, passwd()...), nnp), Cmd: []string{"nnp"}}, firstErr(err, err2)
	}},
	{Name: "nonroot", Tag: "1.5", Made: "Debian's busybox, run as user 1234", build: func(in inputs) (image, error) {
		files, err := bundle.DirFiles(filepath.Join(in.Userland, "busybox"))
		return image{Files: append(files, passwd()...), Cmd: []string{"sh"}, User: "1234"}, err
	}},
	{Name: "sample-apiserver", Tag: "1.29.2", Made: "k8s.io/sample-apiserver at the release's staging version, not 1.29's", build: func(in inputs) (image, error) {
		f, err := hostFile(filepath.Join(in.Bins, "kube-sample-apiserver"), "/kube-sample-apiserver", 0o755)
		return image{Files: []bundle.File{f}, Entrypoint: []string{"/kube-sample-apiserver"}}, err
	}},
	{Name: "etcd", Tag: "3.7.0-0", Made: "etcd v3.7.0 built from go.etcd.io/etcd", build: func(in inputs) (image, error) {
		f, err := hostFile(filepath.Join(in.Bins, "etcd"), "/usr/local/bin/etcd", 0o755)
		return image{Files: []bundle.File{f}, Entrypoint: []string{"/usr/local/bin/etcd"}}, err
	}},
	{Name: "pause", Tag: "3.10.2", Made: "upstream's pause.c from the release, as the bundle's pause image", build: func(in inputs) (image, error) {
		f, err := hostFile(filepath.Join(in.Bins, "pause"), "/pause", 0o755)
		return image{Files: []bundle.File{f}, Entrypoint: []string{"/pause"}}, err
	}},
}

// agnhost is upstream's agnhost image as its Dockerfile makes it (the binary at /, agnhost-2 a
// link to it, porter's certificate, /uploads, the user and group one test looks for), on
// Debian's userland, with extra files and cmd. Three layers: the userland, agnhost's own files,
// and the extra files, so that every image made from it shares the first two blobs (about
// 100 MB compressed), which a machine pulls and unpacks once, minutes under emulation.
func agnhost(in inputs, extra []bundle.File, cmd string) (image, error) {
	userland, err := bundle.DirFiles(filepath.Join(in.Userland, "agnhost"))
	if err != nil {
		return image{}, err
	}
	var files []bundle.File
	porter := filepath.Join(in.Source, "test/images/agnhost/porter")
	for _, f := range []struct {
		host, at string
		mode     int64
	}{
		{filepath.Join(in.Bins, "agnhost"), "/agnhost", 0o755},
		{filepath.Join(in.Bins, "coredns"), "/coredns", 0o755},
		{filepath.Join(porter, "localhost.crt"), "/localhost.crt", 0o644},
		{filepath.Join(porter, "localhost.key"), "/localhost.key", 0o644},
	} {
		hf, err := hostFile(f.host, f.at, f.mode)
		if err != nil {
			return image{}, err
		}
		files = append(files, hf)
	}
	files = append(files, bundle.File{Path: "/agnhost-2", Link: "agnhost"}, bundle.File{Path: "/uploads", Mode: 0o755, Dir: true})
	files = append(files, passwd("user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh")...)
	upper := [][]bundle.File{files}
	if len(extra) > 0 {
		upper = append(upper, extra)
	}
	return image{Files: userland, Upper: upper, Entrypoint: []string{"/agnhost"}, Cmd: []string{cmd}}, nil
}

// webFiles are a test page's picture and data (test/images/NAME/html) at /, where agnhost's
// test-webserver serves them, on the agnhost image.
func webFiles(in inputs, name, picture string) (image, error) {
	var extra []bundle.File
	for _, f := range []string{picture, "data.json"} {
		hf, err := hostFile(filepath.Join(in.Source, "test/images", name, "html", f), "/"+f, 0o644)
		if err != nil {
			return image{}, err
		}
		extra = append(extra, hf)
	}
	return agnhost(in, extra, "test-webserver")
}

// nginx is Debian's nginx with upstream's image's behaviour: in the foreground, logging to the
// container's output, serving the welcome page on port 80.
func nginx(in inputs) (image, error) {
	files, err := bundle.DirFiles(filepath.Join(in.Userland, "nginx"))
	if err != nil {
		return image{}, err
	}
	conf := `# kubeup's test image: upstream nginx's defaults, on Debian's build.
user www-data;
worker_processes 1;
error_log /dev/stderr;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log /dev/stdout;
  server {
    listen 80;
    root /usr/share/nginx/html;
    index index.html;
  }
}
`
	files = append(files, bundle.File{Path: "/etc/nginx/nginx.conf", Mode: 0o644, Data: []byte(conf)},
		bundle.File{Path: "/var/lib/nginx", Mode: 0o755, Dir: true}, bundle.File{Path: "/var/log/nginx", Mode: 0o755, Dir: true},
		bundle.File{Path: "/run", Mode: 0o755, Dir: true})
	files = append(files, passwd()...)
	return image{Files: files, Entrypoint: []string{"nginx"}, Cmd: []string{"-g", "daemon off;"}}, nil
}

// passwd are /etc/passwd and /etc/group with root, nobody and www-data, and users: Debian's
// packages, unpacked rather than installed, bring none.
func passwd(users ...string) []bundle.File {
	p := "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	g := "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n"
	for _, u := range users {
		p += u + "\n"
	}
	if len(users) > 0 {
		// agnhost's: the user, in a group of its own and in group-defined-in-image.
		g += "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"
	}
	return []bundle.File{{Path: "/etc/passwd", Mode: 0o644, Data: []byte(p)}, {Path: "/etc/group", Mode: 0o644, Data: []byte(g)},
		{Path: "/tmp", Mode: 0o1777, Dir: true}}
}

// hostFile is the file at host as image file at, with mode.
func hostFile(host, at string, mode int64) (bundle.File, error) {
	data, err := os.ReadFile(host)
	return bundle.File{Path: at, Mode: mode, Data: data}, err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// buildImage assembles t for ref.
func buildImage(t testImage, in inputs, ref string) (v1.Image, error) {
	spec, err := t.build(in)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", t.Name, t.Tag, err)
	}
	spec.Ref = ref
	return bundle.Build(spec)
}
