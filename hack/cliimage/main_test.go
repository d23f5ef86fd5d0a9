package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha512"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"kubeup.dev/kubeup/internal/cluster"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
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
	t.Run("SeedCommand", func(t *testing.T) { seedCommand(t, filepath.Join(rootfs, "usr/local/bin/kubeup")) })
}

// seedCommand runs `docker run --rm -v "$PWD:/work" kubeup up --num-nodes=3 --provider=aws` as
// the container would, with the image's own kubeup in an empty working directory, against the
// AWS stand-in (AWS_ENDPOINT_URL): a starter config is written, every resource is made, the
// master's config is stored behind its pointer, and a second run makes nothing. up then
// follows machines that never boot here; each run is stopped there with Ctrl-C, as a user
// would stop it.
func seedCommand(t *testing.T, kubeup string) {
	srv := awstest.New(t, "eu-west-1")
	srv.AddImage(awstest.Image{Name: "kubeup-debian-1700000000", Created: time.Unix(1700000000, 0)})
	ami := srv.AddImage(awstest.Image{Name: "kubeup-debian-1767225600", Created: time.Unix(1767225600, 0)})
	srv.AddImage(awstest.Image{Name: "other-1767225700", Created: time.Unix(1767225700, 0)})
	work, none := t.TempDir(), filepath.Join(t.TempDir(), "none")
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + work, "AWS_ENDPOINT_URL=" + srv.URL, "AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none, "AWS_EC2_METADATA_DISABLED=true"}
	up := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubeup, "up", "--num-nodes=3", "--provider=aws")
		cmd.Dir, cmd.Env = work, env
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { pw.CloseWithError(cmd.Wait()) }()
		var out strings.Builder
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "the machines are starting") {
				cmd.Process.Signal(os.Interrupt)
			}
		}
		if !strings.Contains(out.String(), "the machines are starting") {
			t.Fatalf("kubeup up --num-nodes=3 --provider=aws did not get to the machines (%v):\n%s", sc.Err(), out.String())
		}
		return out.String()
	}

	out := up()
	t.Logf("first run:\n%s", out)
	for _, want := range []string{"wrote kubeup.yaml, a starter for target aws", "image " + ami + " (kubeup-debian-1767225600)", "created the secrets bundle"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first run does not say %q", want)
		}
	}
	cfg, err := cluster.Load(filepath.Join(work, cluster.StarterFile))
	if err != nil {
		t.Fatalf("the starter config: %v", err)
	}
	if cfg.Target != cluster.TargetAWS || cfg.AWS.Region != "eu-west-1" {
		t.Errorf("the starter config: target %s, region %q", cfg.Target, cfg.AWS.Region)
	}
	kinds := map[string]int{}
	for _, r := range srv.Tagged(kaws.ClusterTag, cfg.Name) {
		kinds[strings.Fields(r)[0]]++
	}
	want := map[string]int{"vpc": 1, "subnet": 1, "internet-gateway": 1, "security-group": 2, "volume": 1, "elastic-ip": 1,
		"instance": 4, "launch-template": 1, "autoscaling-group": 1, "iam-role": 1, "instance-profile": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s of cluster %s, want %d (all: %v)", kinds[k], k, cfg.Name, n, kinds)
		}
	}
	bucket, _, _ := strings.Cut(strings.TrimPrefix(cfg.AWS.ConfigURL, "s3://"), "/")
	stored, sse, ok := srv.Object(bucket, cfg.Name+"/master.ign")
	if !ok || sse == "" {
		t.Fatalf("the master's config is not stored encrypted in s3://%s/%s/master.ign (%v %q)", bucket, cfg.Name, ok, sse)
	}
	sum := sha512.Sum512(stored)
	for _, i := range srv.Instances() {
		if i.Tags[kaws.RoleTag] == cluster.RoleMaster && (i.AMI != ami || !strings.Contains(string(i.UserData), hex.EncodeToString(sum[:]))) {
			t.Errorf("the master boots %s with user-data %s: want %s and the pointer to its stored config", i.AMI, i.UserData, ami)
		}
	}
	if fi, err := os.Stat(filepath.Join(work, ".kubeup", cfg.Name, "pki", "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the bundle's CA key: %v %v, want 0600", fi, err)
	}

	n := len(srv.Calls())
	out = up()
	if strings.Contains(out, "wrote kubeup.yaml") {
		t.Errorf("the second run wrote the starter again:\n%s", out)
	}
	for _, c := range srv.Calls()[n:] {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "Head") && !strings.HasPrefix(c, "List") {
			t.Errorf("the second run called %s", c)
		}
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
