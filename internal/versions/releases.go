package versions

import (
	_ "embed"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// Release is one Kubernetes release kubeup brings up, with the versions that differ per release.
type Release struct {
	// Kubernetes is the release's version, as in a cluster config: "v1.37.2".
	Kubernetes string
	// Staging is the version of its k8s.io staging modules (k8s.io/api and the others): "v0.37.2".
	Staging string
	// Etcd is the etcd server it runs with, without the v: "3.6.16".
	Etcd string
}

// releasesTable is the one source of truth for the releases: the build scripts read the same
// file (hack/lib.sh's release), so the toolchain, the bundle and the image are built for exactly
// the versions this package knows.
//
//go:embed releases.txt
var releasesTable string

// Releases are the releases kubeup brings up, newest first; the first is the default.
var Releases = mustParseReleases(releasesTable)

// ReleaseOf returns the release of a Kubernetes version, if kubeup brings it up.
func ReleaseOf(k8s string) (Release, bool) {
	for _, r := range Releases {
		if r.Kubernetes == k8s {
			return r, true
		}
	}
	return Release{}, false
}

// ReleaseOrDefault is the release of a Kubernetes version, or the default release for a version
// kubeup does not bring up (validation refuses those before anything is rendered).
func ReleaseOrDefault(k8s string) Release {
	if r, ok := ReleaseOf(k8s); ok {
		return r
	}
	return Releases[0]
}

func supported(rs []Release) []string {
	vs := make([]string, len(rs))
	for i, r := range rs {
		vs[i] = r.Kubernetes
	}
	return vs
}

// mustParseReleases panics on a malformed table: it is compiled in, and TestReleasesTable
// fails first.
func mustParseReleases(table string) []Release {
	rs, err := parseReleases(table)
	if err != nil {
		panic(err)
	}
	return rs
}

// parseReleases reads "KUBERNETES STAGING ETCD" rows; # starts a comment line.
func parseReleases(table string) ([]Release, error) {
	var rs []Release
	for i, line := range strings.Split(table, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("releases.txt:%d: want KUBERNETES STAGING ETCD, got %q", i+1, line)
		}
		r := Release{Kubernetes: f[0], Staging: f[1], Etcd: f[2]}
		k, err := version.ParseSemantic(r.Kubernetes)
		if err != nil {
			return nil, fmt.Errorf("releases.txt:%d: %w", i+1, err)
		}
		if s, err := version.ParseSemantic(r.Staging); err != nil || s.Major() != 0 || s.Minor() != k.Minor() || s.Patch() != k.Patch() {
			return nil, fmt.Errorf("releases.txt:%d: staging %s does not go with Kubernetes %s (want v0.%d.%d)", i+1, r.Staging, r.Kubernetes, k.Minor(), k.Patch())
		}
		if _, err := version.ParseSemantic(r.Etcd); err != nil {
			return nil, fmt.Errorf("releases.txt:%d: etcd: %w", i+1, err)
		}
		if len(rs) > 0 {
			if prev := version.MustParseSemantic(rs[len(rs)-1].Kubernetes); !k.LessThan(prev) {
				return nil, fmt.Errorf("releases.txt:%d: %s is not older than %s: keep the newest first", i+1, r.Kubernetes, rs[len(rs)-1].Kubernetes)
			}
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("releases.txt: no release")
	}
	return rs, nil
}
