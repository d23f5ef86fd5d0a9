package manifests

import (
	"slices"
	"strings"
	"testing"
)

// The controller-manager signs kubelet certificates for pki.nodeCertificateTTL when it is set,
// and for Kubernetes' default otherwise.
func TestClusterSigningDuration(t *testing.T) {
	cmd := func(p Params) []string {
		for _, sp := range StaticPods(p) {
			if sp.File == "kube-controller-manager.yaml" {
				return sp.Pod.Spec.Containers[0].Command
			}
		}
		t.Fatal("no controller-manager pod")
		return nil
	}
	p := addonTestParams()
	if c := cmd(p); slices.ContainsFunc(c, func(a string) bool { return strings.HasPrefix(a, "--cluster-signing-duration") }) {
		t.Errorf("a signing duration without nodeCertificateTTL: %v", c)
	}
	p.NodeCertificateTTL = "8m"
	if c := cmd(p); !slices.Contains(c, "--cluster-signing-duration=8m") {
		t.Errorf("nodeCertificateTTL 8m: %v", c)
	}
}
