package versions

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleasesTable checks the table itself: it parses, the default is first, and the build
// scripts read the same rows (hack/lib.sh's release), so nothing else pins a version.
func TestReleasesTable(t *testing.T) {
	rs, err := parseReleases(releasesTable)
	if err != nil {
		t.Fatal(err)
	}
	if Kubernetes != rs[0].Kubernetes || len(Supported) != len(rs) {
		t.Errorf("default %s, supported %v; table %v", Kubernetes, Supported, rs)
	}
	for _, want := range []string{"v1.37.2", "v1.36.3"} {
		if _, ok := ReleaseOf(want); !ok {
			t.Errorf("the issue's two releases: %s is missing", want)
		}
	}
	lib, err := filepath.Abs("../../hack/lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	shell := func(arg string) (string, error) {
		out, err := exec.Command("bash", "-c", `. "$0" && release "$1"`, lib, arg).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for i, r := range append([]Release{{}}, rs...) {
		want := r
		if i == 0 {
			want = rs[0] // no version: the default
		}
		got, err := shell(r.Kubernetes)
		if err != nil || got != want.Kubernetes+" "+want.Staging+" "+want.Etcd {
			t.Errorf("hack/lib.sh release %q = %q, %v; want the row %+v", r.Kubernetes, got, err, want)
		}
	}
	if out, err := shell("v1.30.0"); err == nil || !strings.Contains(out, "not a release kubeup brings up: use one of v1.37.2 v1.36.3") {
		t.Errorf("release v1.30.0 = %q, %v; want a refusal naming the releases", out, err)
	}
}

func TestReleasesTableRefusals(t *testing.T) {
	for _, tc := range []struct{ table, want string }{
		{"", "no release"},
		{"v1.37.2 v0.37.2", "want KUBERNETES STAGING ETCD"},
		{"v1.37.2 v0.36.2 3.6.16", "staging v0.36.2 does not go with Kubernetes v1.37.2"},
		{"v1.36.3 v0.36.3 3.6.16\nv1.37.2 v0.37.2 3.6.16", "releases.txt:2: v1.37.2 is not older than v1.36.3"},
		{"1.37 v0.37.2 3.6.16", "releases.txt:1"},
		{"v1.37.2 v0.37.2 three", "etcd"},
	} {
		if _, err := parseReleases(tc.table); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.table, err, tc.want)
		}
	}
}

func TestImagesForUsesTheReleasesEtcd(t *testing.T) {
	for _, r := range Releases {
		if got := ImagesFor(r.Kubernetes); got.Etcd != "registry.k8s.io/etcd:"+r.Etcd+"-0" || got.APIServer != "registry.k8s.io/kube-apiserver:"+r.Kubernetes {
			t.Errorf("%s: %+v", r.Kubernetes, got)
		}
	}
}
