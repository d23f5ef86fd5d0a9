// Command cliimage builds the image the repository's Dockerfile describes (kubeup,
// ignition-gen and the Packer plugin, static, on an empty base) without a Docker engine, with
// go-containerregistry, and writes it as an OCI archive (`docker load`, `ctr images import`).
// It reads the Dockerfile's `go build` lines, ENV, WORKDIR and ENTRYPOINT, and refuses a
// Dockerfile whose other steps are not the ones it reproduces, so the two cannot drift apart.
//
//	go run ./hack/cliimage -o kubeup-image.tar
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"kubeup.dev/kubeup/internal/bundle"
)

// Ref names the image in the archive.
const Ref = "kubeup.dev/kubeup:dev"

// reproduced are the Dockerfile's steps besides its go build lines, as cliimage does them.
var reproduced = []string{
	"FROM scratch",
	"COPY --from=build /rootfs/ /",
	"RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/work /rootfs/root && chmod 1777 /rootfs/tmp && \\",
	"cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/",
	"ENV CGO_ENABLED=0",
}

// caBundle is where Debian keeps the CA certificates (package ca-certificates), in the
// golang build image and on the host alike.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// Recipe is what the Dockerfile says the image holds.
type Recipe struct {
	Binaries   map[string]string // path in the image -> Go package
	Env        []string
	WorkingDir string
	Entrypoint []string
}

var goBuild = regexp.MustCompile(`^RUN go build -trimpath -o /rootfs(/\S+) (\./\S+)$`)

// ParseDockerfile reads the recipe from the Dockerfile.
func ParseDockerfile(path string) (*Recipe, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Recipe{Binaries: map[string]string{}}
	final := false
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "FROM scratch") {
			final = true
		}
		if m := goBuild.FindStringSubmatch(line); m != nil {
			r.Binaries[m[1]] = m[2]
			continue
		}
		if !final {
			continue
		}
		switch {
		case strings.HasPrefix(line, "ENV "):
			r.Env = append(r.Env, strings.TrimPrefix(line, "ENV "))
		case strings.HasPrefix(line, "WORKDIR "):
			r.WorkingDir = strings.TrimPrefix(line, "WORKDIR ")
		case strings.HasPrefix(line, "ENTRYPOINT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT ")), &r.Entrypoint); err != nil {
				return nil, fmt.Errorf("%s:%d: ENTRYPOINT: %w", path, i+1, err)
			}
		}
	}
	for _, want := range reproduced {
		if !strings.Contains(string(data), want) {
			return nil, fmt.Errorf("%s: no line %q: cliimage reproduces the Dockerfile only in its known shape (fix: change hack/cliimage with it)", path, want)
		}
	}
	if len(r.Binaries) == 0 || len(r.Entrypoint) == 0 || r.WorkingDir == "" {
		return nil, fmt.Errorf("%s: no go build lines, ENTRYPOINT or WORKDIR in the final stage", path)
	}
	return r, nil
}

// Build builds the recipe's binaries from the repository at root and writes the image to out.
func Build(root string, r *Recipe, out string) error {
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return fmt.Errorf("%w (fix: apt-get install -y ca-certificates)", err)
	}
	tmp, err := os.MkdirTemp("", "kubeup-cliimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := []bundle.File{
		{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: ca},
		{Path: "/tmp", Mode: 0o1777, Dir: true},
		{Path: "/work", Mode: 0o755, Dir: true},
		{Path: "/root", Mode: 0o700, Dir: true},
	}
	for path, pkg := range r.Binaries {
		bin := filepath.Join(tmp, filepath.Base(path))
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		files = append(files, bundle.File{Path: path, Mode: 0o755, Data: data})
	}
	img, err := bundle.Build(bundle.ImageSpec{Ref: Ref, Files: files, Entrypoint: r.Entrypoint, Env: r.Env, WorkingDir: r.WorkingDir})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := bundle.WriteArchive(f, Ref, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func main() {
	out := flag.String("o", "kubeup-image.tar", "where to write the OCI archive")
	dockerfile := flag.String("f", "Dockerfile", "the Dockerfile to reproduce (paths are from the repository root)")
	flag.Parse()
	r, err := ParseDockerfile(*dockerfile)
	if err == nil {
		err = Build(".", r, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cliimage:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s (docker load -i %s, or ctr images import)\n", *out, Ref, *out)
}
