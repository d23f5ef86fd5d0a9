package upgrade

import (
	"strings"
	"testing"
)

func TestMakePlan(t *testing.T) {
	c := Cluster{Name: "local", APIServer: "v1.36.3", Master: "master",
		Kubelets: map[string]string{"node-2": "v1.36.3", "master": "v1.36.3", "node-1": "v1.35.4"},
		Image:    "/cache/qemu-debian-v1.37.2", ImageRelease: "v1.37.2"}
	p, err := MakePlan(c, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range p.Steps {
		kinds = append(kinds, string(s.Kind)+":"+s.Machine)
	}
	// The control plane first, then the nodes in a stable order, then the add-ons.
	if got, want := strings.Join(kinds, " "), "snapshot: replace-master:master replace-node:node-1 replace-node:node-2 addons:"; got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	var out strings.Builder
	if err := p.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"upgrade plan for cluster local: v1.36.3 -> v1.37.2\n", "image: /cache/qemu-debian-v1.37.2", "2. replace master, the master (v1.36.3), with a new root", "3. node node-1 (v1.35.4): cordon, drain", "5. wait for the add-ons of v1.37.2 to roll out on every machine"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMakePlanRefuses(t *testing.T) {
	ok := Cluster{Name: "c", APIServer: "v1.36.3", Master: "m", Kubelets: map[string]string{"m": "v1.36.3"}}
	for _, tc := range []struct {
		name   string
		change func(*Cluster)
		to     string
		want   string
	}{
		{"a downgrade", func(*Cluster) {}, "v1.35.0", "this kubeup brings up"},
		{"a newer kubelet", func(c *Cluster) { c.Kubelets = map[string]string{"m": "v1.36.3", "n": "v1.37.2"} }, "v1.37.2", "newer than the API server"},
		{"an image of another release", func(c *Cluster) { c.Image, c.ImageRelease = "img", "v1.36.3" }, "v1.37.2", "image img holds Kubernetes v1.36.3, not v1.37.2"},
		{"no master node", func(c *Cluster) { c.Master = "gone" }, "v1.37.2", `the master "gone" is not a node`},
	} {
		c := ok
		tc.change(&c)
		if _, err := MakePlan(c, tc.to); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
