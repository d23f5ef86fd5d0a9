package manifests

import (
	"slices"
	"testing"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/pod-security-admission/admission/api/load"
	"k8s.io/pod-security-admission/admission/api/validation"
	"sigs.k8s.io/yaml"
)

// TestAdmissionConfigPodSecurity: the PodSecurity plugin's part of the admission config, read
// by upstream's own loader and validation, enforces the cluster's level and warns at restricted.
func TestAdmissionConfigPodSecurity(t *testing.T) {
	for _, level := range []string{"privileged", "baseline", "restricted"} {
		raw, err := AdmissionConfig(Params{PodSecurity: level})
		if err != nil {
			t.Fatal(err)
		}
		var c apiserverv1.AdmissionConfiguration
		if err := yaml.UnmarshalStrict(raw, &c); err != nil {
			t.Fatalf("%s: %v\n%s", level, err, raw)
		}
		if c.APIVersion != "apiserver.config.k8s.io/v1" || c.Kind != "AdmissionConfiguration" || len(c.Plugins) != 1 || c.Plugins[0].Name != "PodSecurity" {
			t.Fatalf("%s: %s", level, raw)
		}
		ps, err := load.LoadFromData(c.Plugins[0].Configuration.Raw)
		if err != nil {
			t.Fatalf("%s: upstream's loader: %v", level, err)
		}
		if errs := validation.ValidatePodSecurityConfiguration(ps); len(errs) > 0 {
			t.Errorf("%s: %v", level, errs.ToAggregate())
		}
		if ps.Defaults.Enforce != level || ps.Defaults.Warn != "restricted" || ps.Defaults.Audit != "restricted" {
			t.Errorf("%s: defaults %+v", level, ps.Defaults)
		}
		if !slices.Equal(ps.Exemptions.Namespaces, []string{"kube-system"}) || len(ps.Exemptions.Usernames)+len(ps.Exemptions.RuntimeClasses) > 0 {
			t.Errorf("%s: exemptions %+v, want kube-system only", level, ps.Exemptions)
		}
	}
}

// TestAuthenticationConfigAnonymous: anonymous requests are allowed on the health endpoints
// alone, and nothing else is configured.
func TestAuthenticationConfigAnonymous(t *testing.T) {
	raw, err := AuthenticationConfig()
	if err != nil {
		t.Fatal(err)
	}
	var c apiserverv1.AuthenticationConfiguration
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	var paths []string
	if c.Anonymous != nil {
		for _, cond := range c.Anonymous.Conditions {
			paths = append(paths, cond.Path)
		}
	}
	if c.Anonymous == nil || !c.Anonymous.Enabled || !slices.Equal(paths, []string{"/healthz", "/livez", "/readyz"}) || len(c.JWT) > 0 {
		t.Errorf("authentication config:\n%s", raw)
	}
}
