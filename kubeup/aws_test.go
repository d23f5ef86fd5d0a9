package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
)

func TestAMIFrom(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	os.WriteFile(manifest, []byte(`{"builds":[
		{"builder_type":"amazon-ebs","artifact_id":"eu-west-1:ami-0old"},
		{"builder_type":"vsphere-clone","artifact_id":"tmpl"},
		{"builder_type":"amazon-ebs","artifact_id":"us-east-1:ami-0aaa,eu-west-1:ami-0new"}]}`), 0o600)
	if ami, err := amiFrom(manifest, "eu-west-1", "ami-0config"); err != nil || ami != "ami-0new" {
		t.Errorf("amiFrom = %q, %v; want the last build's eu-west-1 AMI", ami, err)
	}
	if _, err := amiFrom(manifest, "ap-south-1", ""); err == nil || !strings.Contains(err.Error(), "ap-south-1") {
		t.Errorf("no AMI in the region: %v", err)
	}
	if ami, err := amiFrom("", "eu-west-1", "ami-0config"); err != nil || ami != "ami-0config" {
		t.Errorf("without a manifest: %q, %v", ami, err)
	}
}

// TestUpAWSDryRun runs kubeup's AWS path as the CLI does, the SDK finding the stand-in
// through AWS_ENDPOINT_URL and credentials in the environment: a plan, and no change to AWS
// or to the state directory.
func TestUpAWSDryRun(t *testing.T) {
	srv := awsStandIn(t)
	cfg, err := cluster.Load("../configs/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := upAWS(context.Background(), &out, cfg, state, cloudOptions{dryRun: true, numNodes: 2}); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"would create the secrets bundle", "create   vpc", "create   instance", "create   autoscaling-group",
		"create   s3-object        s3://example-kubeup-configs/aws/master.ign"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	for _, c := range srv.Calls() {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "Head") {
			t.Errorf("dry run called %s", c)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("dry run made the state directory: %v", err)
	}
	out.Reset()
	if err := awsProvider(cfg, state, &out, cloudOptions{dryRun: true}).Down(context.Background()); err != nil {
		t.Fatalf("down dry run: %v\n%s", err, out.String())
	}
}
