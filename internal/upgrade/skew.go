package upgrade

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"

	"kubeup.dev/kubeup/internal/versions"
)

// MaxKubeletSkew is how many minor releases a kubelet may be older than the API server
// (https://kubernetes.io/releases/version-skew-policy/, since v1.28). A kubelet may never be
// newer.
const MaxKubeletSkew = 3

// CheckTarget says whether a control plane at from may be upgraded to to: to must be a release
// this kubeup brings up, of the same major version, not older than from, and at most one minor
// release ahead (the control plane may not skip a minor: each minor's API server migrates the
// stored objects of the one before). The same version is allowed: it rolls the machines whose
// config changed.
func CheckTarget(from, to string) error {
	if _, ok := versions.ReleaseOf(to); !ok {
		return fmt.Errorf("--to %s: this kubeup brings up %s", to, strings.Join(versions.Supported, ", "))
	}
	f, err := version.ParseSemantic(from)
	if err != nil {
		return fmt.Errorf("the control plane's version %q: %w", from, err)
	}
	t := version.MustParseSemantic(to)
	switch {
	case f.Major() != t.Major():
		return fmt.Errorf("--to %s: the cluster runs %s, another major version: kubeup upgrades within v%d only", to, from, f.Major())
	case t.LessThan(f):
		return fmt.Errorf("--to %s: the cluster runs %s, and Kubernetes does not support downgrades (the API server may have stored objects in versions the older one cannot read); to go back, restore the etcd snapshot taken before the upgrade", to, from)
	case t.Minor() > f.Minor()+1:
		next := newestOfMinor(t.Major(), f.Minor()+1)
		fix := fmt.Sprintf("no release of v%d.%d is in this kubeup: use the kubeup that brings up one", t.Major(), f.Minor()+1)
		if next != "" {
			fix = "first --to " + next + ", then --to " + to
		}
		return fmt.Errorf("--to %s: the cluster runs %s, and the control plane may not skip minor release v%d.%d (fix: %s)", to, from, t.Major(), f.Minor()+1, fix)
	}
	return nil
}

// CheckKubelets says whether the kubelets (by node name) allow the control plane to move to
// to: none may be newer than the API server now (apiServer), and none may be more than
// MaxKubeletSkew minors older than to, or it would fall out of support when the control plane
// is upgraded before it. Names in the error are sorted.
func CheckKubelets(apiServer, to string, kubelets map[string]string) error {
	a, err := version.ParseSemantic(apiServer)
	if err != nil {
		return fmt.Errorf("the API server's version %q: %w", apiServer, err)
	}
	t, err := version.ParseSemantic(to)
	if err != nil {
		return fmt.Errorf("--to %q: %w", to, err)
	}
	var newer, tooOld, unreadable []string
	for node, kv := range kubelets {
		k, err := version.ParseSemantic(kv)
		switch {
		case err != nil:
			unreadable = append(unreadable, fmt.Sprintf("%s (%q)", node, kv))
		case a.LessThan(k):
			newer = append(newer, fmt.Sprintf("%s (%s)", node, kv))
		case k.Major() != t.Major() || k.Minor()+MaxKubeletSkew < t.Minor():
			tooOld = append(tooOld, fmt.Sprintf("%s (%s)", node, kv))
		}
	}
	for _, s := range [][]string{newer, tooOld, unreadable} {
		sort.Strings(s)
	}
	switch {
	case len(unreadable) > 0:
		return fmt.Errorf("kubelet versions that are not versions: %s", strings.Join(unreadable, ", "))
	case len(newer) > 0:
		return fmt.Errorf("kubelets newer than the API server (%s), which the skew policy does not allow: %s (fix: replace those machines with an image of %s, or upgrade the control plane first)", apiServer, strings.Join(newer, ", "), apiServer)
	case len(tooOld) > 0:
		return fmt.Errorf("kubelets more than %d minor releases older than %s: %s (fix: upgrade those nodes to a newer release first)", MaxKubeletSkew, to, strings.Join(tooOld, ", "))
	}
	return nil
}

// CheckImage says whether an image built for imageRelease can carry a machine to to. An image
// that does not say its release ("") is accepted: its kubelet is checked when it registers.
func CheckImage(image, imageRelease, to string) error {
	if imageRelease != "" && imageRelease != to {
		return fmt.Errorf("image %s holds Kubernetes %s, not %s (fix: build the image of %s, KUBEUP_KUBERNETES=%s make image, and pass its directory)", image, imageRelease, to, to, to)
	}
	return nil
}

// newestOfMinor is the newest release of major.minor this kubeup knows, or "".
func newestOfMinor(major, minor uint) string {
	for _, r := range versions.Releases { // newest first
		if v := version.MustParseSemantic(r.Kubernetes); v.Major() == major && v.Minor() == minor {
			return r.Kubernetes
		}
	}
	return ""
}
