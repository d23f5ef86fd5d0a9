package manifests

import (
	"fmt"
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

// The controller-manager starts only once the API server is healthy: it would exit 10 s after
// taking its lease otherwise. The wait trusts only the cluster CA, at the address its
// certificate names, from the image every machine preloads.
func TestControllerManagerWaitsForAHealthyAPIServer(t *testing.T) {
	p := addonTestParams()
	for _, sp := range StaticPods(p) {
		init := sp.Pod.Spec.InitContainers
		if sp.File != "kube-controller-manager.yaml" {
			if len(init) != 0 {
				t.Errorf("%s has init containers: %v", sp.File, init)
			}
			continue
		}
		if len(init) != 1 || init[0].Image != p.Images.Probe || init[0].ImagePullPolicy != "IfNotPresent" {
			t.Fatalf("controller-manager init containers: %+v", init)
		}
		want := []string{"/kubeup-probe", "wait", "--ca", PKIDir + "/ca.crt", fmt.Sprintf("https://%s:%d/healthz", p.MasterIP, p.APIServerPort)}
		if !slices.Equal(init[0].Command, want) {
			t.Errorf("wait command %v, want %v", init[0].Command, want)
		}
		if len(init[0].VolumeMounts) != 1 || init[0].VolumeMounts[0].MountPath != PKIDir || !init[0].VolumeMounts[0].ReadOnly {
			t.Errorf("wait mounts: %+v", init[0].VolumeMounts)
		}
	}
}
