package cluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
)

// TestStarters: every starter config loads and validates as it is written, with its target;
// an AWS starter written without a region asks for aws.region by name.
func TestStarters(t *testing.T) {
	v := cluster.StarterValues{Name: "kubeup", Region: "eu-west-1", Bucket: "kubeup-configs-0123456789ab"}
	for _, target := range []string{cluster.TargetQEMU, cluster.TargetAWS, cluster.TargetVSphere} {
		data, err := cluster.Starter(target, v)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		path := filepath.Join(t.TempDir(), cluster.StarterFile)
		os.WriteFile(path, data, 0o600)
		cfg, err := cluster.Load(path)
		if err != nil {
			t.Fatalf("the %s starter does not load: %v\n%s", target, err, data)
		}
		if cfg.Target != target || cfg.Name != "kubeup" {
			t.Errorf("the %s starter: target %s, name %s", target, cfg.Target, cfg.Name)
		}
		if target == cluster.TargetAWS && (cfg.AWS.Region != "eu-west-1" || cfg.AWS.ConfigURL != "s3://kubeup-configs-0123456789ab/kubeup/") {
			t.Errorf("the aws starter: %+v", cfg.AWS)
		}
	}
	data, _ := cluster.Starter(cluster.TargetAWS, cluster.StarterValues{Name: "kubeup", Bucket: "b-0123"})
	path := filepath.Join(t.TempDir(), cluster.StarterFile)
	os.WriteFile(path, data, 0o600)
	if _, err := cluster.Load(path); err == nil || !strings.Contains(err.Error(), "aws.region") || !strings.Contains(err.Error(), path) {
		t.Errorf("an aws starter without a region: %v, want an error naming %s and aws.region", err, path)
	}
	if _, err := cluster.Starter("metal", v); err == nil {
		t.Error("a starter for metal, whose machines the PXE server starts")
	}
}
