package packermanifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/manifest.json is shaped as Packer 1.9's manifest post-processor writes it after four
// runs into the same file: two vsphere-clone builds, then two amazon-ebs builds, the last run
// being an amazon-ebs one.
func TestLastArtifact(t *testing.T) {
	for _, tc := range []struct{ builder, want string }{
		// The last run made no vsphere-clone build: the newest one in the file is taken.
		{"vsphere-clone", "kubeup-flatcar-build"},
		// Multi-region amazon-ebs IDs come back whole; the AWS provider picks its region.
		{"amazon-ebs", "eu-west-1:ami-0fedcba9876543210,us-east-1:ami-00112233445566778"},
	} {
		got, err := LastArtifact("testdata/manifest.json", tc.builder)
		if err != nil {
			t.Fatalf("%s: %v", tc.builder, err)
		}
		if got != tc.want {
			t.Errorf("%s: artifact %q, want %q", tc.builder, got, tc.want)
		}
	}
}

func TestLastPrefersLastRun(t *testing.T) {
	// A build of the last run wins over one listed after it from an older run (a manifest
	// edited or merged by hand).
	m := &Manifest{LastRunUUID: "new", Builds: []Build{
		{BuilderType: "vsphere-clone", ArtifactID: "a", PackerRunUUID: "old"},
		{BuilderType: "vsphere-clone", ArtifactID: "b", PackerRunUUID: "new"},
		{BuilderType: "vsphere-clone", ArtifactID: "c", PackerRunUUID: "old"},
	}}
	b, ok := m.Last("vsphere-clone")
	if !ok || b.ArtifactID != "b" {
		t.Fatalf("Last = %+v, %v; want artifact b of the last run", b, ok)
	}
}

func TestLastArtifactErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, builder string
		want                []string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), "vsphere-clone", []string{"nope.json", "manifest\" post-processor"}},
		{"not JSON", write("bad.json", "builds: []"), "vsphere-clone", []string{"bad.json", "manifest"}},
		{"no such builder", "testdata/manifest.json", "vsphere-iso", []string{"no vsphere-iso build", "vsphere-clone, amazon-ebs"}},
		{"empty", write("empty.json", `{"builds":[]}`), "amazon-ebs", []string{"no amazon-ebs build", "no builds"}},
		{"no artifact", write("noid.json", `{"builds":[{"name":"x","builder_type":"amazon-ebs","packer_run_uuid":"r"}],"last_run_uuid":"r"}`),
			"amazon-ebs", []string{"no artifact_id", `"x"`}},
	} {
		_, err := LastArtifact(tc.path, tc.builder)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}
