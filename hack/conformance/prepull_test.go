package main

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The pre-pull DaemonSet names exactly the test images with a Prepull command, under the
// repository given, and each command is a list of strings (a bare `true` in YAML is a boolean,
// which the API refused in a run).
func TestPrepullPullsTheSharedImages(t *testing.T) {
	const repo = "10.0.2.100:5000/e2e"
	var out bytes.Buffer
	if err := run([]string{"prepull", "-repo", repo}, &out); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out.String(), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want a namespace and a DaemonSet, got %d documents:\n%s", len(docs), out.String())
	}
	var ns corev1.Namespace
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &ns); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &ds); err != nil {
		t.Fatal(err)
	}
	if ns.Kind != "Namespace" || ds.Kind != "DaemonSet" || ds.Namespace != ns.Name {
		t.Fatalf("got %s %s and %s in %q", ns.Kind, ns.Name, ds.Kind, ds.Namespace)
	}
	got := map[string][]string{}
	for _, c := range ds.Spec.Template.Spec.InitContainers {
		got[c.Image] = c.Command
	}
	want := 0
	for _, img := range testImages {
		ref := repo + "/" + img.Name + ":" + img.Tag
		cmd, ok := got[ref]
		switch {
		case len(img.Prepull) == 0 && ok:
			t.Errorf("%s is pre-pulled without a Prepull command", ref)
		case len(img.Prepull) > 0 && !ok:
			t.Errorf("%s is not pre-pulled", ref)
		case ok && strings.Join(cmd, " ") != strings.Join(img.Prepull, " "):
			t.Errorf("%s runs %q, want %q", ref, cmd, img.Prepull)
		}
		if len(img.Prepull) > 0 {
			want++
		}
	}
	if want < 2 || len(got) != want {
		t.Errorf("%d init containers for %d images with a Prepull command", len(got), want)
	}
	if c := ds.Spec.Template.Spec.Containers; len(c) != 1 || !strings.HasPrefix(c[0].Image, repo+"/agnhost:") {
		t.Errorf("the waiting container: %+v, want one in agnhost", c)
	}
	if err := run([]string{"prepull"}, &out); err == nil {
		t.Error("prepull without -repo: no error")
	}
}
