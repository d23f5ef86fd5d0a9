package machine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallLinks keeps the contract package, and the Packer plugin that reads it, free of
// client-go and Butane: the plugin runs inside Packer on a build host and has no use for them.
func TestSmallLinks(t *testing.T) {
	for _, pkg := range []string{"kubeup.dev/kubeup/internal/machine", "kubeup.dev/kubeup/packer-plugin"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "k8s.io/client-go") || strings.HasPrefix(dep, "github.com/coreos/butane") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
