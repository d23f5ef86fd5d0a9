package upgrade

import (
	"strings"
	"testing"
)

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     string // "" allows; else a part of the error
	}{
		{"v1.36.3", "v1.37.2", ""},
		{"v1.37.2", "v1.37.2", ""}, // a config roll
		{"v1.36.1", "v1.36.3", ""}, // a patch
		{"v1.37.0", "v1.37.2", ""},
		{"v1.37.2", "v1.36.3", "does not support downgrades"},
		{"v1.35.4", "v1.37.2", "may not skip minor release v1.36 (fix: first --to v1.36.3, then --to v1.37.2)"},
		{"v1.34.0", "v1.37.2", "may not skip minor release v1.35 (fix: no release of v1.35 is in this kubeup"},
		{"v1.36.3", "v1.38.0", "--to v1.38.0: this kubeup brings up v1.37.2, v1.36.3"},
		{"v1.36.3", "1.37.2", "this kubeup brings up"},
		{"v0.37.2", "v1.37.2", "another major version"},
		{"latest", "v1.37.2", `the control plane's version "latest"`},
	} {
		err := CheckTarget(tc.from, tc.to)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s -> %s: %v, want allowed", tc.from, tc.to, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s -> %s: %v, want an error with %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestCheckKubelets(t *testing.T) {
	for _, tc := range []struct {
		name          string
		apiServer, to string
		kubelets      map[string]string
		want          string
	}{
		{"all at the API server's", "v1.36.3", "v1.37.2", map[string]string{"cp": "v1.36.3", "n1": "v1.36.3"}, ""},
		{"three minors older is still allowed", "v1.36.3", "v1.37.2", map[string]string{"n1": "v1.34.0"}, ""},
		{"four minors older after the upgrade", "v1.36.3", "v1.37.2", map[string]string{"n2": "v1.33.1", "n1": "v1.33.0", "ok": "v1.36.3"},
			"more than 3 minor releases older than v1.37.2: n1 (v1.33.0), n2 (v1.33.1)"},
		{"newer than the API server", "v1.36.3", "v1.37.2", map[string]string{"n1": "v1.37.2"},
			"kubelets newer than the API server (v1.36.3), which the skew policy does not allow: n1 (v1.37.2)"},
		{"no nodes", "v1.36.3", "v1.37.2", nil, ""},
		{"not a version", "v1.36.3", "v1.37.2", map[string]string{"n1": "garbage"}, `n1 ("garbage")`},
	} {
		err := CheckKubelets(tc.apiServer, tc.to, tc.kubelets)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want allowed", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestCheckImage(t *testing.T) {
	if err := CheckImage("img", "v1.37.2", "v1.37.2"); err != nil {
		t.Error(err)
	}
	if err := CheckImage("img", "", "v1.37.2"); err != nil {
		t.Errorf("an image that does not say its release: %v", err)
	}
	err := CheckImage("/cache/img", "v1.36.3", "v1.37.2")
	if err == nil || !strings.Contains(err.Error(), "image /cache/img holds Kubernetes v1.36.3, not v1.37.2 (fix: build the image of v1.37.2, KUBEUP_KUBERNETES=v1.37.2 make image") {
		t.Errorf("got %v", err)
	}
}
