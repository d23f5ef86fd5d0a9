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

// At the same release, with what differs per machine known, only those machines are replaced,
// and the plan says which and why.
func TestMakePlanRollsOnlyWhatChanged(t *testing.T) {
	c := Cluster{Name: "local", APIServer: "v1.37.2", Master: "master",
		Kubelets: map[string]string{"master": "v1.37.2", "node-1": "v1.37.2", "node-2": "v1.37.2"},
		Changed:  map[string]string{"master": "", "node-1": "", "node-2": "config"}}
	p, err := MakePlan(c, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range p.Steps {
		kinds = append(kinds, s.Key())
	}
	if got, want := strings.Join(kinds, " "), "snapshot replace-node/node-2 addons"; got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	var out strings.Builder
	p.Print(&out)
	if want := "the machines whose config or image changed are replaced: node-2 (config)"; !strings.Contains(out.String(), want) {
		t.Errorf("plan lacks %q:\n%s", want, out.String())
	}

	c.Changed = map[string]string{"master": "config and image", "node-1": "image"}
	if p, _ = MakePlan(c, "v1.37.2"); len(p.Steps) != 4 || p.Steps[1].Key() != "replace-master/master" || strings.Join(p.Changed, ",") != "master (config and image),node-1 (image)" {
		t.Errorf("master and node-1 changed: %+v", p)
	}

	c.Changed = map[string]string{}
	p, _ = MakePlan(c, "v1.37.2")
	out.Reset()
	p.Print(&out)
	if len(p.Steps) != 0 || !strings.Contains(out.String(), "nothing to do") {
		t.Errorf("nothing changed: %+v\n%s", p, out.String())
	}

	// Without the differences known, or at another release, every machine is replaced.
	c.Changed = nil
	if p, _ = MakePlan(c, "v1.37.2"); len(p.Steps) != 5 || p.Changed != nil {
		t.Errorf("differences unknown: %+v", p)
	}
	c.APIServer = "v1.36.3"
	c.Kubelets = map[string]string{"master": "v1.36.3", "node-1": "v1.36.3", "node-2": "v1.36.3"}
	c.Changed = map[string]string{"node-2": "config"}
	if p, _ = MakePlan(c, "v1.37.2"); len(p.Steps) != 5 {
		t.Errorf("another release: %+v", p)
	}
}
