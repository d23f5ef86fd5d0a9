package bundle

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/versions"
)

// TestUpstreamNamesAreUpstreamSource: an image published under an upstream registry's name is
// built from that upstream's source, at the version its tag says; kubeup's own programs go
// under kubeup.dev names, and only they. A scanner, a signature policy or an admission rule
// that trusts an upstream name is then not misled.
func TestUpstreamNamesAreUpstreamSource(t *testing.T) {
	// Each upstream repository and where its program's source is.
	sources := map[string]func(tag, k8s string) string{
		"registry.k8s.io/kube-apiserver":          func(tag, _ string) string { return "k8s.io/kubernetes/cmd/kube-apiserver@" + tag },
		"registry.k8s.io/kube-controller-manager": func(tag, _ string) string { return "k8s.io/kubernetes/cmd/kube-controller-manager@" + tag },
		"registry.k8s.io/kube-scheduler":          func(tag, _ string) string { return "k8s.io/kubernetes/cmd/kube-scheduler@" + tag },
		"registry.k8s.io/kube-proxy":              func(tag, _ string) string { return "k8s.io/kubernetes/cmd/kube-proxy@" + tag },
		"registry.k8s.io/etcd":                    func(tag, _ string) string { return "go.etcd.io/etcd/server/v3@v" + strings.TrimSuffix(tag, "-0") },
		"registry.k8s.io/pause":                   func(_, k8s string) string { return PauseSource + "@" + k8s },
		"registry.k8s.io/coredns/coredns":         func(tag, _ string) string { return "github.com/coredns/coredns@" + tag },
		"registry.k8s.io/metrics-server/metrics-server": func(tag, _ string) string {
			return "sigs.k8s.io/metrics-server@" + tag
		},
		"ghcr.io/flannel-io/flannel": func(tag, _ string) string { return "github.com/flannel-io/flannel@" + tag },
	}
	for _, k8s := range versions.Supported {
		for _, c := range Components(k8s) {
			repo, tag, _ := strings.Cut(c.Ref, ":")
			own := strings.HasPrefix(repo, "kubeup.dev/")
			switch {
			case own:
				if !strings.HasPrefix(c.Source, "kubeup.dev/kubeup/") || !c.Local {
					t.Errorf("%s %s: a kubeup.dev image must be kubeup's own program, built into every bundle (source %q, local %v)", k8s, c.Ref, c.Source, c.Local)
				}
			case sources[repo] == nil:
				t.Errorf("%s %s: an upstream name with no known upstream source: build it from upstream's source and add it here, or give it a kubeup.dev name", k8s, c.Ref)
			case c.Source != sources[repo](tag, k8s):
				t.Errorf("%s %s: built from %q, want upstream's %q", k8s, c.Ref, c.Source, sources[repo](tag, k8s))
			case c.Local:
				t.Errorf("%s %s: an upstream image is pulled from its registry with --source registry, not built", k8s, c.Ref)
			}
		}
	}
}

// TestPauseTagIsUpstreams: the pause image's tag is the one the Kubernetes source it is built
// from gives pause.c (build/pause/Makefile), for every release.
func TestPauseTagIsUpstreams(t *testing.T) {
	for _, k8s := range versions.Supported {
		dir := kubernetesSource(t, k8s)
		mk, err := os.ReadFile(filepath.Join(dir, "build/pause/Makefile"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^TAG \?= (\S+)$`).FindSubmatch(mk)
		if m == nil || string(m[1]) != versions.Pause {
			t.Errorf("Kubernetes %s builds pause.c as %q; kubeup names it registry.k8s.io/pause:%s", k8s, m, versions.Pause)
		}
		if _, err := os.Stat(filepath.Join(dir, "build/pause/linux/pause.c")); err != nil {
			t.Error(err)
		}
	}
}

// kubernetesSource is the Kubernetes source of release k8s, from the module cache (the
// toolchain's build downloads it).
func kubernetesSource(t *testing.T, k8s string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+k8s).Output()
	var mod struct{ Dir string }
	if err != nil || json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		t.Fatalf("go mod download k8s.io/kubernetes@%s: %v %s (the module proxy must answer; make toolchain downloads it)", k8s, err, out)
	}
	return mod.Dir
}
